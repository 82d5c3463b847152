"""Oracle: do the NIfTI files in OUT reproduce every reference volume?

Usage: compare_nifti.py OUT_DIR REF_DIR [--expect N]

For each reference .nii/.nii.gz in REF_DIR, some output in OUT_DIR must hold
the same physical values (scl applied) on the same world grid: both are
brought to the closest canonical orientation (nibabel as_closest_canonical),
shapes must be equal, affines equal within 1e-3 mm, values within 1e-4
relative. Exits non-zero and says which reference failed otherwise.
Run with Debian's /usr/bin/python3 (python3-nibabel).
"""
import glob
import os
import sys

import nibabel as nib
import numpy as np

ATOL_AFFINE = 1e-3
RTOL_VALUES = 1e-4


def load(path):
    img = nib.as_closest_canonical(nib.load(path))
    data = np.asanyarray(img.dataobj).astype(np.float64)  # scl applied by nibabel
    return img.affine, data


def matches(ref, out):
    (ra, rd), (oa, od) = ref, out
    if rd.shape != od.shape:
        return False, "shape %s vs %s" % (rd.shape, od.shape)
    if not np.allclose(ra, oa, rtol=0, atol=ATOL_AFFINE):
        return False, "affine differs by %.4g mm" % np.max(np.abs(ra - oa))
    scale = max(np.max(np.abs(rd)), 1e-12)
    diff = np.max(np.abs(rd - od))
    if diff > RTOL_VALUES * scale:
        return False, "values differ by %.4g (max |ref| %.4g)" % (diff, scale)
    return True, "ok"


def main():
    args = sys.argv[1:]
    expect = None
    if "--expect" in args:
        i = args.index("--expect")
        expect = int(args[i + 1])
        del args[i:i + 2]
    out_dir, ref_dir = args
    refs = sorted(glob.glob(os.path.join(ref_dir, "*.nii")) + glob.glob(os.path.join(ref_dir, "*.nii.gz")))
    outs = sorted(glob.glob(os.path.join(out_dir, "**", "*.nii.gz"), recursive=True))
    loaded = {o: load(o) for o in outs}
    ok = 0
    used = set()  # one output per reference: identical references need distinct outputs
    for r in refs:
        ref = load(r)
        reasons = []
        found = None
        for o, out in loaded.items():
            if o in used:
                continue
            good, why = matches(ref, out)
            if good:
                found = o
                break
            reasons.append("%s: %s" % (os.path.basename(o), why))
        if found:
            used.add(found)
            ok += 1
            print("MATCH %s <- %s" % (os.path.basename(r), os.path.relpath(found, out_dir)))
        else:
            print("FAIL  %s: no output matches; closest reasons:" % os.path.basename(r))
            for line in reasons[:5]:
                print("      " + line)
    print("%d of %d reference volumes reproduced" % (ok, len(refs)))
    if expect is not None and len(refs) != expect:
        print("expected %d reference volumes, found %d" % (expect, len(refs)))
        return 1
    return 0 if ok == len(refs) and refs else 1


if __name__ == "__main__":
    sys.exit(main())
