#!/usr/bin/python3
"""Oracle for the coverage series: every reference REF_DIR/<name>.nii must be
reproduced by one output (compare_nifti's test: closest canonical, affine
within 1e-3 mm, values within 1e-4 relative); where the reference has
.bval/.bvec, the output's must agree (b-values within 1e-3, vectors within
1e-3 once both are brought to the canonical voxel frame); where it has
.dtype, the output's NIfTI datatype must be that; where it has .tr, the
output's pixdim[4] and sidecar RepetitionTime (s); where it has .dt, the
output's pixdim[4] (s) alone; where it has .pe, the sidecar's
PhaseEncodingAxis; where it has .ped, the sidecar's PhaseEncodingDirection; where it has .side (JSON), those sidecar values (null:
absent); where it has .xform, its
qform_code and sform_code; outputs of references without .bval must have none.

Usage: check_coverage.py OUT_DIR REF_DIR [--expect N]
"""
import glob
import json
import os
import sys

import nibabel as nib
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare_nifti import load as load_scalar, matches  # noqa: E402


def load(path):
    """compare_nifti's loader; RGB24 images become (x, y, z, channel) floats."""
    img = nib.load(path)
    if img.header["datatype"] != 128:
        return load_scalar(path)
    raw = np.asanyarray(img.dataobj)
    arr = np.stack([raw[c] for c in raw.dtype.names], axis=-1).astype(np.float64)
    can = nib.as_closest_canonical(nib.Nifti1Image(arr, img.affine))
    return can.affine, np.asanyarray(can.dataobj).astype(np.float64)
from dwi_compare import fsl_to_canonical  # noqa: E402


def main():
    out_dir, ref_dir = sys.argv[1], sys.argv[2]
    expect = int(sys.argv[sys.argv.index("--expect") + 1]) if "--expect" in sys.argv else None
    outs = sorted(glob.glob(os.path.join(out_dir, "**", "*.nii.gz"), recursive=True))
    loaded = {o: load(o) for o in outs}
    refs = sorted(glob.glob(os.path.join(ref_dir, "*.nii")))
    ok_count = 0
    for ref in refs:
        stem = ref[:-4]
        r = load(ref)
        hit = None
        for o in outs:
            if matches(r, loaded[o])[0]:
                hit = o
                break
        name = os.path.basename(ref)
        if hit is None:
            print("FAIL %s: no output reproduces it" % name)
            continue
        ostem = hit[: -len(".nii.gz")]
        good = True
        if os.path.exists(stem + ".dtype"):
            want = open(stem + ".dtype").read().strip()
            got = str(nib.load(hit).get_data_dtype())
            if want == "rgb24":
                got = "rgb24" if nib.load(hit).header["datatype"] == 128 else got
            if got != want:
                print("FAIL %s: datatype %s, expected %s" % (name, got, want))
                good = False
        if os.path.exists(stem + ".tr"):
            want = float(open(stem + ".tr").read())
            got = float(nib.load(hit).header["pixdim"][4])
            side = json.load(open(ostem + ".json")).get("RepetitionTime")
            if abs(got - want) > 1e-6 or side is None or abs(side - want) > 1e-6:
                print("FAIL %s: TR pixdim[4] %g, sidecar %s, expected %g" % (name, got, side, want))
                good = False
        if os.path.exists(stem + ".dt"):
            want = float(open(stem + ".dt").read())
            got = float(nib.load(hit).header["pixdim"][4])
            if abs(got - want) > 1e-6:
                print("FAIL %s: time step pixdim[4] %g, expected %g" % (name, got, want))
                good = False
        if os.path.exists(stem + ".pe"):
            lps = np.loadtxt(stem + ".pe")
            ras = np.array([-lps[0], -lps[1], lps[2]])
            a = nib.load(hit).affine[:3, :3]
            cos = np.abs(a.T @ ras) / np.linalg.norm(a, axis=0)
            want = "ijk"[int(np.argmax(cos))]
            got = json.load(open(ostem + ".json")).get("PhaseEncodingAxis")
            if got != want:
                print("FAIL %s: PhaseEncodingAxis %s, expected %s" % (name, got, want))
                good = False
        if os.path.exists(stem + ".ped"):
            lps = np.loadtxt(stem + ".ped")
            ras = np.array([-lps[0], -lps[1], lps[2]])
            a = nib.load(hit).affine[:3, :3]
            dots = (a.T @ ras) / np.linalg.norm(a, axis=0)
            axis = int(np.argmax(np.abs(dots)))
            want = "ijk"[axis] + ("-" if dots[axis] < 0 else "")
            got = json.load(open(ostem + ".json")).get("PhaseEncodingDirection")
            if got != want:
                print("FAIL %s: PhaseEncodingDirection %s, expected %s" % (name, got, want))
                good = False
        if os.path.exists(stem + ".side"):
            want = json.load(open(stem + ".side"))
            side = json.load(open(ostem + ".json"))
            for key, v in want.items():
                got = side.get(key)
                same = got == v if v is None or isinstance(v, str) else (
                    got is not None and np.allclose(np.asarray(got, float), np.asarray(v, float), atol=1e-6))
                if not same:
                    print("FAIL %s: sidecar %s %r, expected %r" % (name, key, got, v))
                    good = False
        if os.path.exists(stem + ".xform"):
            want = int(open(stem + ".xform").read())
            h = nib.load(hit).header
            if int(h["qform_code"]) != want or int(h["sform_code"]) != want:
                print("FAIL %s: qform/sform code %d/%d, expected %d" % (name, h["qform_code"], h["sform_code"], want))
                good = False
        if os.path.exists(stem + ".bval"):
            if not os.path.exists(ostem + ".bval") or not os.path.exists(ostem + ".bvec"):
                print("FAIL %s: no .bval/.bvec beside the output" % name)
                good = False
            else:
                bo, br = np.loadtxt(ostem + ".bval", ndmin=1), np.loadtxt(stem + ".bval", ndmin=1)
                if bo.shape != br.shape or np.max(np.abs(bo - br)) > 1e-3:
                    print("FAIL %s: bval %s, expected %s" % (name, bo, br))
                    good = False
                else:
                    vo = np.loadtxt(ostem + ".bvec", ndmin=2)
                    vr = np.loadtxt(stem + ".bvec", ndmin=2)
                    w = br > 0
                    co = fsl_to_canonical(vo, nib.load(hit).affine)[:, w]
                    cr = fsl_to_canonical(vr, nib.load(ref).affine)[:, w]
                    err = np.max(np.abs(co - cr)) if w.any() else 0.0
                    err0 = np.max(np.abs(vo[:, ~w] - vr[:, ~w])) if (~w).any() else 0.0
                    if err > 1e-3 or err0 > 1e-3:
                        print("FAIL %s: bvec differs by %.3g (b=0: %.3g)" % (name, err, err0))
                        good = False
        elif os.path.exists(ostem + ".bval"):
            print("FAIL %s: unexpected .bval" % name)
            good = False
        if good:
            ok_count += 1
            print("MATCH %s <- %s" % (name, os.path.relpath(hit, out_dir)))
    print("%d of %d references reproduced" % (ok_count, len(refs)))
    if ok_count != len(refs) or (expect is not None and ok_count != expect):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
