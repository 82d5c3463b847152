#include "io/dicom_pixels.h"

#include <gdcmImage.h>
#include <gdcmImageReader.h>

#include <vector>

namespace rapidnii::io {

bool decode_pixels(const std::filesystem::path& path, const SliceHeader& expect, std::span<std::byte> out,
                   std::string& why) {
  try {
    gdcm::ImageReader reader;
    reader.SetFileName(path.c_str());
    if (!reader.Read()) {
      why = "pixel data cannot be read";
      return false;
    }
    const gdcm::Image& image = reader.GetImage();
    const unsigned int* dims = image.GetDimensions();
    if (image.GetNumberOfDimensions() < 2 || dims[0] != expect.cols || dims[1] != expect.rows) {
      why = "image dimensions differ from the header";
      return false;
    }
    const unsigned long len = image.GetBufferLength();
    if (len != out.size()) {
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

}  // namespace rapidnii::io
