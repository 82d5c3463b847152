"""Writes classic series whose vendor-specific fields need converting, and
beside each what a correct converter must produce: DWI whose diffusion
vectors are stored in the image's frame rather than the patient's (the
NIfTI, .bval and .bvec in dcm2niix's output frame: rows flipped, slices
along the normal; FSL bvec convention), and GE EPI whose timing and
polarity are in GE's own tags (<name>.side: sidecar values, null = absent).

Usage: gen_vendor_series.py IN_DIR REF_DIR

  ge_<plane>_<pe>_<order>  GE, (0019,10BB-BD) in GE's logical frame
        (frequency, phase, slice), b-value in (0043,1039) with GE's 1e9
        offset; planes ax, sag, cor and an oblique axial; phase encoding
        (0018,1312) COL or ROW; instances ascending or descending along the
        normal. Expected bvec: dcm2niix's documented rule (geCorrectBvecs,
        after its issue 970): flips by plane (sagittal x,y; coronal y,z;
        axial z), y negated, for ROW (x, y) -> (-y, x), all negated.
  ge_multishell            GE, lower shells encoded by the vector's length:
        b * |g|^2 rounded to a multiple of 5, vector scaled by
        sqrt(b / new b) (dcm2niix after issue 245).
  uih_obl                  United Imaging, (0065,1037) in the image frame
        (bvec (u0, -u1, u2)), b-value (0065,1009); a contradicting
        (0018,9089) that must lose.
  getime_<x>               GE EPI: EffectiveEchoSpacing and TotalReadoutTime
        from the echo spacing (0043,102C, us), the ASSET factor (0043,1083)
        and AcquisitionMatrix (0018,1310): lines read = phase lines x ASSET
        rounded up to an even number, TotalReadoutTime = spacing x (lines
        read - 1), EffectiveEchoSpacing = that / (reconstructed lines - 1);
        nothing without the ASSET factor. PhaseEncodingDirection from
        RectilinearPhaseEncodeReordering (0018,9034): LINEAR along the row
        or column direction, REVERSE_LINEAR against it; only the axis in 3D.
        IN_DIR/epi and REF_DIR/epi (check_coverage.py references), the 3D
        one in epi3d.
  phtime_<x>               Philips EPI: EstimatedTotalReadoutTime =
        WaterFatShift (2001,1022) / (3.4 ppm x ImagingFrequency) x EPI
        factor (2001,1013) / (EPI factor + 1), EstimatedEffectiveEchoSpacing
        = that / (reconstructed lines - 1); nothing without the EPI factor.
  gest_<x>                 GE 2D EPI of several volumes: SliceTiming
        estimated from the Protocol Data Block (0025,101B: a 4-byte length,
        then gzip text: SLICEORDER, MBACCEL, DELACQNOAV, IOPT), the
        sequence (0019,109C), the HyperBand factor (0043,10B6) and the
        software version, as dcm2niix's rule: the TR less the group delay
        divided among ceil(slices / HyperBand) excitations (one more when
        even, before 27 R03), sequential or interleaved (even first), slice
        k at excitation k mod that, in the order of the InstanceNumbers;
        MultibandAccelerationFactor the HyperBand factor.
        Diffusion (epi2): none. IN_DIR/epi (Debian's dcm2niix agrees), and
        in epi_delay what it does not implement (it ignores the group
        delay; without SLICEORDER it assumes interleaved, rapidnii writes
        nothing).
REF_DIR/oracle.txt lists the DWI series Debian's dcm2niix (v1.0.20220720)
must reproduce too: all but cor_ROW and ge_multishell, whose rules changed
after that release (issues 970 and 245); it must reproduce REF_DIR/epi too
(not epi3d: it writes no phase-encoding axis there; not epi_delay).
Run with Debian's /usr/bin/python3 (pydicom, nibabel, numpy).
"""
import gzip
import json
import os
import struct
import sys

import nibabel as nib
import numpy as np
from pydicom.uid import ExplicitVRLittleEndian

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_coverage_dicom as g  # noqa: E402

NZ, NR, NC = 3, 6, 5
SPACING, DZ = (2.0, 2.5), 4.0  # (row spacing, column spacing), slice step


