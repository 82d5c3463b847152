"""Writes a small synthetic DICOM archive and, beside it, the NIfTI volumes
a correct converter must produce, computed here from first principles.

Usage: gen_synthetic_dicom.py IN_DIR REF_DIR

The reference geometry comes straight from DICOM PS3.3 C.7.6.2.1.1: pixel
(r, c) of a slice lies at IPP + c*dc*row + r*dr*col (LPS); NIfTI is RAS, so
x and y are negated. Voxel values are the physical values (rescale applied).
Series written (each in its own folder, files without extensions, listed in
a shuffled order):
  ax_int16:   axial, 5 slices, signed 16-bit, one rescale pair, interleaved
  obl_12bit:  oblique, 4 slices, unsigned 12-bit with junk in bits 12-15,
              descending, big-endian transfer syntax
  fmri_4d:    3 positions x 3 volumes (AcquisitionNumber), implicit VR
  ct_float:   4 slices whose RescaleSlope varies (float output)
  float_map:  3 slices of FloatPixelData (float32 values kept exactly)
Bad inputs: an empty file, a text file, a truncated DICOM file.
Run with Debian's /usr/bin/python3 (python3-pydicom, python3-nibabel).
"""
import os
import random
import sys

import nibabel as nib
import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ExplicitVRBigEndian, ImplicitVRLittleEndian

rng = np.random.default_rng(1234)
random.seed(1234)
STUDY = "2.25.1000"


def uid(n):
    return "2.25.%d" % n


def make_ds(ts, series_uid, series_no, instance, iop, ipp, spacing, pixels, bits_stored=16, signed=True,
            slope=None, inter=None, acq=None, modality="MR"):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4" if modality == "MR" else "1.2.840.10008.5.1.4.1.1.2"
    meta.MediaStorageSOPInstanceUID = uid(random.randrange(10**12))
    meta.TransferSyntaxUID = ts
    ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.is_little_endian = ts != ExplicitVRBigEndian
    ds.is_implicit_VR = ts == ImplicitVRLittleEndian
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = STUDY
    ds.SeriesInstanceUID = series_uid
    ds.Modality = modality
    ds.ImageType = ["ORIGINAL", "PRIMARY", "OTHER"]
    ds.SeriesNumber = series_no
    ds.InstanceNumber = instance
    if acq is not None:
        ds.AcquisitionNumber = acq
    ds.ImageOrientationPatient = ["%.8f" % v for v in iop]
    ds.ImagePositionPatient = ["%.6f" % v for v in ipp]
    ds.PixelSpacing = ["%.4f" % spacing[0], "%.4f" % spacing[1]]
    ds.SliceThickness = "2"
    ds.EchoTime = "30"
    ds.RepetitionTime = "2000"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated = 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 1 if signed else 0
    if slope is not None:
        ds.RescaleSlope = "%g" % slope
        ds.RescaleIntercept = "%g" % inter
    arr = pixels.astype(">i2" if signed else ">u2") if ts == ExplicitVRBigEndian else pixels.astype(
        "<i2" if signed else "<u2")
    ds.PixelData = arr.tobytes()
    return ds


def rotation(ax, ay, az):
    ax, ay, az = np.radians([ax, ay, az])
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def reference(path, iop, ipps_sorted, spacing, volume_phys, tr=None):
    """volume_phys[k][t] = 2D physical array (rows, cols) at sorted position k."""
    row = np.array(iop[:3], float)
    col = np.array(iop[3:], float)
    nz = len(ipps_sorted)
    if nz > 1:
        step = (np.array(ipps_sorted[-1]) - np.array(ipps_sorted[0])) / (nz - 1)
    else:
        step = np.cross(row, col) * 2.0
    lps = np.eye(4)
    lps[:3, 0] = row * spacing[1]  # voxel index 0 = column
    lps[:3, 1] = col * spacing[0]  # voxel index 1 = row
    lps[:3, 2] = step
    lps[:3, 3] = ipps_sorted[0]
    aff = np.diag([-1, -1, 1, 1]) @ lps
    nt = len(volume_phys[0])
    rows, cols = volume_phys[0][0].shape
    data = np.zeros((cols, rows, nz, nt), np.float32)
    for k in range(nz):
        for t in range(nt):
            data[:, :, k, t] = volume_phys[k][t].T
    if nt == 1:
        data = data[..., 0]
    nib.save(nib.Nifti1Image(data, aff), path)


def smooth_image(rows, cols, lo, hi):
    y, x = np.mgrid[0:rows, 0:cols]
    base = (np.sin(x / 3.0) + np.cos(y / 4.0)) * 0.25 + 0.5
    img = lo + (hi - lo) * base + rng.normal(0, (hi - lo) * 0.02, (rows, cols))
    return np.clip(np.round(img), lo, hi)


def write(folder, name, ds):
    os.makedirs(folder, exist_ok=True)
    ds.save_as(os.path.join(folder, name), write_like_original=False)


