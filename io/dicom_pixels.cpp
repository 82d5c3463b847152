#include "io/dicom_pixels.h"
#include "io/dicom_probe.h"
#include "io/parser_guard.h"

#include <gdcmImage.h>
#include <gdcmPixelFormat.h>
#include <gdcmReader.h>
#include <gdcmTransferSyntax.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace rapidnii::io {


// GDCM's ImageReader interprets overlays, LUTs and other modules, and
// Debian's build aborts on some it does not know (an assertion in
// gdcm::Overlay). So the data set is read with the plain Reader and the
// pixel data decoded from the element alone: raw bytes for the native
// transfer syntaxes, GDCM's codecs through a bare gdcm::Image otherwise.
namespace {

bool is_native_syntax(const std::string& ts) {
  return ts == "1.2.840.10008.1.2" || ts == "1.2.840.10008.1.2.1" || ts == "1.2.840.10008.1.2.2";
}

// The syntaxes whose pixel bytes are used where they lie (big endian is left
// to decode_pixels, which swaps while it copies).
bool is_native_little_endian(const std::string& ts) {
  return is_native_syntax(ts) && ts != "1.2.840.10008.1.2.2";
}

// Native transfer syntaxes: the pixel bytes are taken straight from the
// (memory-mapped) file at the offset the structural walk found. `fn` gets
// them and whether they are big endian. Returns false when this path does
// not apply (`applied` false) or the data is truncated (`applied` true).
bool native_bytes(const InputFile& in, size_t bytes, bool& applied, std::string& why,
                  const std::function<void(std::span<const std::byte>, bool)>& fn) {
  applied = false;
  bool ok = false;
  const bool readable = with_input_bytes(in, [&](std::span<const uint8_t> b) {
    const NativePixels px = find_native_pixels(b);
    if (!px.found) return;
    applied = true;
    if (px.length < bytes || px.offset + bytes > b.size()) {
      why = "truncated pixel data";
      return;
    }
    fn(std::as_bytes(b.subspan(px.offset, bytes)), px.big_endian);
    ok = true;
  });
  if (!readable) {
    applied = true;
    why = "pixel data cannot be read";
  }
  return ok;
}

// Native pixels copied into `out`, swapped to host order for big endian.
bool copy_native(const InputFile& in, const SliceHeader& expect, std::span<std::byte> out, std::string& why,
                 bool& applied) {
  return native_bytes(in, out.size(), applied, why, [&](std::span<const std::byte> px, bool big_endian) {
    std::memcpy(out.data(), px.data(), out.size());
    const int bytes = expect.bits_allocated / 8;
    if (big_endian && bytes > 1) {
      for (size_t i = 0; i + bytes <= out.size(); i += bytes) std::reverse(out.begin() + i, out.begin() + i + bytes);
    }
  });
}

bool decode(const InputFile& in, const SliceHeader& expect, std::span<std::byte> out, std::string& why) {
  if (is_native_syntax(expect.transfer_syntax)) {
    bool applied = false;
    const bool ok = copy_native(in, expect, out, why, applied);
    if (applied) return ok;
  }
  try {
    gdcm::Reader reader;
    auto stream = open_input(in);
    reader.SetStream(*stream);
    if (!reader.Read()) {
      why = "pixel data cannot be read";
      return false;
    }
    const gdcm::File& file = reader.GetFile();
    const gdcm::DataSet& ds = file.GetDataSet();
    const gdcm::Tag pixel_tag(0x7fe0, 0x0010);
    if (!ds.FindDataElement(pixel_tag)) {
      why = "no pixel data";
      return false;
    }
    const gdcm::DataElement& pixel = ds.GetDataElement(pixel_tag);
    const gdcm::TransferSyntax ts = file.GetHeader().GetDataSetTransferSyntax();

    if (const gdcm::ByteValue* bv = pixel.GetByteValue(); bv && !ts.IsEncapsulated()) {
      if (bv->GetLength() < out.size()) {
        why = "truncated pixel data";
        return false;
      }
      // GDCM's reader has already brought big-endian OW values to host order
      std::memcpy(out.data(), bv->GetPointer(), out.size());
      return true;
    }

    gdcm::Image image;
    const bool multi = expect.number_of_frames > 1;
    image.SetNumberOfDimensions(multi ? 3 : 2);
    image.SetDimension(0, expect.cols);
    image.SetDimension(1, expect.rows);
    if (multi) image.SetDimension(2, static_cast<unsigned int>(expect.number_of_frames));
    image.SetPlanarConfiguration(expect.planar_configuration);
    image.SetPixelFormat(gdcm::PixelFormat(expect.samples_per_pixel, expect.bits_allocated, expect.bits_stored,
                                           expect.high_bit, expect.pixel_representation));
    gdcm::PhotometricInterpretation pi = gdcm::PhotometricInterpretation::GetPIType(expect.photometric.c_str());
    if (pi == gdcm::PhotometricInterpretation::UNKNOWN) pi = gdcm::PhotometricInterpretation::MONOCHROME2;
    image.SetPhotometricInterpretation(pi);
    image.SetTransferSyntax(ts);
    image.SetDataElement(pixel);
    if (image.GetBufferLength() != out.size()) {
      why = "decoded pixel data has an unexpected size";
      return false;
    }
    if (!image.GetBuffer(reinterpret_cast<char*>(out.data()))) {
      why = "pixel data cannot be decoded";
      return false;
    }
    return true;
  } catch (const std::exception&) {
    why = "pixel decoder failed";
    return false;
  } catch (...) {
    why = "pixel decoder failed";
    return false;
  }
}

}  // namespace

