#!/usr/bin/python3
"""Writes a synthetic DICOM archive of CT-like and MR-like series for the
end-to-end benchmark (bench/e2e/run_e2e.py).

Usage: gen_archive.py OUT_DIR [--size-mb N] [--seed S] [--quiet]

Layout: OUT_DIR/pat<P>/study<S>/series<N>/IM<slice>.dcm, one file per
slice, explicit VR little endian, written with pydicom. Patients are added
until about N MB (default 100) of DICOM files are written; each patient has
  - a CT study: a head CT (512x512, 100-200 axial slices, int16 stored with
    RescaleIntercept -1024, air at -1000 HU, outside the field of view
    -3024 HU) and, for some patients, a chest CT (512x512, 100-160 slices:
    body, fat, lungs with vessels, spine);
  - an MR study: a sagittal T1w (256x256, 120-176 slices) and an axial T2w
    (256x256, 40-80 slices), uint16 with 12 bits stored (0..4095).
Content is smooth anatomy (ellipsoid head, scalp, skull shell of varying
thickness, brain with grey/white structure and ventricles, smooth bias
field) plus noise (Gaussian for CT, Rician for MR), different on every
slice: neither constant nor pure noise, so deflate sees realistic data.
Archives below 30 MB use short series (a few slices each) for smoke tests.
The output depends only on --size-mb and --seed (UIDs, dates and voxels are
derived from the seed), so the same command writes the same archive.
"""
import argparse
import hashlib
import os
import sys
import time

import numpy as np
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_STORAGE = "1.2.840.10008.5.1.4.1.1.4"


def make_uid(*parts):
    """A deterministic UID under the 2.25 (UUID-derived) root."""
    h = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return "2.25.%d" % int.from_bytes(h[:15], "big")


# ------------------------------------------------------------- anatomy --

class Head:
    """An ellipsoid head centred near the origin (mm, LPS)."""

    def __init__(self, rng):
        s = rng.uniform(0.92, 1.08)
        self.a, self.b, self.c = 72.0 * s, 92.0 * s, 88.0 * s  # x (L-R), y (A-P), z (S-I)
        self.centre = rng.uniform(-6, 6, size=3)
        self.phase = rng.uniform(0, 2 * np.pi, size=6)

    def labels(self, x, y, z):
        """Per point: normalised radius r and a smooth grey/white field."""
        x = x - self.centre[0]
        y = y - self.centre[1]
        z = z - self.centre[2]
        r = np.sqrt((x / self.a) ** 2 + (y / self.b) ** 2 + (z / self.c) ** 2)
        p = self.phase
        # skull thickness varies smoothly over the surface (5-9 mm of ~80 mm)
        wob = 0.012 * np.sin(x / 17.0 + p[0]) * np.cos(y / 23.0 + p[1]) + 0.01 * np.sin(z / 19.0 + p[2])
        # grey/white: a smooth folded field
        gw = (np.sin(x / 7.5 + p[3]) * np.sin(y / 8.5 + p[4]) * np.cos(z / 9.0 + p[5])
              + 0.5 * np.sin((x + y) / 13.0) * np.cos((y - z) / 15.0))
        # ventricles: two small ellipsoids either side of the midline
        v = np.minimum(((x - 9) / 6.0) ** 2 + (y / 22.0) ** 2 + ((z - 8) / 10.0) ** 2,
                       ((x + 9) / 6.0) ** 2 + (y / 22.0) ** 2 + ((z - 8) / 10.0) ** 2)
        return r, wob, gw, v

    def ct_hu(self, x, y, z, rng, noise=10.0):
        r, wob, gw, v = self.labels(x, y, z)
        hu = np.full(r.shape, -1000.0, dtype=np.float32)
        scalp = r < 1.0
        skull = r < 0.94 + wob
        brain = r < 0.875 + wob
        hu[scalp] = 25.0 + 20.0 * np.sin(x[scalp] / 11.0) * np.cos(y[scalp] / 9.0) - 60.0 * (r[scalp] > 0.97)
        bone = skull & ~brain
        hu[bone] = 900.0 + 350.0 * np.sin(x[bone] / 13.0 + z[bone] / 17.0) * np.cos(y[bone] / 21.0)
        hu[brain] = np.where(gw[brain] > 0.25, 38.0, 29.0) + 3.0 * np.sin(z[brain] / 25.0)
        hu[brain & (v < 1.0)] = 6.0
        hu += rng.normal(0.0, noise, size=hu.shape).astype(np.float32)
        return hu

    def mr_t1(self, x, y, z, rng, weighting="T1"):
        r, wob, gw, v = self.labels(x, y, z)
        if weighting == "T1":
            scalp_v, bone_v, grey, white, csf = 1900.0, 180.0, 1050.0, 1500.0, 320.0
        else:  # T2
            scalp_v, bone_v, grey, white, csf = 1300.0, 120.0, 1350.0, 950.0, 3100.0
        s = np.zeros(r.shape, dtype=np.float32)
        scalp = r < 1.0
        skull = r < 0.94 + wob
        brain = r < 0.875 + wob
        s[scalp] = scalp_v
        s[skull & ~brain] = bone_v
        inb = brain
        s[inb] = np.where(gw[inb] > 0.25, grey, white)
        s[brain & (v < 1.0)] = csf
        # CSF rim just inside the skull
        rim = brain & (r > 0.85 + wob)
        s[rim] = csf * 0.8 + grey * 0.2
        # smooth coil bias field
        bias = 1.0 + 0.18 * np.sin(x / 60.0 + 0.4) * np.cos(y / 70.0) + 0.1 * np.sin(z / 50.0)
        s *= bias.astype(np.float32)
        sigma = 22.0
        re = s + rng.normal(0.0, sigma, size=s.shape).astype(np.float32)
        im = rng.normal(0.0, sigma, size=s.shape).astype(np.float32)
        return np.sqrt(re * re + im * im)  # Rician magnitude


