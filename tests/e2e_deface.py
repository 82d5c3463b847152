"""--deface through the command line, on a CT head phantom written as DICOM.

Usage: e2e_deface.py RAPIDNII DEFACE_DEMO WORK_DIR

rapidnii_deface_demo writes the phantom (tests/head_phantom) before and after
the kernel's own face removal. The phantom is written here as an axial DICOM
series (pydicom), converted with `rapidnii convert --deface remove` and with
`--deface off`, and compared in world space (nibabel as_closest_canonical):
 - with --deface off the output equals the phantom exactly;
 - with --deface remove it equals the kernel's result exactly (the CLI feeds
   the kernel the right values, geometry and contrast);
 - the face changed (thousands of voxels), the sidecar says FaceAltered and
   lists code 113102, and the summary reports "face removed".
Run with Debian's /usr/bin/python3.
"""
import glob
import json
import os
import shutil
import subprocess
import sys

import nibabel as nib
import numpy as np
import pydicom
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian


def main():
    rapidnii, demo, work = sys.argv[1:4]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(os.path.join(work, "demo"))
    subprocess.check_call([demo, os.path.join(work, "demo")])
    lines = open(os.path.join(work, "demo", "dims.txt")).read().split("\n")
    nx, ny, nz = (int(v) for v in lines[0].split())
    aff = np.eye(4)
    for r in range(3):
        aff[r] = [float(v) for v in lines[1 + r].split()]
    before = np.fromfile(os.path.join(work, "demo", "before.raw"), "<i2").reshape((nz, ny, nx)).transpose(2, 1, 0)
    removed = np.fromfile(os.path.join(work, "demo", "remove.raw"), "<i2").reshape((nz, ny, nx)).transpose(2, 1, 0)

    # DICOM: pixel (row r, column c) of slice k is voxel (c, r, k)
    lps = np.diag([-1, -1, 1, 1]) @ aff
    dc, dr, dk = (np.linalg.norm(lps[:3, a]) for a in range(3))
    row_dir, col_dir = lps[:3, 0] / dc, lps[:3, 1] / dr
    src = os.path.join(work, "dicom")
    os.makedirs(src)
    for k in range(nz):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        meta.MediaStorageSOPInstanceUID = "2.25.4242%d" % k
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
        ds.is_little_endian, ds.is_implicit_VR = True, False
        ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
        ds.PatientID, ds.StudyInstanceUID, ds.SeriesInstanceUID = "PHANTOM", "2.25.77", "2.25.78"
        ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "CT", 3, k + 1
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.ImageOrientationPatient = ["%.10f" % v for v in list(row_dir) + list(col_dir)]
        ds.ImagePositionPatient = ["%.6f" % v for v in lps[:3, 3] + k * lps[:3, 2]]
        ds.PixelSpacing = ["%.6f" % dr, "%.6f" % dc]
        ds.SliceThickness = "%.6f" % dk
        ds.Rows, ds.Columns = ny, nx
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope, ds.RescaleIntercept = 1, 0
        ds.PixelData = np.ascontiguousarray(before[:, :, k].T).astype("<i2").tobytes()
        ds.save_as(os.path.join(src, "IM%04d" % k), write_like_original=False)

    def run(mode):
        out = os.path.join(work, "out-" + mode)
        p = subprocess.run([rapidnii, "convert", src, out, "--state", out + ".state", "--deface", mode],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        log = p.stdout.decode()
        if p.returncode != 0:
            raise SystemExit("FAIL: --deface %s exit %d\n%s" % (mode, p.returncode, log))
        nii = glob.glob(os.path.join(out, "sub-*", "**", "*.nii.gz"), recursive=True)
        if len(nii) != 1:
            raise SystemExit("FAIL: %d outputs" % len(nii))
        img = nib.as_closest_canonical(nib.load(nii[0]))
        side = json.load(open(nii[0].replace(".nii.gz", ".json")))
        return img, side, log

    def canonical(data):
        return nib.as_closest_canonical(nib.Nifti1Image(data, aff))

    ref_before, ref_removed = canonical(before), canonical(removed)
    off, side_off, _ = run("off")
    rem, side_rem, log = run("remove")
    print(log)
    if not np.allclose(off.affine, ref_before.affine, atol=1e-3):
        raise SystemExit("FAIL: geometry differs from the phantom")
    if not np.array_equal(np.asarray(off.dataobj), np.asarray(ref_before.dataobj)):
        raise SystemExit("FAIL: --deface off changed voxels")
    got, want = np.asarray(rem.dataobj), np.asarray(ref_removed.dataobj)
    changed = int((got != np.asarray(ref_before.dataobj)).sum())
    kernel_changed = int((want != np.asarray(ref_before.dataobj)).sum())
    if changed < 1000:
        raise SystemExit("FAIL: only %d voxels changed" % changed)
    diff = int((got != want).sum())
    if diff:
        raise SystemExit("FAIL: the CLI result differs from the kernel's in %d voxels (kernel changed %d, CLI %d)" %
                         (diff, kernel_changed, changed))
    codes = [c["CodeValue"] for c in side_rem.get("DeidentificationMethodCodeSequence", [])]
    if "FaceAltered" not in side_rem or "113102" not in codes or "FaceAltered" in side_off:
        raise SystemExit("FAIL: sidecar does not record the defacing (or records it without defacing)")
    if "face removed" not in log:
        raise SystemExit("FAIL: the summary does not report the defacing")
    print("PASS: --deface remove through the CLI equals the kernel on the phantom (%d voxels changed); "
          "--deface off leaves it intact" % changed)


if __name__ == "__main__":
    main()