bool decode_pixels(const InputFile& in, const SliceHeader& expect, std::span<std::byte> out, std::string& why) {
  bool ok = false;
  auto run = [&]() { ok = decode(in, expect, out, why); };
  if (!run_guarded(run)) {
    why = "pixel data cannot be decoded (parser assertion)";
    return false;
  }
  return ok;
}

NativeView with_native_pixels(const InputFile& in, const SliceHeader& expect, size_t bytes,
                              const std::function<void(std::span<const std::byte>)>& fn, std::string& why) {
  if (!is_native_little_endian(expect.transfer_syntax))
    return NativeView::NotNative;
  bool applied = false, big_endian = false;
  std::string err;
  const bool ok = native_bytes(in, bytes, applied, err, [&](std::span<const std::byte> px, bool be) {
    big_endian = be;
    if (!be) fn(px);
  });
  if (!applied || (ok && big_endian)) return NativeView::NotNative;
  if (!ok) {
    why = err;
    return NativeView::Failed;
  }
  return NativeView::Applied;
}

namespace {

// preadv of one contiguous run of the file into `iov` (consumed).
bool preadv_all(int fd, std::vector<iovec>& iov, uint64_t at) {
  size_t first = 0;
  while (first < iov.size()) {
    const int count = int(std::min<size_t>(iov.size() - first, IOV_MAX));
    const ssize_t r = ::preadv(fd, iov.data() + first, count, off_t(at));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    at += uint64_t(r);
    size_t left = size_t(r);
    while (left > 0 && first < iov.size()) {
      iovec& v = iov[first];
      const size_t k = std::min(left, v.iov_len);
      v.iov_base = static_cast<std::byte*>(v.iov_base) + k;
      v.iov_len -= k;
      left -= k;
      if (v.iov_len == 0) ++first;
    }
  }
  iov.clear();
  return true;
}

// The pieces of pixel data that starts at `pixels` in the file: the parts
// inside `head` (the file's first bytes, already read) copied, the rest read
// with preadv in contiguous runs.
bool read_pieces(int fd, uint64_t pixels, std::span<const uint8_t> head, std::span<const PixelPiece> pieces) {
  thread_local std::vector<iovec> iov;
  iov.clear();
  const size_t n = head.size();
  uint64_t run_start = 0, run_end = 0;
  for (const PixelPiece& p : pieces) {
    uint64_t at = pixels + p.offset;
    std::byte* dst = p.dst;
    size_t len = p.length;
    if (at < n) {  // already read with the header
      const size_t k = size_t(std::min<uint64_t>(len, n - at));
      std::memcpy(dst, head.data() + at, k);
      at += k, dst += k, len -= k;
    }
    if (len == 0) continue;
    if (!iov.empty() && at != run_end && !preadv_all(fd, iov, run_start)) return false;
    if (iov.empty()) run_start = run_end = at;
    iov.push_back(iovec{dst, len});
    run_end += len;
  }
  return iov.empty() || preadv_all(fd, iov, run_start);
}

}  // namespace

NativeView read_native_pixels(const InputFile& in, const SliceHeader& expect, size_t bytes,
                              std::span<const PixelPiece> pieces, std::string& why) {
  for (size_t i = 0; i < pieces.size(); ++i)
    if (pieces[i].offset > bytes || pieces[i].length > bytes - pieces[i].offset ||
        (i > 0 && pieces[i].offset < pieces[i - 1].offset))
      throw std::logic_error("read_native_pixels: pieces out of order or outside the image");
  auto from_memory = [&] {
    return with_native_pixels(
        in, expect, bytes,
        [&](std::span<const std::byte> px) {
          for (const PixelPiece& p : pieces) std::memcpy(p.dst, px.data() + p.offset, p.length);
        },
        why);
  };
  if (!is_native_little_endian(expect.transfer_syntax))
    return NativeView::NotNative;
  // the header read with pread (16 KiB, then 256 KiB); the pixels after it
  // straight into place
  thread_local std::vector<uint8_t> head;
  NativeView result = NativeView::Applied;
  const PrefixRead pr = with_file_prefix(in, head, [&](std::span<const uint8_t> prefix, uint64_t size, int fd) {
    const NativePixels px = find_native_pixels_in_prefix(prefix, size);
    if (!px.found || px.big_endian) return false;  // the full walk decides
    if (px.length < bytes || px.offset + bytes > size) {
      why = "truncated pixel data";
      result = NativeView::Failed;
      return true;
    }
    if (!read_pieces(fd, px.offset, prefix, pieces)) {
      why = "truncated pixel data";
      result = NativeView::Failed;
    }
    return true;
  });
  if (pr == PrefixRead::Unreadable) {
    why = "pixel data cannot be read";
    return NativeView::Failed;
  }
  return pr == PrefixRead::Decided ? result : from_memory();
}

}  // namespace rapidnii::io
