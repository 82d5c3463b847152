"""Archive-scale reliability tests (issue: resume, bad input, shards, zip/tar).

Usage: e2e_archive.py RAPIDNII SCENARIO WORK_DIR
  resume-kill   SIGKILL the converter at several points of a multi-series run,
                rerun: the final OUT_DIR is byte-identical to an uninterrupted
                run, no temporary file is left, and no visible output is ever
                half-written
  bad-input     every kind of bad input mixed among good series: no crash,
                every good series converted, every bad file in the report with
                a reason, exit code 1
  shards        N=3 shards: their union equals a single run, no series twice
  archives      the same series from a folder, a .zip and a .tar.gz: identical
  determinism   all threads vs --threads 1 vs a small --memory-limit: identical
                NIfTI bytes; peak RSS within --memory-limit + 200 MB on an
                archive larger than the limit
  stream-4d     a 4D series larger than --memory-limit + 200 MB converts
                within that peak RSS, with the bytes of a whole conversion
Run with Debian's /usr/bin/python3 (pydicom, numpy).
"""
import bz2
import glob
import gzip
import json
import lzma
import os
import resource
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import zipfile

import numpy as np
import pydicom
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

KEY = "archive-tests-key-0123456789abcdef"


def write_series(folder, series_no, n_slices, size, patient, study, rng, rows=None, missing=None, echo=None):
    os.makedirs(folder, exist_ok=True)
    suid = "2.25.%d" % rng.integers(10**15, 10**16)
    paths = []
    for k in range(n_slices):
        if missing is not None and k == missing:
            continue
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        meta.MediaStorageSOPInstanceUID = "2.25.%d" % rng.integers(10**15, 10**16)
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
        ds.is_little_endian, ds.is_implicit_VR = True, False
        ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
        ds.PatientID, ds.PatientName = patient, "Test^" + patient
        ds.StudyInstanceUID, ds.StudyDate, ds.StudyTime = study, "20200102", "101010"
        ds.SeriesInstanceUID, ds.SeriesNumber, ds.InstanceNumber = suid, series_no, k + 1
        ds.Modality, ds.ProtocolName = "CT", "head ct %d" % series_no
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [-100, -100, 2.5 * k]
        ds.PixelSpacing = [0.7, 0.7]
        ds.SliceThickness = 2.5
        ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
        r = rows if (rows is not None and k == n_slices // 2) else size
        ds.Rows, ds.Columns = r, size
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        y, x = np.mgrid[0:r, 0:size]
        img = 1000 + 400 * np.sin(x / 9.0 + k) * np.cos(y / 7.0) + rng.normal(0, 20, (r, size))
        img[(x - size / 2) ** 2 + (y - r / 2) ** 2 > (0.45 * size) ** 2] = 0  # air
        ds.PixelData = img.astype("<i2").tobytes()
        p = os.path.join(folder, "%03d_%04d" % (series_no, k))
        ds.save_as(p, write_like_original=False)
        paths.append(p)
    return paths


def convert(rapidnii, src, out, state, extra=(), timeout=None):
    p = subprocess.run([rapidnii, "convert", src, out, "--key-file", os.path.join(os.path.dirname(out), "key"),
                        "--state", state] + list(extra), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout)
    return p.returncode, p.stdout.decode()


def tree(out):
    res = {}
    for p in glob.glob(os.path.join(out, "**", "*"), recursive=True) + glob.glob(os.path.join(out, ".*")):
        if os.path.isfile(p):
            res[os.path.relpath(p, out)] = open(p, "rb").read()
    return res


def temporaries(root):
    return [p for p in glob.glob(os.path.join(root, "**", ".*"), recursive=True) if ".tmp-" in p]


def setup(work):
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    open(os.path.join(work, "key"), "w").write(KEY)


def scenario_resume_kill(rapidnii, work):
    setup(work)
    rng = np.random.default_rng(5)
    src = os.path.join(work, "in")
    for s in range(10):
        write_series(os.path.join(src, "p%d" % (s % 3), "s%d" % s), s + 1, 40, 256, "P%d" % (s % 3), "2.25.7%d" % (s % 3),
                     rng)
    ref_out = os.path.join(work, "ref")
    t0 = time.time()
    rc, log = convert(rapidnii, src, ref_out, os.path.join(work, "ref-state"), ["--threads", "1", "--level", "9"])
    full = time.time() - t0
    if rc != 0:
        raise SystemExit("FAIL: uninterrupted run exit %d\n%s" % (rc, log))
    ref = tree(ref_out)
    out = os.path.join(work, "out")
    state = os.path.join(work, "state")
    kills = 0
    for frac in (0.15, 0.35, 0.55, 0.8):
        p = subprocess.Popen([rapidnii, "convert", src, out, "--key-file", os.path.join(work, "key"), "--state", state,
                              "--threads", "1", "--level", "9"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(full * frac)
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            kills += 1
        p.wait()
        # whatever is visible is complete
        for nii in glob.glob(os.path.join(out, "**", "*.nii.gz"), recursive=True):
            try:
                gzip.decompress(open(nii, "rb").read())
            except Exception as e:
                raise SystemExit("FAIL: a visible output is half-written after a kill: %s" % e)
    rc, log = convert(rapidnii, src, out, state, ["--threads", "1", "--level", "9"])
    print(log)
    if rc != 0:
        raise SystemExit("FAIL: final run exit %d" % rc)
    if kills == 0:
        raise SystemExit("FAIL: no run was killed (the conversion finished too fast to test)")
    if "already complete" not in log:
        raise SystemExit("FAIL: the final run resumed nothing")
    got = tree(out)
    if got != ref:
        diff = sorted(set(got) ^ set(ref)) or [k for k in ref if ref[k] != got.get(k)]
        raise SystemExit("FAIL: resumed output differs from an uninterrupted run: %s" % diff[:5])
    if temporaries(out):
        raise SystemExit("FAIL: temporary files left: %s" % temporaries(out))
    print("PASS: %d kills, then one run: %d files byte-identical to an uninterrupted run (%.1f s), no temporaries" %
          (kills, len(got), full))


def scenario_bad_input(rapidnii, work):
    setup(work)
    rng = np.random.default_rng(6)
    src = os.path.join(work, "in")
    good = []
    for s in range(3):
        good.append(write_series(os.path.join(src, "good%d" % s), s + 1, 6, 64, "G%d" % s, "2.25.91%d" % s, rng))
    template = open(good[0][0], "rb").read()
    bad = os.path.join(src, "bad")
    os.makedirs(bad)
    expected = {}

    def put(name, data, reason):
        open(os.path.join(bad, name), "wb").write(data)
        expected[name] = reason
    put("zero_bytes", b"", "empty_file")
    put("truncated_header", template[:400], "truncated_header")
    put("truncated_pixels", template[:-100], "truncated_pixel_data")
    put("random_after_preamble", b"\0" * 128 + b"DICM" + os.urandom(3000), None)
    bad_vr = bytearray(template)
    i = bad_vr.index(b"\x08\x00\x60\x00CS")  # Modality element: give it an impossible VR
    bad_vr[i + 4:i + 6] = b"c!"
    put("wrong_vr", bytes(bad_vr), "malformed")
    bad_len = bytearray(template)
    j = bad_len.index(b"\x08\x00\x60\x00CS")
    bad_len[j + 6:j + 8] = (60000).to_bytes(2, "little")  # a length past the end of the data set
    put("wrong_length", bytes(bad_len), None)
    put("notes.txt", b"plain text\n" * 50, "not_dicom")
    put("notes.txt.gz", gzip.compress(b"plain text\n" * 50), "not_dicom")  # a compressed file, not DICOM
    put("cut.dcm.gz", gzip.compress(template)[:-300], "broken_archive")  # a compressed slice cut short
    # an item tag among the top-level elements (GDCM reads it as an item)
    item_at_top = bytearray(template)
    k = item_at_top.index(b"\x08\x00\x60\x00CS")
    item_at_top[k:k] = b"\xfe\xff\x00\xe0" + (8).to_bytes(4, "little") + b"\x08\x00\x70\x00LO\x00\x00"
    put("item_at_top_level", bytes(item_at_top), "malformed")
    # fuzzer findings that once exhausted memory or crashed (tests/fuzz/regressions)
    regressions = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fuzz", "regressions")
    for name in sorted(os.listdir(regressions)):
        if name.endswith(".dcm"):
            put(name, open(os.path.join(regressions, name), "rb").read(), "malformed")
    # NumberOfFrames far beyond what the pixel data holds: refused before any
    # frame table is sized (native: 50 million frames; encapsulated: 3 million)
    many = pydicom.dcmread(good[0][0])
    many.NumberOfFrames = 50000000
    many.save_as(os.path.join(bad, "frames_native"), write_like_original=False)
    expected["frames_native"] = "truncated_pixel_data"
    from pydicom.encaps import encapsulate
    enc = pydicom.dcmread(good[0][0])
    enc.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.70"
    enc.PixelData = encapsulate([b"\xff\xd8\xff\xd9" * 4])
    enc["PixelData"].is_undefined_length = True
    enc.NumberOfFrames = 3000000
    enc.save_as(os.path.join(bad, "frames_encapsulated"), write_like_original=False)
    expected["frames_encapsulated"] = "truncated_pixel_data"
    open(os.path.join(bad, "copy_of_a_slice"), "wb").write(template)  # the same image twice
    put("photo.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + os.urandom(2000), "not_dicom")
    dd = pydicom.dcmread(good[0][0])
    dd.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.1.3.10"
    for kw in ("Rows", "Columns", "PixelData", "BitsAllocated"):
        delattr(dd, kw)
    dd.save_as(os.path.join(bad, "DICOMDIR"), write_like_original=False)
    expected["DICOMDIR"] = "no_image"
    # a 4D series with a slice missing at one time point -> the series fails, reported
    miss = os.path.join(src, "missing4d")
    p4 = write_series(miss, 50, 4, 32, "M", "2.25.950", rng)
    for k, p in enumerate(write_series(miss + "_t2", 50, 4, 32, "M", "2.25.950", rng, missing=2)):
        ds = pydicom.dcmread(p)
        ds.SeriesInstanceUID = pydicom.dcmread(p4[0]).SeriesInstanceUID
        ds.AcquisitionNumber = 2
        ds.save_as(p, write_like_original=False)
    # a 3D series with a gap -> converted, uneven spacing reported
    write_series(os.path.join(src, "gap3d"), 60, 8, 32, "N", "2.25.960", rng, missing=3)
    # a symlink loop and a FIFO must neither hang nor crash
    os.symlink(src, os.path.join(src, "loop"))
    os.mkfifo(os.path.join(src, "fifo"))
    rc, log = convert(rapidnii, src, os.path.join(work, "out"), os.path.join(work, "state"), timeout=120)
    print(log)
    if rc != 1:
        raise SystemExit("FAIL: exit %d, expected 1" % rc)
    # the only child so far: its peak RSS (KiB on Linux); the OOM regression
    # made GDCM allocate 4.2 GB
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print("  peak RSS %.0f MB" % peak_mb)
    if peak_mb > 1024:
        raise SystemExit("FAIL: peak RSS %.0f MB on a small archive with bad files" % peak_mb)
    report = json.load(open(os.path.join(work, "state", "report.json")))
    # a compressed file's member is reported as <file>!<member>
    reasons = {os.path.basename(s["input"].split("!")[0]): s["reason"] for s in report["skipped"]}
    for name, reason in expected.items():
        if name not in reasons:
            raise SystemExit("FAIL: %s not in the report" % name)
        if reason and reasons[name] != reason:
            raise SystemExit("FAIL: %s reported as %s, expected %s" % (name, reasons[name], reason))
    dups = [s for s in report["skipped"] if s["reason"] == "duplicate"]
    if len(dups) != 1 or os.path.basename(dups[0]["input"]) not in ("copy_of_a_slice", os.path.basename(good[0][0])):
        raise SystemExit("FAIL: the copied slice is not reported once as a duplicate: %s" % dups)
    for name in ("random_after_preamble", "wrong_length"):
        print("  %s -> %s" % (name, reasons[name]))
    if not any("missing slices" in f["reason"] for f in report["failed"]):
        raise SystemExit("FAIL: the 4D series with a missing slice is not reported")
    outs = [o["output"] for o in report["outputs"]]
    if len(outs) != 4:  # 3 good series + the 3D series with a gap
        raise SystemExit("FAIL: %d outputs, expected 4: %s" % (len(outs), outs))
    if "uneven slice spacing" not in log:
        raise SystemExit("FAIL: the gap in a 3D series is not reported")
    print("PASS: %d bad files reported with reasons, good series converted, exit 1" % len(expected))


def scenario_shards(rapidnii, work):
    setup(work)
    rng = np.random.default_rng(7)
    src = os.path.join(work, "in")
    for s in range(9):
        for ses in range(2):
            write_series(os.path.join(src, "p%d" % s, "st%d" % ses), 1 + ses, 3, 16, "PAT%d" % s, "2.25.8%d%d" % (s, ses),
                         rng)
    rc, log = convert(rapidnii, src, os.path.join(work, "single"), os.path.join(work, "st-single"))
    if rc != 0:
        raise SystemExit("FAIL: single run exit %d\n%s" % (rc, log))
    seen = {}
    for k in (1, 2, 3):
        rc, log = convert(rapidnii, src, os.path.join(work, "sharded"), os.path.join(work, "st-shards"),
                          ["--shard", "%d/3" % k])
        if rc != 0:
            raise SystemExit("FAIL: shard %d exit %d\n%s" % (k, rc, log))
        rep = json.load(open(os.path.join(work, "st-shards", "report.shard-%d-of-3.json" % k)))
        for o in rep["outputs"]:
            if o["output"] in seen:
                raise SystemExit("FAIL: %s converted by shards %d and %d" % (o["output"], seen[o["output"]], k))
            seen[o["output"]] = k
    subprocess.check_call([rapidnii, "merge-manifests", os.path.join(work, "sharded")])
    a, b = tree(os.path.join(work, "single")), tree(os.path.join(work, "sharded"))
    if a != b:
        diff = sorted(set(a) ^ set(b)) or [k for k in a if a[k] != b.get(k)]
        raise SystemExit("FAIL: union of shards differs from a single run: %s" % diff[:5])
    per = [sum(1 for v in seen.values() if v == k) for k in (1, 2, 3)]
    print("PASS: 3 shards wrote %s series, none twice; union byte-identical to one run (%d files)" % (per, len(a)))


def scenario_archives(rapidnii, work):
    setup(work)
    rng = np.random.default_rng(8)
    folder = os.path.join(work, "folder")
    write_series(os.path.join(folder, "study", "s1"), 1, 5, 32, "Z1", "2.25.61", rng)
    write_series(os.path.join(folder, "study", "s2"), 2, 4, 32, "Z1", "2.25.61", rng)
    zdir, tdir = os.path.join(work, "zip"), os.path.join(work, "tar")
    os.makedirs(zdir)
    os.makedirs(tdir)
    with zipfile.ZipFile(os.path.join(zdir, "study.zip"), "w", zipfile.ZIP_DEFLATED) as z:
        for p in glob.glob(os.path.join(folder, "**", "*"), recursive=True):
            if os.path.isfile(p):
                z.write(p, os.path.relpath(p, folder))
    with tarfile.open(os.path.join(tdir, "study.tar.gz"), "w:gz") as t:
        t.add(os.path.join(folder, "study"), arcname="study")
    # every file compressed on its own (scan.dcm.gz, as some repositories
    # store DICOM), gzip, bzip2 and xz in turn
    cdir = os.path.join(work, "compressed")
    files = sorted(p for p in glob.glob(os.path.join(folder, "**", "*"), recursive=True) if os.path.isfile(p))
    for k, p in enumerate(files):
        rel = os.path.relpath(p, folder)
        os.makedirs(os.path.dirname(os.path.join(cdir, rel)), exist_ok=True)
        data = open(p, "rb").read()
        opener, ext = ((gzip.open, ".gz"), (bz2.open, ".bz2"), (lzma.open, ".xz"))[k % 3]
        with opener(os.path.join(cdir, rel + ".dcm" + ext), "wb") as f:
            f.write(data)
    trees = {}
    # what the summary must say was read (the files are counted apart from archives)
    said = {"folder": None, "zip": "(1 archive read)", "tar": "(1 archive read)",
            "compressed": "(%d compressed files read)" % len(files)}
    for name, src in (("folder", folder), ("zip", zdir), ("tar", tdir), ("compressed", cdir)):
        rc, log = convert(rapidnii, src, os.path.join(work, "out-" + name), os.path.join(work, "st-" + name))
        print(log)
        if rc != 0:
            raise SystemExit("FAIL: %s exit %d" % (name, rc))
        if said[name] is not None and said[name] not in log:
            raise SystemExit("FAIL: %s: the summary does not say %s" % (name, said[name]))
        if said[name] is None and " read)" in log:
            raise SystemExit("FAIL: %s: the summary says something was unpacked" % name)
        trees[name] = tree(os.path.join(work, "out-" + name))
    if not trees["folder"] or trees["folder"] != trees["zip"] or trees["folder"] != trees["tar"]:
        raise SystemExit("FAIL: outputs differ between folder, zip and tar.gz")
    if trees["folder"] != trees["compressed"]:
        raise SystemExit("FAIL: outputs differ between the folder and its files compressed one by one")
    print("PASS: folder, .zip, .tar.gz and files compressed one by one (.gz, .bz2, .xz) give identical outputs "
          "(%d files)" % len(trees["folder"]))


def scenario_determinism(rapidnii, work):
    import resource
    setup(work)
    rng = np.random.default_rng(9)
    src = os.path.join(work, "in")
    for s in range(8):
        write_series(os.path.join(src, "s%d" % s), s + 1, 40, 256, "D%d" % (s % 2), "2.25.3%d" % (s % 2), rng)
    in_bytes = sum(os.path.getsize(p) for p in glob.glob(os.path.join(src, "**", "*"), recursive=True)
                   if os.path.isfile(p))
    # peak memory first (ru_maxrss covers every child so far): a run whose
    # input and raw volume data exceed the limit
    limit_mb = 16
    if in_bytes < 2 * limit_mb * 2**20:
        raise SystemExit("FAIL: the test archive (%d MB) is not larger than the limit" % (in_bytes >> 20))
    trees = {}
    rc, log = convert(rapidnii, src, os.path.join(work, "out-lowmem"), os.path.join(work, "st-lowmem"),
                      ["--memory-limit", str(limit_mb)])
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    if rc != 0:
        raise SystemExit("FAIL: lowmem exit %d\n%s" % (rc, log))
    if peak_mb > limit_mb + 200:
        raise SystemExit("FAIL: peak RSS %.0f MB > limit %d MB + 200 MB" % (peak_mb, limit_mb))
    trees["lowmem"] = tree(os.path.join(work, "out-lowmem"))
    reread = "descriptive headers read again when written"
    if reread in log:
        raise SystemExit("FAIL: 8 series' headers re-read under a 16 MiB limit (they fit in 1/64 of it)")
    # a 1 MiB limit: the series' descriptive headers no longer fit in 1/64
    # of it, so they are read in blocks and again when each series is written
    for name, extra in (("all", []), ("one", ["--threads", "1"]), ("tiny", ["--memory-limit", "1"])):
        rc, log = convert(rapidnii, src, os.path.join(work, "out-" + name), os.path.join(work, "st-" + name), extra)
        if rc != 0:
            raise SystemExit("FAIL: %s exit %d\n%s" % (name, rc, log))
        if (reread in log) != (name == "tiny"):
            raise SystemExit("FAIL: %s: headers re-read %s\n%s" % (name, reread in log, log))
        trees[name] = tree(os.path.join(work, "out-" + name))
    if not (trees["all"] == trees["one"] == trees["lowmem"] == trees["tiny"]):
        raise SystemExit("FAIL: outputs depend on the thread count, the memory limit or the header re-reading")
    print("PASS: identical bytes with all threads, 1 thread, a 16 MiB limit and a 1 MiB one (headers read again) (%d files); "
          "peak RSS %.0f MB for %d MB of input with --memory-limit %d" % (len(trees["all"]), peak_mb,
                                                                         in_bytes >> 20, limit_mb))


def write_4d(folder, series_no, size, nz, nt, rng, slopes=None):
    """A single-slice-per-file 4D MR series (fMRI-like): volume t repeats the
    slice positions; AcquisitionNumber t+1. Per-slice RescaleSlope when
    `slopes` (one per file, index z + nz*t) is given. Returns the stored
    pixels as an array [t, z, row, col] and the slopes."""
    os.makedirs(folder, exist_ok=True)
    suid = "2.25.%d" % rng.integers(10**15, 10**16)
    y, x = np.mgrid[0:size, 0:size]
    head = (x - size / 2) ** 2 + (y - size / 2) ** 2 < (0.4 * size) ** 2
    stored = np.empty((nt, nz, size, size), dtype="<i2")
    for t in range(nt):
        for k in range(nz):
            img = 600 + 300 * np.sin(x / 11.0 + k / 3.0) * np.cos(y / 8.0) + 5 * np.sin(t / 4.0)
            img = (img + rng.normal(0, 15, (size, size))) * head
            stored[t, k] = img.astype("<i2")
            meta = FileMetaDataset()
            meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
            meta.MediaStorageSOPInstanceUID = "2.25.%d" % rng.integers(10**15, 10**16)
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
            ds.is_little_endian, ds.is_implicit_VR = True, False
            ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
            ds.PatientID, ds.PatientName = "S4D", "Test^S4D"
            ds.StudyInstanceUID, ds.StudyDate, ds.StudyTime = "2.25.44", "20200102", "101010"
            ds.SeriesInstanceUID, ds.SeriesNumber = suid, series_no
            ds.InstanceNumber, ds.AcquisitionNumber = t * nz + k + 1, t + 1
            ds.Modality, ds.ProtocolName = "MR", "bold rest %d" % series_no
            ds.ImageType = ["ORIGINAL", "PRIMARY", "M"]
            ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
            ds.ImagePositionPatient = [-96, -96, 3.0 * k]
            ds.PixelSpacing, ds.SliceThickness = [1.5, 1.5], 3.0
            ds.RepetitionTime, ds.EchoTime = 2000, 30
            if slopes is not None:
                ds.RescaleSlope, ds.RescaleIntercept = slopes[t * nz + k], 0
            ds.Rows, ds.Columns = size, size
            ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
            ds.PixelData = stored[t, k].tobytes()
            ds.save_as(os.path.join(folder, "%03d_%05d" % (series_no, t * nz + k)), write_like_original=False)
    return stored


# stream-4d: (size, slices, time points) of an int16 series of 354 MB and of
# a series with per-slice slopes (float32 output, 75 MB)
STREAM_INT16 = (192, 36, 140)
STREAM_FLOAT = (128, 20, 60)


def stream_slopes():
    return [1.0 + 0.01 * (i % 7) for i in range(STREAM_FLOAT[1] * STREAM_FLOAT[2])]  # varying: float32


def scenario_stream_4d(rapidnii, work):
    """A 4D series larger than --memory-limit streams: converted a few time
    points at a time, peak RSS within the limit + 200 MB (the series alone is
    more than that), and the same bytes as a run that holds it whole."""
    import nibabel as nib
    setup(work)
    src = os.path.join(work, "in")
    size_a, nz_a, nt_a = STREAM_INT16
    size_b, nz_b, nt_b = STREAM_FLOAT
    slopes = stream_slopes()
    # Generated by a child process, the expected voxels saved to disk: the
    # converter's peak RSS (its own, from wait4) counts the memory of this
    # process at the fork, which must stay small.
    if subprocess.run([sys.executable, __file__, "-", "gen-4d", work]).returncode != 0:
        raise SystemExit("FAIL: generator")
    raw_mb = size_a * size_a * nz_a * nt_a * 2 / 2**20
    limit_mb = 32
    if raw_mb < limit_mb + 200 + 64:
        raise SystemExit("FAIL: the 4D series (%.0f MB) is too small to show streaming" % raw_mb)
    out_low = os.path.join(work, "out-low")
    cmd = [rapidnii, "convert", src, out_low, "--key-file", os.path.join(work, "key"), "--state",
           os.path.join(work, "st-low"), "--memory-limit", str(limit_mb)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    log = proc.stdout.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    rc = os.waitstatus_to_exitcode(status)
    peak_mb = usage.ru_maxrss / 1024.0
    print(log)
    if rc != 0:
        raise SystemExit("FAIL: low-memory run exit %d" % rc)
    if peak_mb > limit_mb + 200:
        raise SystemExit("FAIL: peak RSS %.0f MB > limit %d MB + 200 MB for a %.0f MB series" % (peak_mb, limit_mb,
                                                                                               raw_mb))
    rc, log = convert(rapidnii, src, os.path.join(work, "out-whole"), os.path.join(work, "st-whole"))
    if rc != 0:
        raise SystemExit("FAIL: whole run exit %d\n%s" % (rc, log))
    low, whole = tree(os.path.join(work, "out-low")), tree(os.path.join(work, "out-whole"))
    if low != whole:
        diff = sorted(k for k in set(low) | set(whole) if low.get(k) != whole.get(k))
        raise SystemExit("FAIL: streamed outputs differ from whole ones: %s" % diff)
    # the voxels: rows stored bottom-up (dcm2niix's order), slices ascending
    niis = sorted(glob.glob(os.path.join(work, "out-low", "**", "*.nii.gz"), recursive=True))
    shapes = {}
    for p in niis:
        img = nib.load(p)
        shapes[img.shape] = img
    a = shapes.get((size_a, size_a, nz_a, nt_a))
    b = shapes.get((size_b, size_b, nz_b, nt_b))
    if a is None or b is None:
        raise SystemExit("FAIL: outputs with the expected shapes missing: %s" % list(shapes))
    got = np.asanyarray(a.dataobj)
    big, flt = np.load(os.path.join(work, "big.npy")), np.load(os.path.join(work, "flt.npy"))
    want = big.transpose(3, 2, 1, 0)[:, ::-1, :, :]  # [col, row flipped, z, t]
    if got.dtype != np.int16 or not np.array_equal(got, want):
        raise SystemExit("FAIL: streamed int16 voxels differ from the DICOM pixels")
    gotf = b.get_fdata(dtype=np.float64)
    s = np.array(slopes).reshape(nt_b, nz_b)
    wantf = (flt * s[:, :, None, None]).transpose(3, 2, 1, 0)[:, ::-1, :, :]
    if b.get_data_dtype() != np.float32 or not np.allclose(gotf, wantf, rtol=1e-6, atol=1e-3):
        raise SystemExit("FAIL: streamed float32 voxels (per-slice slopes) differ")
    print("PASS: %.0f MB 4D series converted with --memory-limit %d at a peak RSS of %.0f MB; streamed bytes "
          "identical to the whole conversion (%d files); int16 and float32 voxels exact" % (
              raw_mb, limit_mb, peak_mb, len(low)))


def gen_4d(work):
    rng = np.random.default_rng(44)
    src = os.path.join(work, "in")
    big = write_4d(os.path.join(src, "bold"), 5, *STREAM_INT16, rng)
    flt = write_4d(os.path.join(src, "scaled"), 6, *STREAM_FLOAT, rng, stream_slopes())
    np.save(os.path.join(work, "big.npy"), big)
    np.save(os.path.join(work, "flt.npy"), flt)


def main():
    rapidnii, scenario, work = sys.argv[1:4]
    if scenario == "gen-4d":
        return gen_4d(work)
    globals()["scenario_" + scenario.replace("-", "_")](rapidnii, work)


if __name__ == "__main__":
    main()