class Chest:
    """An elliptical body with fat, muscle, lungs with vessels and a spine."""

    def __init__(self, rng):
        s = rng.uniform(0.9, 1.12)
        self.a, self.b = 165.0 * s, 115.0 * s
        self.phase = rng.uniform(0, 2 * np.pi, size=4)

    def ct_hu(self, x, y, z, rng, noise=14.0):
        p = self.phase
        a = self.a * (1.0 + 0.05 * np.sin(z / 80.0 + p[0]))
        b = self.b * (1.0 + 0.04 * np.cos(z / 70.0 + p[1]))
        rb = np.sqrt((x / a) ** 2 + ((y - 10) / b) ** 2)
        hu = np.full(x.shape, -1000.0, dtype=np.float32)
        body = rb < 1.0
        hu[body] = -95.0 + 10.0 * np.sin(x[body] / 15.0)  # subcutaneous fat
        muscle = rb < 0.9
        hu[muscle] = 45.0 + 12.0 * np.sin(x[muscle] / 21.0 + p[2]) * np.cos(y[muscle] / 17.0)
        lung = np.minimum(((np.abs(x) - 0.45 * a) / (0.33 * a)) ** 2 + ((y + 5) / (0.6 * b)) ** 2, 9.0) < 1.0
        vessels = (np.sin(x / 6.0 + p[3]) * np.sin(y / 5.0) * np.cos(z / 7.0)) > 0.82
        hu[lung] = -860.0 + 25.0 * np.sin(y[lung] / 30.0)
        hu[lung & vessels] = 30.0
        spine = ((x / 18.0) ** 2 + ((y - 0.62 * b) / 16.0) ** 2) < 1.0
        hu[spine] = 350.0 + 250.0 * np.cos(z[spine] / 6.0)
        # the table under the patient
        table = (y > b + 25) & (y < b + 35) & (np.abs(x) < 220)
        hu[table] = 200.0
        hu += rng.normal(0.0, noise, size=hu.shape).astype(np.float32)
        return hu


