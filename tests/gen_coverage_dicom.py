"""Writes synthetic DICOM series for input-coverage features and, beside
them, what a correct converter must produce, computed here from first
principles (DICOM PS3.3 C.7.6.2.1.1; FSL's bvec convention).

Usage: gen_coverage_dicom.py IN_DIR REF_DIR [--no-position]

Each reference is REF_DIR/<name>.nii (voxel i along the row direction, j
along the column direction, k along the slice normal, physical values),
optionally with <name>.bval/<name>.bvec (FSL, in that NIfTI's voxel frame)
and <name>.dtype (the NIfTI datatype expected). Series:
  dwi_std:      oblique DWI, b-values and gradients in (0018,9087/9089),
                b=0 volumes interleaved, files shuffled
  dwi_philips:  Philips classic DWI, private b-value (2001,1003), gradient
                (2005,10b0-b2), BValueNumber/GradientOrientationNumber
                (2005,1412/1413), scrambled instance numbers, implicit VR,
                per-slice RescaleSlope/Intercept and private scale slope
                (2005,100E): float32 with FP = (PV*RS+RI)/(RS*SS); its
                derived isotropic volume (b > 0, no direction) removed
  cplx_mag / cplx_phase: one series, ComplexImageComponent MAGNITUDE and
                PHASE with identical ImageType: two outputs
  ge_cplx_mag / _phase / _real / _imag: one GE series, the part only in
                GE's image type (0043,102F) 0..3: four outputs
  vfa_fa<F>_tr<T>: one series, three image sets at the same positions
                differing in FlipAngle or RepetitionTime: three outputs
  xa_st_asc / xa_st_desc / xa_st_enh: Siemens XA 2D EPI, SliceTiming from
                each slice's TimeAfterStart (0021,1104) in the second
                volume (classic, instances ascending and descending; an
                enhanced object with the times in its frames' items)
  uih_st:       UIH 2D EPI, SliceTiming from each slice's AcquisitionTime
                in the first volume (the run crossing midnight)
  ct_tilt:      CT with 15 degrees gantry tilt: resampled to an orthogonal grid
  enh_echo1 / enh_echo2: one Enhanced MR file, 2 echoes x 3 volumes x 4
                slices, frames stored shuffled, position per frame, shared
                oblique orientation and pixel measures, rescale per frame
                (float32), echoes split by effective echo time
  enh_dwi:      Enhanced MR DWI, b-value and gradient per frame
                (MRDiffusionSequence), volume order from DimensionIndexValues;
                its derived isotropic volume (DiffusionDirectionality
                ISOTROPIC, a stray vector stored) removed
  enh_ct:       Enhanced CT, descending frames, shared rescale: int16
  enh_philips:  Philips Enhanced MR, rescale and private scale slope
                (2005,100E in 2005,140F) per frame: float32 precise values
  rgb_interleaved / rgb_planar: 8-bit RGB, planar configuration 0 and 1,
                written as RGB24 (reference: x, y, z, channel)
  nm_tomo:      legacy multi-frame NM reconstructed tomography: no top-level
                geometry, first frame's position and orientation in the
                Detector Information Sequence, SliceVector out of order
  nm_gated:     gated NM tomography, TimeSlotVector x SliceVector: 4D
  mr_cine:      legacy multi-frame MR, one plane, FrameIncrementPointer to
                FrameTime: a time series of one slice
  nm_projections (with --no-position): NM projections from two detectors,
                stacked in stored order, qform/sform code 0
  ps_single:    PixelSpacing with a single value, read as isotropic
  pet_dyn / pet_dyn_onetime: dynamic PET (unequal frames, shuffled
                instances, slope per image); FrameDuration, FrameTimesStart
                (only from increasing AcquisitionTimes), Units, DecayCorrection
  ge_pepolar_mode2_rev / _fwd, ge_pepolar_mode1_rev: GE epi_pepolar,
                reversed-polarity images stored with their rows upside down
                (mode 2: alternating by TemporalPositionIdentifier, two
                outputs; mode 1: all reversed); polarity from
                RectilinearPhaseEncodeReordering (0018,9034) LINEAR, along
                the column, reversed in the reversed images
  no_position (only, with --no-position: kept apart because it is never
                reoriented): no ImagePositionPatient at all, qform/sform code 0
A reference may have <name>.tr (pixdim[4] and the sidecar's RepetitionTime,
seconds), <name>.dt (pixdim[4] alone, seconds), <name>.pe (the phase-encoding
direction, LPS: the sidecar's PhaseEncodingAxis must name the output axis
nearest to it), <name>.ped (the direction phase encoding goes, LPS: the
sidecar's PhaseEncodingDirection must name that axis and its sign) and <name>.xform (the qform_code and sform_code expected).
Run with Debian's /usr/bin/python3 (pydicom, nibabel, numpy).
"""
import json
import os
import random
import sys

import nibabel as nib
import numpy as np
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

rng = np.random.default_rng(77)
random.seed(77)
STUDY = "2.25.4242"
counter = [0]


def new_uid():
    counter[0] += 1
    return "2.25.%d%06d" % (random.randrange(10**9), counter[0])


def rotation(ax, ay, az):
    ax, ay, az = np.radians([ax, ay, az])
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rx @ ry @ rz