def ge_bvec(b, vec, normal, pe):
    """(b, FSL bvec in dcm2niix's frame) for a GE logical-frame vector."""
    v = np.array(vec, dtype=float)
    length = np.linalg.norm(v)
    if b <= 0 or length <= 1e-6:
        return 0 if b <= 0 else b, np.zeros(3)
    if 0.03 < length < 0.97:
        scaled = b * length * length
        nb = 5.0 if 0 < scaled < 5 else np.floor((scaled + 2.5) / 5) * 5
        v = v * np.sqrt(b / nb)
        b = nb
    plane = int(np.argmax(np.abs(normal)))
    flips = {0: (0, 1), 1: (1, 2), 2: (2,)}[plane]
    for a in flips:
        v[a] = -v[a]
    v[1] = -v[1]
    if pe == "ROW":
        v = np.array([-v[1], v[0], v[2]])
    return b, -v


def write_series(path, row, col, slices_desc, volumes, extra):
    """volumes: list of (per-slice tag setter). Returns the stored pixels
    [t][k] (k ascending along the normal)."""
    row, col = np.asarray(row, float), np.asarray(col, float)
    normal = np.cross(row, col)
    origin = np.array([-6.0, -9.0, 14.0])
    suid = g.new_uid()
    dsets, pixels = [], []
    for t, setter in enumerate(volumes):
        pixels.append([])
        for k in range(NZ):
            kk = NZ - 1 - k if slices_desc else k
            ds = g.base(ExplicitVRLittleEndian, suid, 60, t * NZ + k + 1)
            ds.ScanningSequence = "EP"
            ds.SequenceVariant = "NONE"
            ds.PatientPosition = "HFS"
            extra(ds)
            setter(ds)
            px = g.rng.integers(0, 3000, size=(NR, NC))
            g.put_slice(ds, row, col, origin + normal * DZ * kk, SPACING, px)
            dsets.append((kk, px, ds))
        pixels[t] = [px for _, px, _ in sorted(dsets[-NZ:], key=lambda e: e[0])]
    g.write_all(os.path.dirname(path), os.path.basename(path), [d for _, _, d in dsets])
    return pixels, row, col, normal, origin


def save(ref_dir, name, pixels, row, col, normal, origin, bvals, bvecs):
    """The reference in dcm2niix's frame: i along the row, j against the
    column (rows flipped), k along the normal."""
    data = np.zeros((NC, NR, NZ, len(pixels)), dtype=np.float32)
    for t, vol in enumerate(pixels):
        for k, px in enumerate(vol):
            data[:, :, k, t] = px[::-1, :].T
    lps = np.eye(4)
    lps[:3, 0] = row * SPACING[1]
    lps[:3, 1] = -col * SPACING[0]
    lps[:3, 2] = normal * DZ
    lps[:3, 3] = origin + col * SPACING[0] * (NR - 1)
    ras = lps.copy()
    ras[:2, :] *= -1
    assert np.linalg.det(ras[:3, :3]) < 0  # FSL: no x flip in this frame
    nib.save(nib.Nifti1Image(data, ras), os.path.join(ref_dir, name + ".nii"))
    open(os.path.join(ref_dir, name + ".bval"), "w").write(" ".join("%g" % b for b in bvals) + "\n")
    v = np.array(bvecs).T
    open(os.path.join(ref_dir, name + ".bvec"), "w").write(
        "\n".join(" ".join("%.8f" % x for x in v[c]) for c in range(3)) + "\n")


def ge_tags(b, vec, pe):
    def setter(ds):
        ds.Manufacturer = "GE MEDICAL SYSTEMS"
        ds.InPlanePhaseEncodingDirection = pe
        ds.add_new(0x00190010, "LO", "GEMS_ACQU_01")
        ds.add_new(0x0019109C, "LO", "epi2")
        ds.add_new(0x0019109E, "LO", "epi2")
        ds.add_new(0x001910BB, "DS", "%.6f" % vec[0])
        ds.add_new(0x001910BC, "DS", "%.6f" % vec[1])
        ds.add_new(0x001910BD, "DS", "%.6f" % vec[2])
        ds.add_new(0x00430010, "LO", "GEMS_PARM_01")
        ds.add_new(0x00431039, "IS", ["%d" % (b + 1000000000 if b else 0), "8", "0", "0"])
    return setter