# ----------------------------------------------------------- writing --

def slice_grid(ipp, row_dir, col_dir, dr, dc, rows, cols):
    """LPS coordinates of every pixel: IPP + c*dc*row_dir + r*dr*col_dir."""
    rr, cc = np.meshgrid(np.arange(rows, dtype=np.float32), np.arange(cols, dtype=np.float32), indexing="ij")
    pts = [ipp[k] + cc * dc * row_dir[k] + rr * dr * col_dir[k] for k in range(3)]
    return pts


def base_dataset(sop_class, modality, pat, study, series):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = "1.2.3"
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = make_uid("rapidnii-bench-impl")
    ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.is_little_endian = True
    ds.is_implicit_VR = False
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = sop_class
    ds.StudyDate = study["date"]
    ds.SeriesDate = study["date"]
    ds.AcquisitionDate = study["date"]
    ds.StudyTime = "101500"
    ds.SeriesTime = "1020%02d" % series["number"]
    ds.AcquisitionTime = ds.SeriesTime
    ds.AccessionNumber = "ACC%06d" % (pat["index"] * 100 + study["index"])
    ds.Modality = modality
    ds.Manufacturer = "SyntheticCo"
    ds.ManufacturerModelName = "BenchScanner " + modality
    ds.InstitutionName = "Bench Hospital"
    ds.StationName = "BENCH" + modality
    ds.StudyDescription = study["description"]
    ds.SeriesDescription = series["description"]
    ds.ProtocolName = series["protocol"]
    ds.PatientName = pat["name"]
    ds.PatientID = pat["id"]
    ds.PatientBirthDate = pat["birth"]
    ds.PatientSex = pat["sex"]
    ds.PatientAge = "%03dY" % pat["age"]
    ds.BurnedInAnnotation = "NO"
    ds.StudyInstanceUID = study["uid"]
    ds.SeriesInstanceUID = series["uid"]
    ds.StudyID = "S%d" % study["index"]
    ds.SeriesNumber = series["number"]
    ds.AcquisitionNumber = 1
    ds.FrameOfReferenceUID = make_uid("for", study["uid"])
    ds.PositionReferenceIndicator = ""
    ds.SliceThickness = "%.3f" % series["dz"]
    ds.SpacingBetweenSlices = "%.3f" % series["dz"]
    ds.ImageOrientationPatient = ["%.6f" % v for v in list(series["row_dir"]) + list(series["col_dir"])]
    ds.PixelSpacing = ["%.6f" % series["dr"], "%.6f" % series["dc"]]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = series["rows"]
    ds.Columns = series["cols"]
    ds.BitsAllocated = 16
    if modality == "CT":
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        ds.RescaleIntercept = "-1024"
        ds.RescaleSlope = "1"
        ds.RescaleType = "HU"
        ds.KVP = "120"
        ds.ConvolutionKernel = "STANDARD"
        ds.WindowCenter = "40"
        ds.WindowWidth = "400"
    else:
        ds.BitsStored = 12
        ds.HighBit = 11
        ds.PixelRepresentation = 0
        ds.MagneticFieldStrength = "3"
        ds.EchoTime = series["te"]
        ds.RepetitionTime = series["tr"]
        ds.FlipAngle = series["flip"]
        ds.ScanningSequence = "GR" if series["weighting"] == "T1" else "SE"
        ds.SequenceVariant = "SP"
        ds.MRAcquisitionType = "3D" if series["weighting"] == "T1" else "2D"
        ds.ImagingFrequency = "123.2"
        ds.EchoNumbers = 1
    return ds