def new_file(sop_class, ts=ExplicitVRLittleEndian):
    """An empty little-endian data set of `sop_class` with file meta and a
    fresh SOP instance UID."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = new_uid()
    meta.TransferSyntaxUID = ts
    ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.is_little_endian = True
    ds.is_implicit_VR = ts == ImplicitVRLittleEndian
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    return ds


def base(ts, series_uid, series_no, instance, modality="MR"):
    ds = new_file("1.2.840.10008.5.1.4.1.1.4" if modality == "MR" else "1.2.840.10008.5.1.4.1.1.2", ts)
    ds.StudyInstanceUID = STUDY
    ds.SeriesInstanceUID = series_uid
    ds.PatientID = "COVERAGE"
    ds.Modality = modality
    ds.ImageType = ["ORIGINAL", "PRIMARY", "OTHER"]
    ds.SeriesNumber = series_no
    ds.InstanceNumber = instance
    ds.EchoTime = "80"
    ds.RepetitionTime = "3000"
    ds.SliceThickness = "3"
    return ds


def put_slice(ds, row, col, ipp, spacing, pixels, signed=True):
    ds.ImageOrientationPatient = ["%.8f" % v for v in list(row) + list(col)]
    ds.ImagePositionPatient = ["%.6f" % v for v in ipp]
    ds.PixelSpacing = ["%.4f" % spacing[0], "%.4f" % spacing[1]]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1 if signed else 0
    ds.PixelData = pixels.astype("<i2" if signed else "<u2").tobytes()


def ref_affine(row, col, normal_step, origin, spacing):
    """voxel (i=column, j=row, k) -> RAS, from first principles (LPS)."""
    a = np.eye(4)
    a[:3, 0] = np.asarray(row) * spacing[1]
    a[:3, 1] = np.asarray(col) * spacing[0]
    a[:3, 2] = normal_step
    a[:3, 3] = origin
    a[:2, :] *= -1  # LPS -> RAS (x, y negated; translation too)
    return a


def save_ref(ref_dir, name, data_ijk, affine, dtype=None, bvals=None, grads=None):
    img = nib.Nifti1Image(np.asarray(data_ijk, dtype=np.float32), affine)
    nib.save(img, os.path.join(ref_dir, name + ".nii"))
    if dtype:
        open(os.path.join(ref_dir, name + ".dtype"), "w").write(dtype + "\n")
    if bvals is not None:
        # FSL: vector in this image's voxel frame (unit axes), x negated when det > 0
        axes = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0)
        det = np.linalg.det(affine[:3, :3])
        rows = []
        for b, g in zip(bvals, grads):
            g = np.asarray(g, dtype=float)
            if b > 0:
                ras = np.array([-g[0], -g[1], g[2]])
                v = axes.T @ ras
                if det > 0:
                    v[0] = -v[0]
            else:
                v = g  # b=0: stored as is
            rows.append(v)
        v = np.array(rows).T
        open(os.path.join(ref_dir, name + ".bval"), "w").write(" ".join("%g" % b for b in bvals) + "\n")
        open(os.path.join(ref_dir, name + ".bvec"), "w").write(
            "\n".join(" ".join("%.8f" % x for x in v[c]) for c in range(3)) + "\n")


def write_all(in_dir, name, datasets):
    d = os.path.join(in_dir, name)
    os.makedirs(d, exist_ok=True)
    random.shuffle(datasets)
    for n, ds in enumerate(datasets):
        ds.save_as(os.path.join(d, "f%04d" % n), write_like_original=False)


def unit(v):
    v = np.asarray(v, dtype=float)
    return v / np.linalg.norm(v)


def dwi_std(in_dir, ref_dir):
    R = rotation(12, -8, 20)
    row, col = R[:, 0], R[:, 1]
    normal = np.cross(row, col)
    spacing = (2.0, 1.8)  # row spacing, column spacing
    nr, nc, nz = 6, 7, 4
    origin = np.array([-50.0, 30.0, 12.0])
    bvals = [0, 1000, 1000, 0, 2000, 1000]
    grads = [[0, 0, 0], unit([1, 0.2, -0.1]), unit([-0.3, 1, 0.4]), [0, 0, 0], unit([0.2, -0.5, 1]),
             unit([0.7, 0.7, -0.1])]
    suid = new_uid()
    data = rng.integers(-500, 3000, size=(len(bvals), nz, nr, nc))
    dsets = []
    inst = 0
    for t in range(len(bvals)):
        for k in range(nz):
            inst += 1
            ds = base(ExplicitVRLittleEndian, suid, 10, inst)
            ds.AcquisitionNumber = t + 1
            put_slice(ds, row, col, origin + normal * 3.0 * k, spacing, data[t, k])
            ds.add_new((0x0018, 0x9087), "FD", float(bvals[t]))
            ds.add_new((0x0018, 0x9089), "FD", [float(x) for x in grads[t]])
            dsets.append(ds)
    write_all(in_dir, "dwi_std", dsets)
    ijk = np.transpose(data, (3, 2, 1, 0))  # (c, r, k, t)
    save_ref(ref_dir, "dwi_std", ijk, ref_affine(row, col, normal * 3.0, origin, spacing), bvals=bvals, grads=grads)


def dwi_philips(in_dir, ref_dir):
    R = rotation(-5, 10, 3)
    row, col = R[:, 0], R[:, 1]
    normal = np.cross(row, col)
    spacing = (2.5, 2.5)
    nr, nc, nz = 5, 6, 3
    origin = np.array([10.0, -40.0, -20.0])
    # acquisition order: (BValueNumber, GradientOrientationNumber, b, gradient)
    acq = [(1, 1, 0.0, [0, 0, 0]), (2, 1, 800.0, unit([1, 0.1, 0])), (3, 1, 0.001, unit([1, 1, 1])),
           (2, 2, 800.0, unit([0, 1, 0.3])), (2, 3, 800.0, unit([-0.2, 0.1, 1])),
           (2, 4, 800.0, [0, 0, 0])]  # the derived isotropic (trace) image: not in the output
    order = sorted(range(len(acq)), key=lambda i: (acq[i][0], acq[i][1]))  # dcm2niix: 2005,1412 then 1413
    order = [i for i in order if acq[i][2] == 0 or any(acq[i][3])]
    suid = new_uid()
    data = rng.integers(0, 4000, size=(len(acq), nz, nr, nc))
    rs = rng.uniform(0.5, 3.0, size=(len(acq), nz))
    ri = rng.uniform(-20, 20, size=(len(acq), nz)).round(3)
    ss = rng.uniform(0.01, 0.2, size=(len(acq), nz))
    instances = list(range(1, len(acq) * nz + 1))
    random.shuffle(instances)  # scrambled: carries no order
    dsets = []
    expect = np.zeros((len(acq), nz, nr, nc))
    for t, (bn, gn, b, g) in enumerate(acq):
        for k in range(nz):
            ds = base(ImplicitVRLittleEndian, suid, 701, instances.pop())
            ds.Manufacturer = "Philips Medical Systems"
            ds.AcquisitionNumber = 7
            put_slice(ds, row, col, origin + normal * 3.0 * k, spacing, data[t, k], signed=False)
            ds.RescaleSlope = "%.6f" % rs[t, k]
            ds.RescaleIntercept = "%.3f" % ri[t, k]
            ds.add_new((0x2001, 0x0010), "LO", "Philips Imaging DD 001")
            ds.add_new((0x2001, 0x1003), "FL", float(b))
            ds.add_new((0x2005, 0x0010), "LO", "Philips MR Imaging DD 001")
            ds.add_new((0x2005, 0x0014), "LO", "Philips MR Imaging DD 005")
            ds.add_new((0x2005, 0x100e), "FL", float(ss[t, k]))
            for e, x in zip((0x10b0, 0x10b1, 0x10b2), g):
                ds.add_new((0x2005, e), "FL", float(x))
            ds.add_new((0x2005, 0x1412), "IS", str(bn))
            ds.add_new((0x2005, 0x1413), "IS", str(gn))
            dsets.append(ds)
            rs_f, ri_f, ss_f = float(ds.RescaleSlope), float(ds.RescaleIntercept), np.float32(ss[t, k])
            expect[t, k] = (data[t, k] * rs_f + ri_f) / (rs_f * float(ss_f))
    write_all(in_dir, "dwi_philips", dsets)
    ijk = np.transpose(expect[order], (3, 2, 1, 0))
    save_ref(ref_dir, "dwi_philips", ijk, ref_affine(row, col, normal * 3.0, origin, spacing), dtype="float32",
             bvals=[acq[i][2] for i in order], grads=[acq[i][3] for i in order])
    # the sidecar records the factors of the first slice of the first volume
    t0 = order[0]
    side = {"PhilipsRescaleSlope": float("%.6f" % rs[t0, 0]), "PhilipsRescaleIntercept": float(ri[t0, 0]),
            "PhilipsScaleSlope": float(np.float32(ss[t0, 0])), "UsePhilipsFloatNotDisplayScaling": 1}
    open(os.path.join(ref_dir, "dwi_philips.side"), "w").write(json.dumps(side) + "\n")


def complex_parts(in_dir, ref_dir):
    row, col = np.array([1.0, 0, 0]), np.array([0, 1.0, 0])
    spacing = (1.0, 1.0)
    suid = new_uid()
    dsets = []
    for part in ("MAGNITUDE", "PHASE"):
        data = rng.integers(-4096, 4095, size=(3, 4, 5))
        for k in range(3):
            ds = base(ExplicitVRLittleEndian, suid, 20, 1 + k + (10 if part == "PHASE" else 0))
            put_slice(ds, row, col, [0, 0, 4.0 * k], spacing, data[k])
            ds.add_new((0x0008, 0x9208), "CS", part)
            dsets.append(ds)
        save_ref(ref_dir, "cplx_" + part.lower()[:5], np.transpose(data, (2, 1, 0)),
                 ref_affine(row, col, np.array([0, 0, 4.0]), np.zeros(3), spacing))
    write_all(in_dir, "cplx", dsets)
    # GE says the part only in its private image type (0043,102F): 0..3 =
    # magnitude, phase, real, imaginary, all four in one series
    suid = new_uid()
    dsets = []
    for code, part in enumerate(("mag", "phase", "real", "imag")):
        data = rng.integers(-4096, 4095, size=(3, 4, 5))
        for k in range(3):
            ds = base(ExplicitVRLittleEndian, suid, 21, 1 + k + 3 * code)
            ds.Manufacturer = "GE MEDICAL SYSTEMS"
            put_slice(ds, row, col, [0, 0, 4.0 * k], spacing, data[k])
            ds.add_new(0x00430010, "LO", "GEMS_PARM_01")
            ds.add_new(0x0043102F, "SS", code)
            dsets.append(ds)
        save_ref(ref_dir, "ge_cplx_" + part, np.transpose(data, (2, 1, 0)),
                 ref_affine(row, col, np.array([0, 0, 4.0]), np.zeros(3), spacing))
    write_all(in_dir, "ge_cplx", dsets)


def variable_flip(in_dir, ref_dir):
    """One series of three image sets at the same positions that differ only
    in FlipAngle or RepetitionTime (T1 mapping): three outputs, never a time
    series."""
    row, col = np.array([1.0, 0, 0]), np.array([0, 1.0, 0])
    spacing = (1.0, 1.0)
    suid = new_uid()
    dsets = []
    for n, (fa, tr) in enumerate(((5, 15), (20, 15), (20, 30))):
        data = rng.integers(0, 4095, size=(3, 4, 5))
        for k in range(3):
            ds = base(ExplicitVRLittleEndian, suid, 22, 1 + k + 3 * n)
            ds.FlipAngle = str(fa)
            ds.RepetitionTime = str(tr)
            put_slice(ds, row, col, [0, 0, 2.0 * k], spacing, data[k])
            dsets.append(ds)
        save_ref(ref_dir, "vfa_fa%d_tr%d" % (fa, tr), np.transpose(data, (2, 1, 0)),
                 ref_affine(row, col, np.array([0, 0, 2.0]), np.zeros(3), spacing))
    write_all(in_dir, "vfa", dsets)


def ct_tilt(in_dir, ref_dir):
    """CT, 15 degrees gantry tilt: resampled (bilinear, stored values rounded
    half away from zero, outside the slice the volume minimum) onto the
    orthogonal grid of the first slice, as dcm2niix corrects it."""
    row, col = np.array([1.0, 0, 0]), np.array([0, 1.0, 0])
    spacing = (0.8, 0.8)
    tilt = np.radians(15)
    step = np.array([0, 5.0 * np.tan(tilt), 5.0])  # table moves along z, slices tilted in y
    origin = np.array([-100.0, -120.0, -300.0])
    nr, nc, nz = 16, 7, 5
    suid = new_uid()
    data = rng.integers(0, 3000, size=(nz, nr, nc))
    dsets = []
    for k in range(nz):
        ds = base(ExplicitVRLittleEndian, suid, 3, k + 1, modality="CT")
        ds.RescaleSlope = "1"
        ds.RescaleIntercept = "-1024"
        ds.add_new((0x0018, 0x1120), "DS", "15")  # GantryDetectorTilt
        put_slice(ds, row, col, origin + step * k, spacing, data[k])
        dsets.append(ds)
    write_all(in_dir, "ct_tilt", dsets)
    fill = data.min()
    out = np.zeros((nz, nr, nc))
    for k in range(nz):
        shift = k * step[1] / spacing[0]  # rows: grid point (r, c) lies at row r - shift of slice k
        for r in range(nr):
            y = r - shift
            for c in range(nc):
                if y < -1e-6 or y > nr - 1 + 1e-6:
                    out[k, r, c] = fill
                    continue
                y = min(max(y, 0.0), nr - 1.0)
                y0 = int(np.floor(y))
                y1 = min(y0 + 1, nr - 1)
                f = y - y0
                v = (1 - f) * data[k, y0, c] + f * data[k, y1, c]
                out[k, r, c] = np.sign(v) * np.floor(abs(v) + 0.5)
    save_ref(ref_dir, "ct_tilt", np.transpose(out - 1024, (2, 1, 0)),
             ref_affine(row, col, np.array([0, 0, step[2]]), origin, spacing))


def no_position(in_dir, ref_dir):
    """No ImagePositionPatient in any slice: stacked by InstanceNumber (files
    shuffled), written with qform/sform code 0 in the native voxel order
    (columns, rows bottom-up, instances), so a reader's affine is the one
    from pixdim alone."""
    row, col = np.array([0.0, 1, 0]), np.array([0, 0, -1.0])  # sagittal
    spacing = (1.25, 0.75)
    nr, nc, nz = 6, 5, 4
    suid = new_uid()
    data = rng.integers(-500, 2000, size=(nz, nr, nc))
    dsets = []
    for k in range(nz):
        ds = base(ExplicitVRLittleEndian, suid, 9, k + 1)
        put_slice(ds, row, col, np.zeros(3), spacing, data[k])
        del ds.ImagePositionPatient
        dsets.append(ds)
    write_all(in_dir, "no_position", dsets)
    stored = np.transpose(data[:, ::-1, :], (2, 1, 0))  # (column, row from the bottom, instance)
    hdr = nib.Nifti1Header()
    hdr.set_data_shape(stored.shape)
    hdr.set_zooms((spacing[1], spacing[0], 3.0))
    save_ref(ref_dir, "no_position", stored, hdr.get_base_affine())
    open(os.path.join(ref_dir, "no_position.xform"), "w").write("0\n")


def seq_item(**kw):
    it = Dataset()
    for k, v in kw.items():
        setattr(it, k, v)
    return it


def enhanced_mr(path, row, col, spacing, frames, rows, cols, extra_shared=None, modality="MR", manufacturer=None):
    """frames: list of dicts with ipp, pixels, and optional slope, inter, te,
    temporal, dim, b, grad, ss (Philips private scale slope, in the frame's
    private per-frame sequence) (in the order they are stored)."""
    ds = new_file("1.2.840.10008.5.1.4.1.1.4.1" if modality == "MR" else "1.2.840.10008.5.1.4.1.1.2.1")
    ds.StudyInstanceUID = STUDY
    ds.SeriesInstanceUID = new_uid()
    ds.PatientID = "COVERAGE"
    ds.Modality = modality
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "NONE"] if modality == "MR" else ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SeriesNumber = 30 + counter[0] % 50
    ds.InstanceNumber = 1
    ds.RepetitionTime = "2500"
    if manufacturer:
        ds.Manufacturer = manufacturer
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.NumberOfFrames = len(frames)
    shared = seq_item(
        PixelMeasuresSequence=[seq_item(PixelSpacing=["%.4f" % spacing[0], "%.4f" % spacing[1]], SliceThickness="3")],
        PlaneOrientationSequence=[seq_item(ImageOrientationPatient=["%.8f" % v for v in list(row) + list(col)])])
    for k, v in (extra_shared or {}).items():
        setattr(shared, k, v)
    ds.SharedFunctionalGroupsSequence = [shared]
    per = []
    for f in frames:
        it = seq_item(PlanePositionSequence=[seq_item(ImagePositionPatient=["%.6f" % v for v in f["ipp"]])])
        fc = seq_item(StackID="1", InStackPositionNumber=f.get("instack", 1))
        if "temporal" in f:
            fc.TemporalPositionIndex = f["temporal"]
        if "dim" in f:
            fc.DimensionIndexValues = f["dim"]
        it.FrameContentSequence = [fc]
        if "slope" in f:
            it.PixelValueTransformationSequence = [seq_item(RescaleSlope="%.6f" % f["slope"],
                                                            RescaleIntercept="%.3f" % f["inter"],
                                                            RescaleType="US")]
        if "te" in f:
            it.MREchoSequence = [seq_item(EffectiveEchoTime=float(f["te"]))]
        if "b" in f:
            d = seq_item(DiffusionBValue=float(f["b"]), DiffusionDirectionality=f.get("dir", "DIRECTIONAL"))
            d.DiffusionGradientDirectionSequence = [seq_item(DiffusionGradientOrientation=[float(x) for x in f["grad"]])]
            it.MRDiffusionSequence = [d]
        if "tas" in f:  # Siemens XA: TimeAfterStart in a private sequence of the frame's item
            priv = Dataset()
            priv.add_new((0x0021, 0x0011), "LO", "SIEMENS MR SDI 02")
            priv.add_new((0x0021, 0x1104), "DS", "%.5f" % f["tas"])
            it.add_new((0x0021, 0x0011), "LO", "SIEMENS MR SDI 02")
            it.add_new((0x0021, 0x11FE), "SQ", [priv])
        if "ss" in f:
            priv = Dataset()
            priv.add_new((0x2005, 0x0010), "LO", "Philips MR Imaging DD 001")
            priv.add_new((0x2005, 0x100E), "FL", float(f["ss"]))
            it.add_new((0x2005, 0x0014), "LO", "Philips MR Imaging DD 005")
            it.add_new((0x2005, 0x140F), "SQ", [priv])
        per.append(it)
    ds.PerFrameFunctionalGroupsSequence = per
    ds.PixelData = np.stack([f["pixels"] for f in frames]).astype("<i2").tobytes()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    ds.save_as(path, write_like_original=False)


def xa_slice_timing(in_dir, ref_dir):
    """Siemens XA 2D EPI: each slice's TimeAfterStart (0021,1104), s since
    the start of the run, gives SliceTiming: the second volume's times, its
    minimum subtracted, in the order of the output slices (here along +z
    whatever --orient). Classic files with instances ascending and
    descending along the normal (a time belongs to its slice's position),
    and an enhanced object with the times in its frames' items."""
    row, col = np.array([1.0, 0, 0]), np.array([0, 1.0, 0])
    spacing, nr, nc, tr = (2.0, 2.0), 4, 5, 2.0
    for name, nz, desc in (("xa_st_asc", 6, False), ("xa_st_desc", 6, True)):
        order = list(range(0, nz, 2)) + list(range(1, nz, 2))  # interleaved
        slot = {z: i for i, z in enumerate(order)}
        suid = new_uid()
        data = rng.integers(0, 3000, size=(3, nz, nr, nc))
        dsets = []
        for t in range(3):
            for k in range(nz):
                z = nz - 1 - k if desc else k
                ds = base(ExplicitVRLittleEndian, suid, 23 + desc, t * nz + k + 1)
                ds.Manufacturer = "SIEMENS"
                ds.SoftwareVersions = "syngo MR XA30"
                ds.ScanningSequence = "EP"
                ds.MRAcquisitionType = "2D"
                ds.RepetitionTime = "%g" % (tr * 1000)
                ds.AcquisitionNumber = t + 1
                ds.add_new(0x00210011, "LO", "SIEMENS MR SDI 02")
                # the first volume's times are off (dcm2niix: some runs store bogus ones)
                ds.add_new(0x00211104, "DS", "%.5f" % (t * tr + slot[z] * tr / nz + (0.37 * z if t == 0 else 0.01)))
                put_slice(ds, row, col, [0, 0, 3.0 * z], spacing, data[t, z])
                dsets.append(ds)
        write_all(in_dir, name, dsets)
        save_ref(ref_dir, name, np.transpose(data, (3, 2, 1, 0)),
                 ref_affine(row, col, np.array([0, 0, 3.0]), np.zeros(3), spacing))
        json.dump({"SliceTiming": [slot[z] * tr / nz for z in range(nz)]},
                  open(os.path.join(ref_dir, name + ".side"), "w"))
    # UIH: each slice's AcquisitionTime in the first volume; instances
    # descending along the normal, the run crossing midnight
    nz = 5
    order = [4, 3, 2, 1, 0]
    suid = new_uid()
    data = rng.integers(0, 3000, size=(2, nz, nr, nc))
    dsets = []
    for t in range(2):
        for k in range(nz):
            z = nz - 1 - k
            ds = base(ExplicitVRLittleEndian, suid, 26, t * nz + k + 1)
            ds.Manufacturer = "UIH"
            ds.AcquisitionNumber = t + 1  # orders the volumes across midnight
            ds.ScanningSequence = "EP"
            ds.MRAcquisitionType = "2D"
            ds.RepetitionTime = "%g" % (tr * 1000)
            sec = (86400 - 0.9 + t * tr + order.index(z) * tr / nz) % 86400
            hh, rem = divmod(sec, 3600)
            mm, ss = divmod(rem, 60)
            ds.AcquisitionTime = "%02d%02d%09.6f" % (hh, mm, ss)
            put_slice(ds, row, col, [0, 0, 3.0 * z], spacing, data[t, z])
            dsets.append(ds)
    write_all(in_dir, "uih_st", dsets)
    save_ref(ref_dir, "uih_st", np.transpose(data, (3, 2, 1, 0)),
             ref_affine(row, col, np.array([0, 0, 3.0]), np.zeros(3), spacing))
    json.dump({"SliceTiming": [order.index(z) * tr / nz for z in range(nz)]},
              open(os.path.join(ref_dir, "uih_st.side"), "w"))
    # enhanced: 4 slices x 2 volumes, descending acquisition, frames shuffled
    nz = 4
    frames = []
    expect = np.zeros((2, nz, nr, nc))
    for t in range(2):
        for z in range(nz):
            px = rng.integers(0, 3000, size=(nr, nc))
            frames.append(dict(ipp=[0, 0, 3.0 * z], pixels=px, dim=[t + 1, z + 1], instack=z + 1, temporal=t + 1,
                               tas=t * tr + (nz - 1 - z) * tr / nz + 0.02))
            expect[t, z] = px
    random.shuffle(frames)
    enhanced_mr(os.path.join(in_dir, "xa_enhanced", "epi"), row, col, spacing, frames, nr, nc, manufacturer="SIEMENS")
    save_ref(ref_dir, "xa_st_enh", np.transpose(expect, (3, 2, 1, 0)),
             ref_affine(row, col, np.array([0, 0, 3.0]), np.zeros(3), spacing))
    json.dump({"SliceTiming": [(nz - 1 - z) * tr / nz for z in range(nz)]},
              open(os.path.join(ref_dir, "xa_st_enh.side"), "w"))


def enhanced(in_dir, ref_dir):
    R = rotation(20, 5, -15)
    row, col = R[:, 0], R[:, 1]
    normal = np.cross(row, col)
    spacing = (1.5, 1.25)
    nr, nc, nz, nt = 5, 6, 4, 3
    origin = np.array([-30.0, 20.0, 5.0])
    tes = [10.0, 25.0]
    frames = []
    expect = np.zeros((2, nt, nz, nr, nc))
    for e, te in enumerate(tes):
        for t in range(nt):
            for k in range(nz):
                px = rng.integers(-1000, 3000, size=(nr, nc))
                slope, inter = float(rng.uniform(0.5, 2)), float(rng.uniform(-10, 10))
                slope, inter = float("%.6f" % slope), float("%.3f" % inter)
                frames.append(dict(ipp=origin + normal * 3.5 * k, pixels=px, slope=slope, inter=inter, te=te,
                                   temporal=t + 1, dim=[e + 1, t + 1, k + 1], instack=k + 1))
                expect[e, t, k] = px * slope + inter
    random.shuffle(frames)
    # TR lives in the MR Timing and Related Parameters group (C.8.13.5.2);
    # the top-level 2500 the generator also writes must not win
    timing = {"MRTimingAndRelatedParametersSequence": [seq_item(RepetitionTime="1800", FlipAngle="12")],
              "MRFOVGeometrySequence": [seq_item(InPlanePhaseEncodingDirection="ROW")]}
    enhanced_mr(os.path.join(in_dir, "enhanced", "multiecho"), row, col, spacing, frames, nr, nc, extra_shared=timing)
    aff = ref_affine(row, col, normal * 3.5, origin, spacing)
    for e in range(2):
        save_ref(ref_dir, "enh_echo%d" % (e + 1), np.transpose(expect[e], (3, 2, 1, 0)), aff, dtype="float32")
        open(os.path.join(ref_dir, "enh_echo%d.tr" % (e + 1)), "w").write("1.8\n")
        # phase encoded along the rows (the FOV/geometry group): that direction, LPS
        open(os.path.join(ref_dir, "enh_echo%d.pe" % (e + 1)), "w").write(" ".join("%.8f" % v for v in row) + "\n")

    # DWI: 4 volumes x 3 slices, frames stored slice-major; order from
    # DimensionIndexValues. A fifth, derived isotropic volume (Philips
    # appends one: DiffusionDirectionality ISOTROPIC, here with a stray
    # vector that must not count) is removed.
    bvals = [0, 1000, 1000, 2000, 1000]
    grads = [[0, 0, 0], unit([1, 0.3, 0.2]), unit([-0.1, 1, 0.5]), unit([0.3, -0.2, 1]), [0, 0, 1]]
    dirs = ["NONE", "DIRECTIONAL", "DIRECTIONAL", "DIRECTIONAL", "ISOTROPIC"]
    frames = []
    expect = np.zeros((4, 3, nr, nc))
    for k in range(3):
        for t in range(5):
            px = rng.integers(0, 3000, size=(nr, nc))
            frames.append(dict(ipp=origin + normal * 3.5 * k, pixels=px, b=bvals[t], grad=grads[t], dir=dirs[t],
                               dim=[k + 1, t + 1], instack=k + 1))
            if t < 4:
                expect[t, k] = px
    bvals, grads = bvals[:4], grads[:4]
    random.shuffle(frames)
    enhanced_mr(os.path.join(in_dir, "enhanced", "dwi"), row, col, spacing, frames, nr, nc)
    save_ref(ref_dir, "enh_dwi", np.transpose(expect, (3, 2, 1, 0)), aff, bvals=bvals, grads=grads)


def enhanced_ct(in_dir, ref_dir):
    """Enhanced CT: one stack, descending positions, rescale in the shared
    groups (kept as scl_slope/scl_inter over int16)."""
    row, col = np.array([1.0, 0, 0]), np.array([0, 1.0, 0])
    spacing = (0.7, 0.7)
    nr, nc, nz = 6, 5, 5
    origin = np.array([-20.0, -30.0, 100.0])
    frames, expect = [], np.zeros((nz, nr, nc))
    for k in range(nz):
        px = rng.integers(0, 3000, size=(nr, nc))
        frames.append(dict(ipp=origin - np.array([0, 0, 1.25 * k]), pixels=px, dim=[k + 1], instack=k + 1))
        expect[nz - 1 - k] = px - 1024  # k-th stored frame is the (nz-1-k)-th along +z
    shared = dict(PixelValueTransformationSequence=[seq_item(RescaleSlope="1", RescaleIntercept="-1024",
                                                             RescaleType="HU")])
    enhanced_mr(os.path.join(in_dir, "enhanced", "ct"), row, col, spacing, frames, nr, nc, extra_shared=shared,
                modality="CT")
    save_ref(ref_dir, "enh_ct", np.transpose(expect, (2, 1, 0)),
             ref_affine(row, col, np.array([0, 0, 1.25]), origin - np.array([0, 0, 1.25 * (nz - 1)]), spacing),
             dtype="int16")


def rgb(in_dir, ref_dir):
    row, col = np.array([0, 1.0, 0]), np.array([0, 0, -1.0])  # sagittal
    spacing = (0.9, 0.7)
    nr, nc, nz = 4, 5, 3
    for planar in (0, 1):
        suid = new_uid()
        data = rng.integers(0, 256, size=(nz, nr, nc, 3)).astype(np.uint8)
        dsets = []
        for k in range(nz):
            ds = base(ExplicitVRLittleEndian, suid, 40 + planar, k + 1)
            ds.ImageType = ["ORIGINAL", "PRIMARY", "OTHER"]
            put_slice(ds, row, col, np.cross(row, col) * 4.0 * k, spacing, np.zeros((nr, nc)))
            ds.SamplesPerPixel = 3
            ds.PhotometricInterpretation = "RGB"
            ds.PlanarConfiguration = planar
            ds.BitsAllocated = 8
            ds.BitsStored = 8
            ds.HighBit = 7
            ds.PixelRepresentation = 0
            px = data[k]
            ds.PixelData = (np.transpose(px, (2, 0, 1)) if planar else px).tobytes()
            dsets.append(ds)
        write_all(in_dir, "rgb%d" % planar, dsets)
        ref = np.transpose(data, (2, 1, 0, 3))  # (c, r, k, channel)
        save_ref(ref_dir, "rgb_planar" if planar else "rgb_interleaved", ref,
                 ref_affine(row, col, np.cross(row, col) * 4.0, np.zeros(3), spacing), dtype="rgb24")


def legacy_multiframe(path, sop_class, modality, image_type, frames_px, pointers, vectors, extra=None):
    """A multi-frame object without functional groups (PS3.3 C.7.6.6): frames
    indexed by the attributes named in FrameIncrementPointer."""
    ds = new_file(sop_class)
    ds.StudyInstanceUID = STUDY
    ds.SeriesInstanceUID = new_uid()
    ds.PatientID = "COVERAGE"
    ds.Modality = modality
    ds.ImageType = image_type
    ds.SeriesNumber = 60 + counter[0] % 30
    ds.InstanceNumber = 1
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = frames_px.shape[1:]
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.NumberOfFrames = frames_px.shape[0]
    ds.FrameIncrementPointer = pointers if len(pointers) > 1 else pointers[0]
    for k, v in vectors.items():
        setattr(ds, k, [int(x) for x in v])
    for k, v in (extra or {}).items():
        setattr(ds, k, v)
    ds.PixelData = frames_px.astype("<u2").tobytes()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    ds.save_as(path, write_like_original=False)


NM_IMAGE = "1.2.840.10008.5.1.4.1.1.20"


def legacy(in_dir, ref_dir):
    """Legacy multi-frame: NM reconstructed tomography (position of the first
    frame in the Detector Information Sequence, slices along row x column at
    SpacingBetweenSlices, slice index from SliceVector, frames stored out of
    slice order), gated NM tomography (TimeSlotVector x SliceVector: 4D), and
    an MR cine (one position, FrameTime: a time series of one slice)."""
    R = rotation(10, -8, 25)
    row, col = R[:, 0], R[:, 1]
    normal = np.cross(row, col)
    spacing = (4.42, 4.42)
    nr, nc, nz, nt = 6, 7, 5, 3
    origin = np.array([-150.0, -140.0, 60.0])
    detector = [seq_item(ImagePositionPatient=["%.6f" % v for v in origin],
                         ImageOrientationPatient=["%.8f" % v for v in list(row) + list(col)])]
    geo = dict(PixelSpacing=["%.4f" % spacing[0], "%.4f" % spacing[1]], SliceThickness="4.42",
               SpacingBetweenSlices="4.42", DetectorInformationSequence=detector, NumberOfDetectors=1)
    aff = ref_affine(row, col, normal * 4.42, origin, spacing)
    # tomography: frames stored in the slice order 3, 1, 5, 2, 4
    vol = rng.integers(0, 4000, size=(nz, nr, nc))
    order = [2, 0, 4, 1, 3]
    legacy_multiframe(os.path.join(in_dir, "legacy", "nm_tomo"), NM_IMAGE, "NM",
                      ["ORIGINAL", "PRIMARY", "RECON TOMO", "EMISSION"], vol[order],
                      [(0x0054, 0x0010), (0x0054, 0x0020), (0x0054, 0x0080)],
                      dict(EnergyWindowVector=[1] * nz, DetectorVector=[1] * nz, SliceVector=[k + 1 for k in order]),
                      dict(geo))
    save_ref(ref_dir, "nm_tomo", np.transpose(vol, (2, 1, 0)), aff, dtype="uint16")
    # gated tomography: stored slice-major, time slot inner
    vol4 = rng.integers(0, 4000, size=(nt, nz, nr, nc))
    px, slots, slices = [], [], []
    for k in range(nz):
        for t in range(nt):
            px.append(vol4[t, k])
            slots.append(t + 1)
            slices.append(k + 1)
    legacy_multiframe(os.path.join(in_dir, "legacy", "nm_gated"), NM_IMAGE, "NM",
                      ["ORIGINAL", "PRIMARY", "RECON GATED TOMO", "EMISSION"], np.stack(px),
                      [(0x0054, 0x0070), (0x0054, 0x0080)], dict(TimeSlotVector=slots, SliceVector=slices),
                      dict(geo))
    save_ref(ref_dir, "nm_gated", np.transpose(vol4, (3, 2, 1, 0)), aff, dtype="uint16")
    # MR cine: one plane, top-level position and orientation, frames in time
    cine = rng.integers(0, 3000, size=(nt + 1, nr, nc))
    mr = dict(PixelSpacing=["1.5", "1.25"], SliceThickness="8",
              ImagePositionPatient=["%.6f" % v for v in origin],
              ImageOrientationPatient=["%.8f" % v for v in list(row) + list(col)], FrameTime="40")
    legacy_multiframe(os.path.join(in_dir, "legacy", "mr_cine"), "1.2.840.10008.5.1.4.1.1.4", "MR",
                      ["ORIGINAL", "PRIMARY", "OTHER"], cine, [(0x0018, 0x1063)], {}, mr)
    save_ref(ref_dir, "mr_cine", np.transpose(cine, (2, 1, 0))[:, :, None, :],
             ref_affine(row, col, normal * 8, origin, (1.5, 1.25)), dtype="uint16")
    open(os.path.join(ref_dir, "mr_cine.dt"), "w").write("0.04\n")  # FrameTime 40 ms


def nm_projections(in_dir, ref_dir):
    """NM projections (two detectors x three angular views): not a place in
    the patient, stacked in stored order with qform/sform code 0."""
    nr, nc, nf = 5, 4, 6
    px = rng.integers(0, 4000, size=(nf, nr, nc))
    legacy_multiframe(os.path.join(in_dir, "nm_projections", "f0"), NM_IMAGE, "NM",
                      ["ORIGINAL", "PRIMARY", "TOMO", "EMISSION"], px,
                      [(0x0054, 0x0010), (0x0054, 0x0020), (0x0054, 0x0050)],
                      dict(EnergyWindowVector=[1] * nf, DetectorVector=[1, 1, 1, 2, 2, 2],
                           RotationVector=[1] * nf),
                      dict(PixelSpacing=["2", "3"], SliceThickness="5", NumberOfDetectors=2))
    stored = np.transpose(px[:, ::-1, :], (2, 1, 0))
    hdr = nib.Nifti1Header()
    hdr.set_data_shape(stored.shape)
    hdr.set_zooms((3.0, 2.0, 5.0))
    save_ref(ref_dir, "nm_projections", stored, hdr.get_base_affine(), dtype="uint16")
    open(os.path.join(ref_dir, "nm_projections.xform"), "w").write("0\n")


def enhanced_philips(in_dir, ref_dir):
    """Philips Enhanced MR: rescale per frame and the private scale slope
    (2005,100E) per frame in (2005,140F): float32 with the precise value
    FP = (PV*RS + RI) / (RS*SS), as for classic Philips images."""
    row, col = np.array([1.0, 0, 0]), np.array([0, 0, -1.0])  # coronal
    spacing = (0.9, 0.8)
    nr, nc, nz = 5, 6, 4
    origin = np.array([-40.0, 10.0, 50.0])
    normal = np.cross(row, col)
    frames, expect = [], np.zeros((nz, nr, nc))
    for k in range(nz):
        px = rng.integers(0, 4000, size=(nr, nc))
        rs, ri = float("%.6f" % rng.uniform(1, 3)), float("%.3f" % rng.uniform(-5, 5))
        ss = float(np.float32(rng.uniform(0.01, 0.05)))
        frames.append(dict(ipp=origin + normal * 2.0 * k, pixels=px, slope=rs, inter=ri, ss=ss, dim=[k + 1],
                           instack=k + 1))
        expect[k] = (px * rs + ri) / (rs * ss)
    random.shuffle(frames)
    enhanced_mr(os.path.join(in_dir, "enhanced", "philips"), row, col, spacing, frames, nr, nc,
                manufacturer="Philips Medical Systems")
    save_ref(ref_dir, "enh_philips", np.transpose(expect, (2, 1, 0)), ref_affine(row, col, normal * 2.0, origin, spacing),
             dtype="float32")


def single_pixel_spacing(in_dir, ref_dir):
    """PixelSpacing written with one value ("0.9", malformed: VM 2): read as
    isotropic, as dcm2niix does."""
    row, col = np.array([1.0, 0, 0]), np.array([0, 1.0, 0])
    nr, nc, nz = 4, 5, 3
    suid = new_uid()
    data = rng.integers(0, 3000, size=(nz, nr, nc))
    dsets = []
    for k in range(nz):
        ds = base(ExplicitVRLittleEndian, suid, 91, k + 1)
        put_slice(ds, row, col, np.array([5.0, 6.0, 2.0 * k]), (0.9, 0.9), data[k])
        ds.PixelSpacing = "0.9"
        dsets.append(ds)
    write_all(in_dir, "ps_single", dsets)
    save_ref(ref_dir, "ps_single", np.transpose(data, (2, 1, 0)),
             ref_affine(row, col, np.array([0, 0, 2.0]), np.array([5.0, 6.0, 0.0]), (0.9, 0.9)))


def pet_dynamic(in_dir, ref_dir):
    """Dynamic PET, frames of 10/10/30/60 s: shuffled instance numbers, a
    rescale slope per image (float32), AcquisitionTime per frame (its start):
    FrameDuration and FrameTimesStart in the sidecar, Units and
    DecayCorrection kept. A second series writes one AcquisitionTime for
    every frame (frame order then from ImageIndex): no FrameTimesStart."""
    row, col = np.array([1.0, 0, 0]), np.array([0, 1.0, 0])
    nr, nc, nz = 4, 5, 3
    durations, starts = [10, 10, 30, 60], [0, 10, 20, 50]
    for name, per_frame_time in (("pet_dyn", True), ("pet_dyn_onetime", False)):
        suid = new_uid()
        expect = np.zeros((len(durations), nz, nr, nc))
        inst = list(range(1, len(durations) * nz + 1))
        random.shuffle(inst)
        dsets = []
        for t, (d, st) in enumerate(zip(durations, starts)):
            for k in range(nz):
                ds = base(ExplicitVRLittleEndian, suid, 95 if per_frame_time else 96, inst.pop(), modality="CT")
                ds.Modality = "PT"
                ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.128"
                ds.ImageType = ["ORIGINAL", "PRIMARY"]
                del ds.EchoTime
                del ds.RepetitionTime
                ds.Units = "BQML"
                ds.DecayCorrection = "START"
                secs = 10 * 3600 + (st if per_frame_time else 0)
                ds.AcquisitionTime = "%02d%02d%02d.000000" % (secs // 3600, secs // 60 % 60, secs % 60)
                ds.ActualFrameDuration = d * 1000
                ds.FrameReferenceTime = "%d" % (st * 1000 + d * 500)
                ds.ImageIndex = t * nz + k + 1
                px = rng.integers(0, 30000, size=(nr, nc))
                put_slice(ds, row, col, np.array([0.0, 0.0, 3.0 * k]), (2.0, 2.0), px, signed=False)
                slope = float("%.6f" % rng.uniform(0.1, 2))
                ds.RescaleSlope, ds.RescaleIntercept = "%.6f" % slope, "0"
                expect[t, k] = px * slope
                dsets.append(ds)
        write_all(in_dir, name, dsets)
        save_ref(ref_dir, name, np.transpose(expect, (3, 2, 1, 0)),
                 ref_affine(row, col, np.array([0, 0, 3.0]), np.zeros(3), (2.0, 2.0)), dtype="float32")
        side = {"Units": "BQML", "DecayCorrection": "START", "FrameDuration": durations,
                "FrameTimesStart": starts if per_frame_time else None}
        open(os.path.join(ref_dir, name + ".side"), "w").write(json.dumps(side) + "\n")


def modality_lut(in_dir):
    """A series with a Modality LUT Sequence (0028,3000): its stored values
    are not the modality values and the LUT is not applied, so it must be
    skipped with a reason, never written (with --unsupported; no reference)."""
    row, col = np.array([1.0, 0, 0]), np.array([0, 1.0, 0])
    suid = new_uid()
    dsets = []
    for k in range(3):
        ds = base(ExplicitVRLittleEndian, suid, 97, k + 1)
        put_slice(ds, row, col, np.array([0.0, 0.0, 2.0 * k]), (1.0, 1.0), rng.integers(0, 256, size=(4, 5)),
                  signed=False)
        lut = seq_item(LUTDescriptor=[256, 0, 16], ModalityLUTType="OD")
        lut.add_new((0x0028, 0x3006), "US", [2 * v + 100 for v in range(256)])  # LUTData
        ds.ModalityLUTSequence = [lut]
        dsets.append(ds)
    write_all(in_dir, "modality_lut", dsets)


def ge_pepolar(in_dir, ref_dir):
    """GE epi_pepolar (PulseSequenceName (0019,109C), mode in UserData12
    (0019,10B3)): the reversed-polarity images have their rows stored in
    reverse order, and nothing else in the header says so. Mode 2 (reversed,
    forward, alternating by TemporalPositionIdentifier): two outputs (the
    reversed volumes as their own series); mode 1: every volume reversed."""
    R = rotation(0, 0, 6)
    row, col = R[:, 0], R[:, 1]
    normal = np.cross(row, col)
    spacing, nz, nr, nc = (2.0, 2.0), 3, 10, 8
    origin = np.array([-8.0, -12.0, 20.0])
    for mode, series_no, nt in ((2, 31, 4), (1, 32, 2)):
        suid = new_uid()
        data = rng.integers(0, 3000, size=(nt, nz, nr, nc))  # rows where the header puts them
        reversed_t = [t for t in range(nt) if mode == 1 or (t + 1) % 2 == 1]
        dsets = []
        for t in range(nt):
            for k in range(nz):
                ds = base(ExplicitVRLittleEndian, suid, series_no, t * nz + k + 1)
                ds.Manufacturer = "GE MEDICAL SYSTEMS"
                ds.TemporalPositionIdentifier = t + 1
                ds.add_new(0x00190010, "LO", "GEMS_ACQU_01")
                ds.add_new(0x0019109C, "LO", "research/ABCD/epi_pepolar")
                ds.add_new(0x001910B3, "DS", str(mode))
                ds.MRAcquisitionType = "2D"
                ds.InPlanePhaseEncodingDirection = "COL"
                ds.add_new(0x00189034, "CS", "LINEAR")  # GE's polarity: "unflipped", along the column
                stored = data[t, k][::-1] if t in reversed_t else data[t, k]
                put_slice(ds, row, col, origin + normal * 4.0 * k, spacing, stored)
                dsets.append(ds)
        write_all(in_dir, "ge_pepolar_mode%d" % mode, dsets)
        aff = ref_affine(row, col, normal * 4.0, origin, spacing)
        for kind, ts in (("rev", reversed_t), ("fwd", [t for t in range(nt) if t not in reversed_t])):
            if ts:
                name = "ge_pepolar_mode%d_%s" % (mode, kind)
                save_ref(ref_dir, name, np.transpose(data[ts], (3, 2, 1, 0)), aff)
                # polarity: along the column direction, the other way in the
                # reversed images once they are the right way up
                ped = -col if kind == "rev" else col
                open(os.path.join(ref_dir, name + ".ped"), "w").write(" ".join("%.8f" % v for v in ped) + "\n")


def main():
    in_dir, ref_dir = sys.argv[1], sys.argv[2]
    os.makedirs(in_dir, exist_ok=True)
    os.makedirs(ref_dir, exist_ok=True)
    if "--unsupported" in sys.argv:
        modality_lut(in_dir)
        return
    if "--no-position" in sys.argv:
        no_position(in_dir, ref_dir)
        nm_projections(in_dir, ref_dir)
        return
    dwi_std(in_dir, ref_dir)
    dwi_philips(in_dir, ref_dir)
    complex_parts(in_dir, ref_dir)
    variable_flip(in_dir, ref_dir)
    xa_slice_timing(in_dir, ref_dir)
    ct_tilt(in_dir, ref_dir)
    enhanced(in_dir, ref_dir)
    enhanced_ct(in_dir, ref_dir)
    rgb(in_dir, ref_dir)
    legacy(in_dir, ref_dir)
    enhanced_philips(in_dir, ref_dir)
    single_pixel_spacing(in_dir, ref_dir)
    pet_dynamic(in_dir, ref_dir)
    ge_pepolar(in_dir, ref_dir)


if __name__ == "__main__":
    main()