def ge(in_dir, ref_dir, oracle):
    r = g.rotation(12, 0, 7)
    planes = {"ax": ((1, 0, 0), (0, 1, 0)), "sag": ((0, 1, 0), (0, 0, -1)), "cor": ((1, 0, 0), (0, 0, -1)),
              "obl": (r[:, 0], r[:, 1])}
    grads = [(0, (0, 0, 0)), (1000, (1, 0, 0)), (1000, (0, 1, 0)), (1000, (0, 0, 1)), (1000, (0.6, 0.48, 0.64)),
             (1000, (-0.36, 0.8, -0.48))]
    for pname, (row, col) in planes.items():
        for pe in ("COL", "ROW"):
            for desc in (False, True):
                name = "ge_%s_%s_%s" % (pname, pe, "desc" if desc else "asc")
                res = write_series(os.path.join(in_dir, name), row, col, desc,
                                   [ge_tags(b, v, pe) for b, v in grads], lambda ds: None)
                expect = [ge_bvec(b, v, res[3], pe) for b, v in grads]
                save(ref_dir, name, *res, [e[0] for e in expect], [e[1] for e in expect])
                if not (pname == "cor" and pe == "ROW"):
                    oracle.append(name)
    # shells by vector length: 1000 * 0.25 = 250, 1000 * 0.1681 = 168.1 -> 170
    shells = [(0, (0, 0, 0)), (1000, (0.3, 0.4, 0)), (1000, (0, 0.41, 0)), (1000, (0.8, 0, 0.6)),
              (1000, (0, 0, -0.5))]
    row, col = (1, 0, 0), (0, 1, 0)
    res = write_series(os.path.join(in_dir, "ge_multishell"), row, col, False,
                       [ge_tags(b, v, "COL") for b, v in shells], lambda ds: None)
    expect = [ge_bvec(b, v, res[3], "COL") for b, v in shells]
    save(ref_dir, "ge_multishell", *res, [e[0] for e in expect], [e[1] for e in expect])


def uih(in_dir, ref_dir, oracle):
    r = g.rotation(-9, 14, 4)
    row, col = r[:, 0], r[:, 1]
    vecs = [(0, (0, 0, 0)), (800, (1, 0, 0)), (800, (0, 1, 0)), (800, (0, 0, 1)), (800, (0.48, -0.6, 0.64))]

    def tags(b, u):
        def setter(ds):
            ds.Manufacturer = "UIH"
            ds.add_new(0x00189087, "FD", float(b))
            ds.add_new(0x00189089, "FD", [0.0, 0.0, 1.0] if b else [0.0, 0.0, 0.0])  # contradicts: must lose
            ds.add_new(0x00650010, "LO", "Image Private Header")
            ds.add_new(0x00651009, "FD", float(b))
            ds.add_new(0x00651037, "FD", [float(x) for x in u])
        return setter
    res = write_series(os.path.join(in_dir, "uih_obl"), row, col, True, [tags(b, u) for b, u in vecs],
                       lambda ds: None)
    save(ref_dir, "uih_obl", *res, [b for b, _ in vecs],
         [np.array([u[0], -u[1], u[2]], dtype=float) if b else np.zeros(3) for b, u in vecs])
    oracle.append("uih_obl")


