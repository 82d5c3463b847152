#!/usr/bin/python3
"""Oracle for the acquisition fields of the sidecars and for the native voxel
order, against dcm2niix's references (REF_DIR/<name>.nii + .json).

For every reference volume, the output that reproduces it (compare_nifti's
test) must also have:
  - the same affine as the reference, not only after canonical reordering
    (`--orient native` stores voxels in dcm2niix's order), within 1e-3 mm;
  - PhaseEncodingDirection, EffectiveEchoSpacing, TotalReadoutTime and
    MultibandAccelerationFactor equal to the reference's where it has them
    (numbers within 1e-5 relative), and no MultibandAccelerationFactor
    where it has none;
  - SliceTiming within 5 ms of the reference's, slice by slice (dcm2niix
    takes the times of another volume: they differ by 2.5 ms), or, when the
    output has none, a ConversionWarnings entry saying why;
  - no SliceTiming where the reference has none.

Usage: compare_sidecars.py OUT_DIR REF_DIR [--no-slice-timing]
(--no-slice-timing: the input holds no slice times; dcm2niix's come from the
protocol text, which rapidnii does not read)
"""
import glob
import json
import os
import sys

import nibabel as nib
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare_nifti import load, matches  # noqa: E402


def main():
    out_dir, ref_dir = sys.argv[1], sys.argv[2]
    check_times = "--no-slice-timing" not in sys.argv
    outs = sorted(glob.glob(os.path.join(out_dir, "sub-*", "**", "*.nii.gz"), recursive=True))
    loaded = {o: load(o) for o in outs}
    problems, checked = [], 0
    for ref in sorted(glob.glob(os.path.join(ref_dir, "*.nii"))):
        name = os.path.basename(ref)
        r = load(ref)
        hit = next((o for o in outs if matches(r, loaded[o])[0]), None)
        if hit is None:
            problems.append("%s: no output reproduces it" % name)
            continue
        checked += 1
        ra, oa = nib.load(ref).affine, nib.load(hit).affine
        if np.max(np.abs(ra - oa)) > 1e-3:
            problems.append("%s: native affine differs from dcm2niix's by %.3g" % (name, np.max(np.abs(ra - oa))))
        rj = json.load(open(ref[:-4] + ".json"))
        oj = json.load(open(hit[: -len(".nii.gz")] + ".json"))
        for key in ("PhaseEncodingDirection", "EffectiveEchoSpacing", "TotalReadoutTime", "MultibandAccelerationFactor"):
            if key not in rj:
                continue
            a, b = rj[key], oj.get(key)
            same = a == b if isinstance(a, str) else (isinstance(b, (int, float)) and abs(a - b) <= 1e-5 * abs(a))
            if not same:
                problems.append("%s: %s %r, dcm2niix %r" % (name, key, b, a))
        if "MultibandAccelerationFactor" not in rj and "MultibandAccelerationFactor" in oj:
            problems.append("%s: MultibandAccelerationFactor %r, dcm2niix has none" % (name, oj["MultibandAccelerationFactor"]))
        rt, ot = rj.get("SliceTiming"), oj.get("SliceTiming")
        if not check_times:
            if ot is not None:
                problems.append("%s: SliceTiming written from no slice times" % name)
        elif rt is None and ot is not None:
            problems.append("%s: SliceTiming written, dcm2niix has none" % name)
        elif rt is not None and ot is None:
            if not any("slice times not written" in w for w in oj.get("ConversionWarnings", [])):
                problems.append("%s: no SliceTiming and no warning saying why" % name)
        elif rt is not None:
            if len(rt) != len(ot) or np.max(np.abs(np.array(rt) - np.array(ot))) > 0.005:
                problems.append("%s: SliceTiming %s, dcm2niix %s" % (name, ot, rt))
    for p in problems:
        print("FAIL " + p)
    print("%d reference sidecars checked, %d problems" % (checked, len(problems)))
    return 1 if problems or checked == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
