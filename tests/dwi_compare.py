#!/usr/bin/python3
"""Compares a rapidnii DWI output (.nii.gz + .bval + .bvec) with a reference
(dcm2niix's NIfTI, or only its .bval/.bvec): volumes after
nibabel.as_closest_canonical, b-values, and b-vectors brought to the
canonical voxel frame of each image (FSL convention undone and redone).

usage: dwi_compare.py OUT.nii.gz REF.nii|REF_AFFINE_FROM.nii REF.bval REF.bvec [--no-voxels]
"""
import sys
import numpy as np
import nibabel as nib


def fsl_to_canonical(bvec, affine):
    """FSL bvecs (3xN, voxel frame of `affine`, x negated when det>0) ->
    the same vectors in the voxel frame of as_closest_canonical."""
    v = np.array(bvec, dtype=float)
    if np.linalg.det(affine[:3, :3]) > 0:
        v[0] = -v[0]
    ornt = nib.orientations.io_orientation(affine)
    out = np.zeros_like(v)
    for i in range(3):
        out[int(ornt[i, 0])] = v[i] * ornt[i, 1]
    # canonical (RAS) affines have det > 0: FSL negates x
    out[0] = -out[0]
    return out


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    no_vox = "--no-voxels" in sys.argv
    out_nii, ref_nii, ref_bval, ref_bvec = args
    out_stem = out_nii[: -len(".nii.gz")]
    a = nib.load(out_nii)
    r = nib.load(ref_nii)
    ok = True
    bv_o = np.loadtxt(out_stem + ".bval", ndmin=1)
    bv_r = np.loadtxt(ref_bval, ndmin=1)
    if bv_o.shape != bv_r.shape or np.max(np.abs(bv_o - bv_r)) > 1e-3:
        print("FAIL: bval", bv_o, bv_r)
        ok = False
    vo = np.loadtxt(out_stem + ".bvec", ndmin=2)
    vr = np.loadtxt(ref_bvec, ndmin=2)
    weighted = bv_r > 0
    co = fsl_to_canonical(vo, a.affine)[:, weighted]
    cr = fsl_to_canonical(vr, r.affine)[:, weighted]
    err = np.max(np.abs(co - cr)) if co.size else 0
    b0 = ~weighted
    err0 = np.max(np.abs(vo[:, b0] - vr[:, b0])) if b0.any() else 0  # b=0 vectors stored as-is
    print(f"bvec max difference (canonical frame) {err:.2e}, b=0 {err0:.2e}")
    if err > 1e-3 or err0 > 1e-3:
        ok = False
    if not no_vox:
        ca, cr_ = nib.as_closest_canonical(a), nib.as_closest_canonical(r)
        if ca.shape != cr_.shape:
            print("FAIL: shape", ca.shape, cr_.shape)
            return 1
        aerr = np.max(np.abs(ca.affine - cr_.affine))
        da = np.asarray(ca.get_fdata(dtype=np.float64))
        dr = np.asarray(cr_.get_fdata(dtype=np.float64))
        verr = np.max(np.abs(da - dr)) / max(1e-9, np.max(np.abs(dr)))
        print(f"shape {ca.shape}, affine max difference {aerr:.2e} mm, voxel max relative difference {verr:.2e}")
        if aerr > 1e-3 or verr > 1e-4:
            ok = False
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