def ge_epi(in_dir, ref_dir):
    """GE EPI timing and polarity (no diffusion)."""
    cases = {  # echo spacing us, ASSET, AcquisitionMatrix, PE, recon size, reordering, acquisition
        "a": (508, "1\\1", [0, 64, 64, 0], "COL", 64, "LINEAR", "2D"),
        "b": (508, "0.5\\1", [0, 64, 64, 0], "COL", 64, "REVERSE_LINEAR", "2D"),
        "c": (508, "1\\1", [0, 64, 64, 0], "COL", 128, None, "2D"),
        "d": (508, "1\\1", [0, 96, 72, 0], "COL", 96, "LINEAR", "2D"),
        "e": (508, "1\\1", [72, 0, 0, 96], "ROW", 96, "LINEAR", "2D"),
        "f": (508, None, [0, 64, 64, 0], "COL", 64, "REVERSE_LINEAR", "2D"),
        "g": (508, "0.667\\1", [0, 64, 64, 0], "COL", 64, "LINEAR", "2D"),
        "h": (508, "0.75", [0, 70, 70, 0], "ROW", 80, "REVERSE_LINEAR", "2D"),
        "i": (640, "0.6\\1", [0, 90, 90, 0], "COL", 96, "LINEAR", "3D"),
    }
    r = g.rotation(8, -5, 3)
    row, col = r[:, 0], r[:, 1]
    normal = np.cross(row, col)
    for key, (es, asset, acq, pe, n, reorder, acq_type) in cases.items():
        name = "getime_" + key
        # the 3D one apart: Debian's dcm2niix writes no phase-encoding axis for it
        sub = "epi" if acq_type == "2D" else "epi3d"
        idir, rdir = os.path.join(in_dir, sub), os.path.join(ref_dir, sub)
        os.makedirs(rdir, exist_ok=True)
        suid = g.new_uid()
        dsets = []
        stored = np.zeros((2, 2, n, n))
        for t in range(2):
            for k in range(2):
                ds = g.base(ExplicitVRLittleEndian, suid, 70, t * 2 + k + 1)
                ds.Manufacturer = "GE MEDICAL SYSTEMS"
                ds.ScanningSequence = "EP"
                ds.SequenceVariant = "NONE"
                ds.MRAcquisitionType = acq_type
                ds.InPlanePhaseEncodingDirection = pe
                ds.AcquisitionMatrix = acq
                ds.TemporalPositionIdentifier = t + 1
                if reorder:
                    ds.add_new(0x00189034, "CS", reorder)
                ds.add_new(0x00190010, "LO", "GEMS_ACQU_01")
                ds.add_new(0x0019109C, "LO", "epi2")
                ds.add_new(0x00430010, "LO", "GEMS_PARM_01")
                ds.add_new(0x0043102C, "SS", es)
                if asset:
                    ds.add_new(0x00431083, "DS", asset.split("\\"))
                stored[t, k] = g.rng.integers(0, 3000, size=(n, n))
                g.put_slice(ds, row, col, normal * 3.0 * k, (2.0, 2.0), stored[t, k])
                dsets.append(ds)
        g.write_all(idir, name, dsets)
        g.save_ref(rdir, name, np.transpose(stored, (3, 2, 1, 0)),
                   g.ref_affine(row, col, normal * 3.0, np.zeros(3), (2.0, 2.0)))
        side = {"EffectiveEchoSpacing": None, "TotalReadoutTime": None}
        if asset:
            lines = acq[2] if acq[2] > 0 else acq[3]
            read = 2 * int(np.ceil(lines * float(asset.split("\\")[0]) / 2 - 1e-9))
            side["TotalReadoutTime"] = es * 1e-6 * (read - 1)
            side["EffectiveEchoSpacing"] = side["TotalReadoutTime"] / (n - 1)
        json.dump(side, open(os.path.join(rdir, name + ".side"), "w"))
        # the direction phase encoding goes (LPS); the axis alone without polarity or in 3D
        along = col if pe == "COL" else row
        polar = reorder is not None and acq_type == "2D"
        ped = along * (-1 if reorder == "REVERSE_LINEAR" else 1)
        open(os.path.join(rdir, name + (".ped" if polar else ".pe")), "w").write(
            " ".join("%.8f" % v for v in (ped if polar else along)) + "\n")