def write_series(out_dir, pat, study, series, anatomy, rng):
    ds = base_dataset(series["sop_class"], series["modality"], pat, study, series)
    folder = os.path.join(out_dir, pat["dir"], study["dir"], "series%02d" % series["number"])
    os.makedirs(folder, exist_ok=True)
    row_dir = np.asarray(series["row_dir"], dtype=np.float64)
    col_dir = np.asarray(series["col_dir"], dtype=np.float64)
    normal = np.cross(row_dir, col_dir)
    rows, cols = series["rows"], series["cols"]
    dr, dc, dz = series["dr"], series["dc"], series["dz"]
    first = series["origin"]
    nbytes = 0
    rr, cc = np.meshgrid(np.arange(rows, dtype=np.float32), np.arange(cols, dtype=np.float32), indexing="ij")
    for k in range(series["slices"]):
        ipp = first + k * dz * normal
        x, y, z = (np.float32(ipp[i]) + cc * np.float32(dc * row_dir[i]) + rr * np.float32(dr * col_dir[i])
                   for i in range(3))
        if series["modality"] == "CT":
            hu = anatomy.ct_hu(x, y, z, rng)
            # outside the reconstruction field of view: -3024 HU (stored -2000)
            fov = (rr - rows / 2.0) ** 2 + (cc - cols / 2.0) ** 2 > (0.49 * rows) ** 2
            hu[fov] = -3024.0
            stored = np.clip(np.rint(hu + 1024.0), -2000, 4095).astype("<i2")
        else:
            s = anatomy.mr_t1(x, y, z, rng, series["weighting"])
            stored = np.clip(np.rint(s), 0, 4095).astype("<u2")
        sop = make_uid(series["uid"], k)
        ds.file_meta.MediaStorageSOPInstanceUID = sop
        ds.SOPInstanceUID = sop
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = ["%.6f" % v for v in ipp]
        ds.SliceLocation = "%.6f" % float(np.dot(ipp, normal))
        ds.PixelData = stored.tobytes()
        path = os.path.join(folder, "IM%04d.dcm" % (k + 1))
        ds.save_as(path, write_like_original=False)
        nbytes += os.path.getsize(path)
    return nbytes


FIRST = ["Ada", "Ben", "Cleo", "Dara", "Emil", "Fay", "Gus", "Hana", "Ivo", "Jun", "Kai", "Lena"]
LAST = ["Alder", "Birch", "Cedar", "Dogwood", "Elm", "Fir", "Gorse", "Hazel", "Ivy", "Juniper"]