def main():
    in_dir, ref_dir = sys.argv[1:3]
    os.makedirs(ref_dir, exist_ok=True)

    # 1. axial int16, one rescale pair, interleaved acquisition order
    iop = [1, 0, 0, 0, 1, 0]
    spacing = (0.9, 0.7)
    ipps = [[-80.0, -100.0, -20.0 + 2.5 * k] for k in range(5)]
    imgs = [smooth_image(12, 10, -500, 1500) for _ in ipps]
    order = [0, 2, 4, 1, 3]
    for a, k in enumerate(order):
        ds = make_ds(ExplicitVRLittleEndian, uid(11), 11, a + 1, iop, ipps[k], spacing, imgs[k], slope=0.5,
                     inter=-100)
        write(os.path.join(in_dir, "pat", "ax_int16"), "IMG%04d" % random.randrange(10000), ds)
    reference(os.path.join(ref_dir, "ax_int16.nii"), iop, ipps, spacing, [[im * 0.5 - 100] for im in imgs])

    # 2. oblique unsigned 12-bit with junk in the high bits, descending, big endian
    r = rotation(20, -15, 10)
    iop = list(r[:, 0]) + list(r[:, 1])
    normal = np.cross(r[:, 0], r[:, 1])
    spacing = (1.1, 1.3)
    origin = np.array([12.0, -40.0, 55.0])
    ipps = [list(origin + normal * 3.0 * k) for k in range(4)]
    imgs = [smooth_image(9, 11, 0, 4095) for _ in ipps]
    for a, k in enumerate([3, 2, 1, 0]):
        stored = imgs[k].astype(np.uint16) | 0xA000  # junk above bit 11
        ds = make_ds(ExplicitVRBigEndian, uid(12), 12, a + 1, iop, ipps[k], spacing, stored, bits_stored=12,
                     signed=False)
        write(os.path.join(in_dir, "pat", "obl_12bit"), "%d" % (a + 1), ds)
    reference(os.path.join(ref_dir, "obl_12bit.nii"), iop, ipps, spacing, [[im] for im in imgs])

    # 3. 4D: 3 positions x 3 volumes, implicit VR, coronal
    iop = [1, 0, 0, 0, 0, -1]
    spacing = (2.0, 2.0)
    ipps = [[-30.0, 10.0 + 4.0 * k, 40.0] for k in range(3)]
    vols = [[smooth_image(8, 8, 0, 1000) for _ in range(3)] for _ in ipps]
    inst = 1
    files = []
    for t in range(3):
        for k in range(3):
            files.append(make_ds(ImplicitVRLittleEndian, uid(13), 13, inst, iop, ipps[k], spacing, vols[k][t],
                                 acq=t + 1))
            inst += 1
    random.shuffle(files)
    for i, ds in enumerate(files):
        write(os.path.join(in_dir, "fmri_4d", "run 1"), "f%02d.dcm" % i, ds)
    # sorted along the normal (row x col = +y here)
    reference(os.path.join(ref_dir, "fmri_4d.nii"), iop, ipps, spacing, vols)

    # 4. CT with a rescale slope that varies between slices -> float
    iop = [1, 0, 0, 0, 1, 0]
    spacing = (0.5, 0.5)
    ipps = [[-10.0, -10.0, 100.0 - 1.25 * k] for k in range(4)]
    imgs = [smooth_image(10, 10, 0, 3000) for _ in ipps]
    slopes = [1.0, 0.5, 2.0, 1.5]
    for k in range(4):
        ds = make_ds(ExplicitVRLittleEndian, uid(14), 14, k + 1, iop, ipps[k], spacing, imgs[k], slope=slopes[k],
                     inter=-1024, modality="CT")
        write(os.path.join(in_dir, "ct"), "s%d" % k, ds)
    srt = sorted(range(4), key=lambda k: ipps[k][2])
    reference(os.path.join(ref_dir, "ct_float.nii"), iop, [ipps[k] for k in srt], spacing,
              [[imgs[k] * slopes[k] - 1024] for k in srt])

    # 5. float pixel data (FloatPixelData, e.g. a parametric map): float32 voxels
    iop = [1, 0, 0, 0, 1, 0]
    spacing = (1.5, 1.5)
    ipps = [[0.0, 0.0, 4.0 * k] for k in range(3)]
    maps = [(smooth_image(6, 7, 0, 100) / 7.0 + 0.123).astype(np.float32) for _ in ipps]
    for k in range(3):
        ds = make_ds(ExplicitVRLittleEndian, uid(15), 15, k + 1, iop, ipps[k], spacing, maps[k].astype(np.int16))
        del ds.PixelData
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 32, 32, 31
        for kw in ("BitsStored", "HighBit", "PixelRepresentation"):
            delattr(ds, kw)
        ds.FloatPixelData = maps[k].astype("<f4").tobytes()
        write(os.path.join(in_dir, "float_map"), "m%d" % k, ds)
    reference(os.path.join(ref_dir, "float_map.nii"), iop, ipps, spacing, [[m] for m in maps])

    # bad inputs
    bad = os.path.join(in_dir, "junk")
    os.makedirs(bad, exist_ok=True)
    open(os.path.join(bad, "empty"), "wb").close()
    with open(os.path.join(bad, "notes.txt"), "w") as f:
        f.write("not a DICOM file\n" * 20)
    src = os.path.join(in_dir, "pat", "ax_int16", sorted(os.listdir(os.path.join(in_dir, "pat", "ax_int16")))[0])
    data = open(src, "rb").read()
    with open(os.path.join(bad, "truncated"), "wb") as f:
        f.write(data[: len(data) - 60])


if __name__ == "__main__":
    main()