def philips_epi(in_dir, ref_dir):
    """Philips EPI: the readout only as WaterFatShift (2001,1022, pixels)
    with the EPI factor (2001,1013); dcm2niix's estimates."""
    cases = {  # water-fat shift px, EPI factor, imaging frequency MHz, recon size, PE
        "a": (10.0, 35, 127.8, 64, "COL"),
        "b": (14.5, 47, 127.7, 96, "COL"),
        "c": (10.0, 35, 63.9, 80, "ROW"),
        "d": (10.0, None, 127.8, 64, "COL"),
    }
    row, col = np.array([1.0, 0, 0]), np.array([0, 1.0, 0])
    idir, rdir = os.path.join(in_dir, "epi"), os.path.join(ref_dir, "epi")
    os.makedirs(rdir, exist_ok=True)
    for key, (wfs, epi, freq, n, pe) in cases.items():
        name = "phtime_" + key
        suid = g.new_uid()
        dsets = []
        stored = np.zeros((2, 2, n, n))
        for t in range(2):
            for k in range(2):
                ds = g.base(ExplicitVRLittleEndian, suid, 71, t * 2 + k + 1)
                ds.Manufacturer = "Philips Medical Systems"
                ds.ScanningSequence = "GR"
                ds.SequenceVariant = "SK"
                ds.MRAcquisitionType = "2D"
                ds.ImageType = ["ORIGINAL", "PRIMARY", "M_FFE", "M", "FFE"]
                ds.ImagingFrequency = "%.4f" % freq
                ds.InPlanePhaseEncodingDirection = pe
                ds.TemporalPositionIdentifier = t + 1
                ds.add_new(0x20010010, "LO", "Philips Imaging DD 001")
                ds.add_new(0x20011022, "FL", wfs)
                if epi:
                    ds.add_new(0x20011013, "SL", epi)
                stored[t, k] = g.rng.integers(0, 3000, size=(n, n))
                g.put_slice(ds, row, col, np.array([0, 0, 4.0 * k]), (2.0, 2.0), stored[t, k])
                dsets.append(ds)
        g.write_all(idir, name, dsets)
        g.save_ref(rdir, name, np.transpose(stored, (3, 2, 1, 0)),
                   g.ref_affine(row, col, np.array([0, 0, 4.0]), np.zeros(3), (2.0, 2.0)))
        side = {"EstimatedTotalReadoutTime": None, "EstimatedEffectiveEchoSpacing": None}
        if epi:
            side["EstimatedTotalReadoutTime"] = wfs / (3.4 * freq) * epi / (epi + 1)
            side["EstimatedEffectiveEchoSpacing"] = side["EstimatedTotalReadoutTime"] / (n - 1)
        json.dump(side, open(os.path.join(rdir, name + ".side"), "w"))
        open(os.path.join(rdir, name + ".pe"), "w").write(
            " ".join("%.8f" % v for v in (col if pe == "COL" else row)) + "\n")


def ge_protocol_block(text):
    """(0025,101B) as GE stores it: little-endian length, then gzip."""
    z = gzip.compress(text.encode(), mtime=0)
    b = struct.pack("<I", len(z)) + z
    return b + b"\0" if len(b) % 2 else b


