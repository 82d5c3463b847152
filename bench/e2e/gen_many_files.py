#!/usr/bin/python3
"""Writes an archive of many small DICOM files, fast, for the index-scale
benchmark (bench/e2e/index_scale.py).

Usage: gen_many_files.py OUT_DIR --files N [--per-series K] [--size P] [--seed S]

N files in ceil(N / K) axial MR series of K slices each (default K = 1000;
K = 1 gives N single-image series, as in a radiograph archive), each slice P
x P uint16 (default 16: the pixels are not what is measured). Layout
OUT_DIR/pNNN/sNNNNN/INNNNNN.dcm, at most 1000 series per patient folder.

Speed: pydicom writes one template per series; every slice of the series is
that template with its per-slice values (SOPInstanceUID in the meta header
and the data set, InstanceNumber, ImagePositionPatient, SliceLocation, and
a few pixels) written over fixed-width placeholders at known byte offsets,
so a million files take about a minute, most of it the file system's.
The output depends only on the arguments.
"""
import argparse
import hashlib
import io
import os
import sys
import time

import numpy as np
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

MR_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
UID_DIGITS = 30  # digits after "2.25." in a slice's SOPInstanceUID


def make_uid(*parts):
    h = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return "2.25.%d" % int.from_bytes(h[:15], "big")


def slice_uid(seed, series, k):
    """A fixed-width, valid UID (no leading zero after the root)."""
    h = int.from_bytes(hashlib.sha256(b"%d/%d/%d" % (seed, series, k)).digest()[:12], "big")
    return "2.25.1" + ("%0*d" % (UID_DIGITS - 1, h % 10 ** (UID_DIGITS - 1)))


PLACE_UID = "2.25.9" + "8" * (UID_DIGITS - 1)
PLACE_INST = "+77777"          # InstanceNumber, 6 characters ("+" never occurs in a UID)
PLACE_Z = "+777.25"            # z of ImagePositionPatient and SliceLocation, 7 characters


def series_template(seed, pat, ser, size, rng):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MR_STORAGE
    meta.MediaStorageSOPInstanceUID = PLACE_UID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = "2.25.2026120601"
    ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = MR_STORAGE
    ds.SOPInstanceUID = PLACE_UID
    ds.PatientName = "Scale^P%04d" % pat
    ds.PatientID = "SCALE%04d" % pat
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.StudyInstanceUID = make_uid(seed, "study", pat)
    ds.SeriesInstanceUID = make_uid(seed, "series", pat, ser)
    ds.FrameOfReferenceUID = make_uid(seed, "for", pat)
    ds.StudyDate = "20240101"
    ds.StudyTime = "080000"
    ds.SeriesDate = "20240101"
    ds.SeriesTime = "08%02d%02d" % ((ser // 60) % 60, ser % 60)
    ds.AcquisitionTime = ds.SeriesTime
    ds.Modality = "MR"
    ds.Manufacturer = "SYNTHETIC"
    ds.SeriesNumber = ser + 1
    ds.SeriesDescription = "t2_scale"
    ds.ProtocolName = "t2_scale"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M"]
    ds.ScanningSequence = "SE"
    ds.SequenceVariant = "NONE"
    ds.MRAcquisitionType = "2D"
    ds.RepetitionTime = "3000"
    ds.EchoTime = "90"
    ds.FlipAngle = "90"
    ds.MagneticFieldStrength = "3"
    ds.InstanceNumber = PLACE_INST
    ds.ImagePositionPatient = ["-100", "-100", PLACE_Z]
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.SliceLocation = PLACE_Z
    ds.SliceThickness = "2"
    ds.PixelSpacing = ["1", "1"]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = size
    ds.Columns = size
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.PixelData = rng.integers(0, 4096, size=(size, size), dtype=np.uint16).tobytes()
    buf = io.BytesIO()
    ds.save_as(buf, write_like_original=False)
    return buf.getvalue()


def offsets(data, text):
    out = []
    needle = text.encode()
    i = data.find(needle)
    while i >= 0:
        out.append(i)
        i = data.find(needle, i + 1)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--files", type=int, required=True)
    ap.add_argument("--per-series", type=int, default=1000)
    ap.add_argument("--size", type=int, default=16)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args()
    if a.files < 1 or a.per_series < 1 or a.size < 2:
        sys.exit("gen_many_files: --files, --per-series and --size must be positive")
    if a.per_series > 4999:
        sys.exit("gen_many_files: --per-series is at most 4999 (the z placeholder is 7 characters)")
    rng = np.random.default_rng(a.seed)
    t0 = time.time()
    written = 0
    nseries = (a.files + a.per_series - 1) // a.per_series
    pix_len = a.size * a.size * 2
    for ser in range(nseries):
        pat = ser // 1000
        tpl = bytearray(series_template(a.seed, pat, ser, a.size, rng))
        uid_at = offsets(tpl, PLACE_UID)
        inst_at = offsets(tpl, PLACE_INST)
        z_at = offsets(tpl, PLACE_Z)
        if len(uid_at) != 2 or len(inst_at) != 1 or len(z_at) != 2:
            sys.exit("gen_many_files: placeholders not found once each in the template")
        pix_at = len(tpl) - pix_len
        folder = os.path.join(a.out, "p%03d" % pat, "s%05d" % ser)
        os.makedirs(folder, exist_ok=True)
        count = min(a.per_series, a.files - written)
        for k in range(count):
            uid = slice_uid(a.seed, ser, k).encode()
            for o in uid_at:
                tpl[o:o + len(uid)] = uid
            tpl[inst_at[0]:inst_at[0] + 6] = b"%06d" % (k + 1)
            z = b"%07.2f" % (2.0 * k)
            for o in z_at:
                tpl[o:o + 7] = z
            # a few pixels differ per slice, so no two files are the same bytes
            tpl[pix_at:pix_at + 4] = (k & 0x0FFF).to_bytes(2, "little") + ((k >> 12) & 0x0FFF).to_bytes(2, "little")
            with open(os.path.join(folder, "I%06d.dcm" % k), "wb") as f:
                f.write(tpl)
        written += count
        if not a.quiet and (ser + 1) % max(1, nseries // 20) == 0:
            print("gen_many_files: %d / %d files, %.0f s" % (written, a.files, time.time() - t0), flush=True)
    if not a.quiet:
        print("gen_many_files: %d files in %d series under %s (%.1f s)" % (written, nseries, a.out, time.time() - t0))


if __name__ == "__main__":
    main()