def plan_patient(p, rng, small):
    pat = {
        "index": p,
        "dir": "pat%03d" % p,
        "id": "BENCH%05d" % (1000 + p),
        "name": "%s^%s" % (LAST[p % len(LAST)], FIRST[(p * 7) % len(FIRST)]),
        "birth": "19%02d%02d%02d" % (40 + p % 50, 1 + p % 12, 1 + p % 28),
        "sex": "MF"[p % 2],
        "age": 30 + p % 50,
    }
    year = 2015 + p % 8
    ct_study = {"index": 1, "dir": "study1", "uid": make_uid("study", p, 1), "date": "%d0312" % year,
                "description": "CT HEAD"}
    mr_study = {"index": 2, "dir": "study2", "uid": make_uid("study", p, 2), "date": "%d0419" % year,
                "description": "MR BRAIN"}
    series = []

    def n(lo, hi, small_n):
        return small_n if small else int(rng.integers(lo, hi + 1))

    # head CT: axial, 0.43-0.55 mm pixels, 0.625-1.25 mm slices
    dpx = float(rng.uniform(0.43, 0.55))
    dz = float(rng.choice([0.625, 1.0, 1.25]))
    ns = n(100, 200, 6)
    series.append((ct_study, {
        "number": 2, "modality": "CT", "sop_class": CT_STORAGE, "description": "Head 1.0 STD",
        "protocol": "HEAD_ROUTINE", "rows": 512, "cols": 512, "dr": dpx, "dc": dpx, "dz": dz,
        "slices": ns, "row_dir": (1, 0, 0), "col_dir": (0, 1, 0),
        "origin": np.array([-256 * dpx, -256 * dpx, -ns * dz / 2.0]), "anatomy": "head"}))
    if p % 2 == 0:
        dpx = float(rng.uniform(0.68, 0.82))
        dz = float(rng.choice([1.25, 2.0, 2.5]))
        ns = n(100, 160, 5)
        series.append((ct_study, {
            "number": 3, "modality": "CT", "sop_class": CT_STORAGE, "description": "Chest 2.5 LUNG",
            "protocol": "CHEST_ROUTINE", "rows": 512, "cols": 512, "dr": dpx, "dc": dpx, "dz": dz,
            "slices": ns, "row_dir": (1, 0, 0), "col_dir": (0, 1, 0),
            "origin": np.array([-256 * dpx, -256 * dpx, -ns * dz / 2.0]), "anatomy": "chest"}))
    # sagittal T1w: rows run A->P (+y), columns S->I (-z); slices along +x
    ns = n(120, 176, 8)
    series.append((mr_study, {
        "number": 5, "modality": "MR", "sop_class": MR_STORAGE, "description": "T1 MPRAGE SAG",
        "protocol": "t1_mprage_sag", "rows": 256, "cols": 256, "dr": 1.0, "dc": 1.0, "dz": 1.0,
        "slices": ns, "row_dir": (0, 1, 0), "col_dir": (0, 0, -1), "weighting": "T1",
        "te": "2.98", "tr": "2300", "flip": "9",
        "origin": np.array([ns / 2.0, -128.0, 128.0]), "anatomy": "head"}))
    # axial T2w
    ns = n(40, 80, 6)
    series.append((mr_study, {
        "number": 7, "modality": "MR", "sop_class": MR_STORAGE, "description": "T2 TSE AX",
        "protocol": "t2_tse_tra", "rows": 256, "cols": 256, "dr": 0.9, "dc": 0.9, "dz": 3.0,
        "slices": ns, "row_dir": (1, 0, 0), "col_dir": (0, 1, 0), "weighting": "T2",
        "te": "95", "tr": "5000", "flip": "150",
        "origin": np.array([-115.2, -115.2, -ns * 3.0 / 2.0]), "anatomy": "head"}))
    for study, s in series:
        s["uid"] = make_uid("series", p, study["index"], s["number"])
    # MR first, so that an archive cut short at its size still holds both modalities
    series.sort(key=lambda t: t[1]["modality"] != "MR")
    return pat, series


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir")
    ap.add_argument("--size-mb", type=float, default=100.0, help="approximate archive size in MB (default 100)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    if os.path.exists(a.out_dir) and os.listdir(a.out_dir):
        print("gen_archive: %s exists and is not empty" % a.out_dir, file=sys.stderr)
        return 2
    os.makedirs(a.out_dir, exist_ok=True)
    small = a.size_mb < 30
    target = a.size_mb * 1e6
    total, files, nseries, p = 0, 0, 0, 0
    t0 = time.time()
    while total < target:
        rng = np.random.default_rng([a.seed, p])
        pat, series = plan_patient(p, rng, small)
        head, chest = Head(rng), Chest(rng)
        for study, s in series:
            if total >= target:
                break
            anatomy = chest if s["anatomy"] == "chest" else head
            srng = np.random.default_rng([a.seed, p, study["index"], s["number"]])
            total += write_series(a.out_dir, pat, study, s, anatomy, srng)
            files += s["slices"]
            nseries += 1
            if not a.quiet:
                print("gen_archive: %s/%s series %d (%s %dx%dx%d): %.0f MB so far, %.0f s" % (
                    pat["dir"], study["dir"], s["number"], s["modality"], s["rows"], s["cols"], s["slices"],
                    total / 1e6, time.time() - t0), flush=True)
        p += 1
    print("gen_archive: %d patients, %d series, %d files, %.1f MB in %.1f s" % (
        p, nseries, files, total / 1e6, time.time() - t0), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