def ge_slice_timing(in_dir, ref_dir):
    """GE EPI slice timing from the protocol (no per-slice times in GE images)."""
    r3 = "27\\LX\\MR Software release:RX27.0_R03_1831.a"
    r2 = "27\\LX\\MR Software release:RX27.0_R02_1831.a"
    cases = {  # sub, slices, sequence, IOPT, SLICEORDER, MBACCEL, (0043,10B6), DELACQNOAV, software, descending
        "seq": ("epi", 5, "epiRT", "FMRI", 0, 1, None, "0", r2, False),
        "int_desc": ("epi", 5, "epiRT", "FMRI", 1, 1, None, "0", r2, True),
        "int6": ("epi", 6, "epiRT", "FMRI", 1, 1, None, "0", r2, False),
        "mb_r2": ("epi", 8, "epiRT", "FMRI", 1, 1, 2, "0", r2, False),
        "mb_r3": ("epi", 8, "epiRT", "FMRI", 1, 2, None, "0", r3, True),
        "mph": ("epi", 5, "epi", "MPh", 1, 1, None, "0", r2, False),
        "diff": ("epi", 5, "epi2", "DIFF", 1, 1, None, "0", r2, False),
        "delay": ("epi_delay", 5, "epiRT", "FMRI", 1, 1, None, "0.5", r2, False),
        "noorder": ("epi_delay", 5, "epiRT", "FMRI", None, 1, None, "0", r2, False),
    }
    tr = 2.0
    row, col = np.array([1.0, 0, 0]), np.array([0, 1.0, 0])
    for key, (sub, nz, seq, iopt, order, mbaccel, hyperband, delay, sw, desc) in cases.items():
        name = "gest_" + key
        idir, rdir = os.path.join(in_dir, sub), os.path.join(ref_dir, sub)
        os.makedirs(rdir, exist_ok=True)
        text = 'ENTRY "1"\nPSEQ "EPI"\nIOPT "%s"\n' % iopt
        if order is not None:
            text += 'SLICEORDER "%d"\n' % order
        text += 'MBACCEL "%d"\nDELACQ "Custom"\nDELACQNOAV "%s"\nNOSLC "%d"\n' % (mbaccel, delay, nz)
        suid = g.new_uid()
        dsets = []
        stored = np.zeros((2, nz, 4, 5))
        for t in range(2):
            for k in range(nz):
                z = nz - 1 - k if desc else k  # instance k lies at slice z
                ds = g.base(ExplicitVRLittleEndian, suid, 72, t * nz + k + 1)
                ds.Manufacturer = "GE MEDICAL SYSTEMS"
                ds.ScanningSequence = "EP"
                ds.SequenceVariant = "NONE"
                ds.MRAcquisitionType = "2D"
                ds.RepetitionTime = "%g" % (tr * 1000)
                ds.SoftwareVersions = sw.split("\\")
                ds.TemporalPositionIdentifier = t + 1
                ds.add_new(0x00190010, "LO", "GEMS_ACQU_01")
                ds.add_new(0x0019109C, "LO", seq)
                ds.add_new(0x00250010, "LO", "GEMS_SERS_01")
                ds.add_new(0x0025101B, "OB", ge_protocol_block(text))
                if hyperband:
                    ds.add_new(0x00430010, "LO", "GEMS_PARM_01")
                    ds.add_new(0x004310B6, "LO", ["%d" % hyperband, "4", "19"])
                stored[t, z] = g.rng.integers(0, 3000, size=(4, 5))
                g.put_slice(ds, row, col, np.array([0, 0, 3.0 * z]), (2.0, 2.0), stored[t, z])
                dsets.append(ds)
        g.write_all(idir, name, dsets)
        g.save_ref(rdir, name, np.transpose(stored, (3, 2, 1, 0)),
                   g.ref_affine(row, col, np.array([0, 0, 3.0]), np.zeros(3), (2.0, 2.0)))
        times = None
        if seq != "epi2" and order is not None:
            mb = max(mbaccel, hyperband or 1)
            exc = -(-nz // mb)
            if mb > 1 and sw == r2 and exc % 2 == 0:
                exc += 1
            step = (tr - float(delay)) / exc
            st = [step * (i if order == 0 else i // 2 if i % 2 == 0 else (exc + 1) // 2 + i // 2) for i in range(exc)]
            if mb > 1 and sw == r3 and order and exc > 2 and exc % 2 == 0:
                st[exc - 1], st[exc - 3] = st[exc - 3], st[exc - 1]
            # acquired in InstanceNumber order: slice z is instance nz-1-z when descending
            times = [st[(nz - 1 - z if desc else z) % exc] for z in range(nz)]
        mbf = max(mbaccel, hyperband or 1)
        json.dump({"SliceTiming": times, "MultibandAccelerationFactor": mbf if mbf > 1 else None},
                  open(os.path.join(rdir, name + ".side"), "w"))


def main():
    in_dir, ref_dir = sys.argv[1], sys.argv[2]
    os.makedirs(in_dir, exist_ok=True)
    os.makedirs(ref_dir, exist_ok=True)
    oracle = []
    ge(in_dir, ref_dir, oracle)
    uih(in_dir, ref_dir, oracle)
    ge_epi(in_dir, ref_dir)
    philips_epi(in_dir, ref_dir)
    ge_slice_timing(in_dir, ref_dir)
    open(os.path.join(ref_dir, "oracle.txt"), "w").write("\n".join(oracle) + "\n")


if __name__ == "__main__":
    main()
