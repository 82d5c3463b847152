"""De-identification tests (DEID-POLICY.md T3), one scenario per ctest test.

Usage: test_deid.py RAPIDNII SCENARIO WORK_DIR

  generate        write the canary archive into WORK_DIR/archive (fixture)
  leak-research   default settings: zero canaries anywhere, burned-in set not converted
  leak-strict     --profile strict: zero canaries with the strict allow-list
  leak-options    --neutral-origin, --threads 1, input given as a patient folder
  error-paths     output inside the input, unwritable output, limited without --allow-phi:
                  exit 2 and no canary in stdout/stderr
  scanner-selftest  the scanner flags deliberately leaky outputs (and dcm2niix's)
  consistency     same key -> identical outputs; other key -> other labels and shifts;
                  day gaps kept exactly; years <= 1925; ages capped at 90
  noninterference changing REMOVE attributes leaves every output byte identical
  limited-and-origin  --profile limited needs --allow-phi, prints a banner and marks every
                  sidecar ContainsPHI; --neutral-origin puts the volume centre at 0,0,0
Run with Debian's /usr/bin/python3.
"""
import base64
import filecmp
import glob
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys

import pydicom

HERE = os.path.dirname(os.path.abspath(__file__))
PY = sys.executable


def run(rapidnii, work, name, args, input_dir=None, expect_rc=None):
    """Runs a conversion with a fresh TMPDIR and HOME; returns (rc, out_dir, files to scan, state)."""
    base = os.path.join(work, name)
    shutil.rmtree(base, ignore_errors=True)
    tmp = os.path.join(base, "tmp")
    home = os.path.join(base, "home")
    os.makedirs(tmp)
    os.makedirs(home)
    out = os.path.join(base, "out")
    state = os.path.join(base, "state")
    env = dict(os.environ, TMPDIR=tmp, HOME=home)
    cmd = [rapidnii, "convert", input_dir or os.path.join(work, "archive"), out, "--state", state] + args
    with open(os.path.join(base, "stdout"), "wb") as so, open(os.path.join(base, "stderr"), "wb") as se:
        rc = subprocess.call(cmd, stdout=so, stderr=se, env=env)
    if expect_rc is not None and rc != expect_rc:
        sys.stdout.write(open(os.path.join(base, "stdout")).read() + open(os.path.join(base, "stderr")).read())
        raise SystemExit("FAIL: %s exited %d, expected %d" % (name, rc, expect_rc))
    return rc, out, base, state


def scan(work, profile, roots, texts):
    cmd = [PY, os.path.join(HERE, "leak_scan.py"), os.path.join(work, "canaries.json"), profile]
    for r in roots:
        if os.path.isdir(r):
            cmd += ["--root", r]
    for t in texts:
        cmd += ["--text", t]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return p.returncode, p.stdout.decode()


def scan_run(work, profile, base, out):
    return scan(work, profile, [out, os.path.join(base, "tmp"), os.path.join(base, "home")],
                [os.path.join(base, "stdout"), os.path.join(base, "stderr")])


def info(work):
    return json.load(open(os.path.join(work, "canaries.json")))


def sidecars(out):
    return {os.path.relpath(p, out): json.load(open(p)) for p in glob.glob(os.path.join(out, "sub-*", "**", "*.json"),
                                                                          recursive=True)}


def check_leak_run(work, profile, base, out, state):
    rc, text = scan_run(work, profile, base, out)
    print(text)
    if rc != 0:
        raise SystemExit("FAIL: canaries or container problems found (%s)" % profile)
    meta = info(work)
    niis = glob.glob(os.path.join(out, "sub-*", "**", "*.nii.gz"), recursive=True)
    if len(niis) != meta["expected_series"]:
        raise SystemExit("FAIL: %d outputs, expected %d" % (len(niis), meta["expected_series"]))
    for rel, side in sidecars(out).items():
        if side.get("SeriesNumber") in meta["burned_in_series_numbers"]:
            raise SystemExit("FAIL: burned-in series converted: %s" % rel)
    report = json.load(open(os.path.join(state, "report.json")))
    burned = [s for s in report["skipped"] if s["reason"] == "burned_in_risk"]
    if len(burned) != meta["burned_in_files"]:
        raise SystemExit("FAIL: %d burned-in files reported, expected %d" % (len(burned), meta["burned_in_files"]))
    if any(not s["detail"] for s in burned):
        raise SystemExit("FAIL: a burned-in skip has no reason code")
    summary = open(os.path.join(base, "stdout")).read()
    if "burned-in text risk" not in summary:
        raise SystemExit("FAIL: the summary does not count the burned-in series")
    print("PASS: %d outputs, %d burned-in files skipped with reason codes, zero leaks" % (len(niis), len(burned)))


def scenario_generate(rapidnii, work):
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    subprocess.check_call([PY, os.path.join(HERE, "gen_canary_archive.py"), os.path.join(work, "archive"),
                           os.path.join(work, "canaries.json")])
    print("PASS: archive generated")


def scenario_leak_research(rapidnii, work):
    rc, out, base, state = run(rapidnii, work, "research", [], expect_rc=1)
    check_leak_run(work, "research", base, out, state)
    # descrip and sidecar physics survive (positive utility)
    sides = sidecars(out)
    bold = [s for r, s in sides.items() if "_echo-" in r]
    if sorted({round(s["EchoTime"] * 1000, 1) for s in bold}) != [12.5, 30.1, 47.7]:
        raise SystemExit("FAIL: multi-echo EchoTime values lost")
    if not all("RepetitionTime" in s for s in sides.values()):
        raise SystemExit("FAIL: RepetitionTime missing")


def scenario_leak_strict(rapidnii, work):
    rc, out, base, state = run(rapidnii, work, "strict", ["--profile", "strict"], expect_rc=1)
    check_leak_run(work, "strict", base, out, state)


def scenario_leak_options(rapidnii, work):
    rc, out, base, state = run(rapidnii, work, "options", ["--neutral-origin", "--threads", "1"], expect_rc=1)
    check_leak_run(work, "research", base, out, state)
    # input given as one patient's folder (its path holds the name and ID)
    patient = sorted(d for d in glob.glob(os.path.join(work, "archive", "*")) if os.path.isdir(d))[0]
    rc, out, base, state = run(rapidnii, work, "patient-folder", [], input_dir=patient)
    if rc not in (0, 1):
        raise SystemExit("FAIL: patient folder run exited %d" % rc)
    code, text = scan_run(work, "research", base, out)
    print(text)
    if code:
        raise SystemExit("FAIL: leaks when the input is a patient folder")
    print("PASS")


def scenario_error_paths(rapidnii, work):
    archive = os.path.join(work, "archive")
    patient = sorted(d for d in glob.glob(os.path.join(archive, "*")) if os.path.isdir(d))[0]
    texts = []
    # 1. output inside the input
    rc, out, base, state = run(rapidnii, work, "err-inside", [], input_dir=patient)
    base2 = os.path.join(work, "err-inside2")
    shutil.rmtree(base2, ignore_errors=True)
    os.makedirs(base2)
    cases = [
        ("output inside input", [rapidnii, "convert", patient, os.path.join(patient, "out")]),
        ("state inside output", [rapidnii, "convert", patient, os.path.join(base2, "o"), "--state",
                                 os.path.join(base2, "o", "s")]),
        ("unwritable output", [rapidnii, "convert", patient, os.path.join(archive, "DICOMDIR", "x")]),
        ("limited without --allow-phi", [rapidnii, "convert", patient, os.path.join(base2, "o2"), "--profile",
                                         "limited"]),
        ("missing input", [rapidnii, "convert", patient + "_missing", os.path.join(base2, "o3")]),
    ]
    for i, (what, cmd) in enumerate(cases):
        so, se = os.path.join(base2, "so%d" % i), os.path.join(base2, "se%d" % i)
        with open(so, "wb") as o, open(se, "wb") as e:
            rc = subprocess.call(cmd, stdout=o, stderr=e)
        if rc != 2:
            raise SystemExit("FAIL: %s: exit %d, expected 2" % (what, rc))
        texts += [so, se]
        print("ok: %s -> exit 2: %s" % (what, open(se).read().strip()))
    if os.path.exists(os.path.join(patient, "out")):
        raise SystemExit("FAIL: wrote inside the input")
    code, text = scan(work, "research", [], texts)
    print(text)
    if code:
        raise SystemExit("FAIL: an error message leaks")
    print("PASS")


def scenario_scanner_selftest(rapidnii, work):
    rc, out, base, state = run(rapidnii, work, "selftest-base", [], expect_rc=1)
    meta = info(work)
    tokens = [c for c in meta["canaries"] if c["kind"] == "name"]
    dates = [c for c in meta["canaries"] if c["kind"] == "date"]
    uids = [c for c in meta["canaries"] if c["kind"] == "uid"]
    name = tokens[0]["value"]
    variants = {}

    def variant(label, fn):
        d = os.path.join(work, "leaky", label)
        shutil.rmtree(d, ignore_errors=True)
        shutil.copytree(out, d)
        fn(d)
        variants[label] = d

    variant("file-name", lambda d: open(os.path.join(d, "sub_%s.json" % name.lower()), "w").write("{}"))
    variant("gzip-fname", lambda d: gzip.GzipFile(filename=name + ".nii", mode="wb",
                                                  fileobj=open(os.path.join(d, "x.nii.gz"), "wb"),
                                                  mtime=0).close())
    variant("base64-json", lambda d: open(os.path.join(d, "b.json"), "w").write(
        json.dumps({"Blob": base64.b64encode(("Patient " + name).encode()).decode()})))
    variant("md5-hash", lambda d: open(os.path.join(d, "log.txt"), "w").write(
        "subject %s\n" % hashlib.md5(name.encode()).hexdigest()))
    variant("iso-date", lambda d: open(os.path.join(d, "log2.txt"), "w").write(
        "scan on %s-%s-%s\n" % (dates[0]["value"][:4], dates[0]["value"][4:6], dates[0]["value"][6:])))
    variant("uid-underscores", lambda d: open(os.path.join(d, "u.txt"), "w").write(uids[0]["value"].replace(".", "_")))
    variant("utf16", lambda d: open(os.path.join(d, "w.txt"), "wb").write(("x " + name).encode("utf-16-le")))

    def aux(d):
        nii = sorted(glob.glob(os.path.join(d, "sub-*", "**", "*.nii.gz"), recursive=True))[0]
        raw = bytearray(gzip.decompress(open(nii, "rb").read()))
        raw[228:228 + 8] = b"comments"
        with open(nii, "wb") as f:
            f.write(gzip.compress(bytes(raw), mtime=0))
    variant("nifti-aux-file", aux)

    def extra_key(d):
        side = sorted(glob.glob(os.path.join(d, "sub-*", "**", "*.json"), recursive=True))[0]
        obj = json.load(open(side))
        obj["StudyComments"] = "routine"
        json.dump(obj, open(side, "w"))
    variant("unknown-sidecar-key", extra_key)
    failures = []
    for label, d in variants.items():
        code, text = scan(work, "research", [d], [])
        print("%s: scanner exit %d (%s)" % (label, code, text.strip().splitlines()[-1]))
        if code == 0:
            failures.append(label)
    if shutil.which("dcm2niix"):
        d = os.path.join(work, "leaky", "dcm2niix")
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        subprocess.call(["dcm2niix", "-z", "y", "-o", d, os.path.join(work, "archive")], stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL)
        code, text = scan(work, "research", [d], [])
        print("dcm2niix defaults: scanner exit %d (%s)" % (code, text.strip().splitlines()[-1]))
        if code == 0:
            failures.append("dcm2niix")
    else:
        print("note: dcm2niix not installed, its output not scanned")
    if failures:
        raise SystemExit("FAIL: the scanner missed: %s" % ", ".join(failures))
    print("PASS: the scanner flags every leaky variant")


def tree_bytes(out):
    res = {}
    for p in sorted(glob.glob(os.path.join(out, "**", "*"), recursive=True) +
                    glob.glob(os.path.join(out, ".bidsignore"))):
        if os.path.isfile(p):
            res[os.path.relpath(p, out)] = open(p, "rb").read()
    return res


def scenario_consistency(rapidnii, work):
    key1 = os.path.join(work, "key-one.txt")
    key2 = os.path.join(work, "key-two.txt")
    open(key1, "w").write("0123456789abcdef0123456789abcdef-key-one\n")
    open(key2, "w").write("fedcba9876543210fedcba9876543210-key-two\n")
    _, out_a, _, _ = run(rapidnii, work, "key1-a", ["--key-file", key1], expect_rc=1)
    _, out_b, _, _ = run(rapidnii, work, "key1-b", ["--key-file", key1, "--threads", "1"], expect_rc=1)
    _, out_c, _, _ = run(rapidnii, work, "key2", ["--key-file", key2], expect_rc=1)
    a, b, c = tree_bytes(out_a), tree_bytes(out_b), tree_bytes(out_c)
    if a != b:
        diff = sorted(set(a) ^ set(b)) or [k for k in a if a[k] != b.get(k)]
        raise SystemExit("FAIL: same key, different outputs: %s" % diff[:5])
    subs_a = {p.split(os.sep)[0] for p in a if p.startswith("sub-")}
    subs_c = {p.split(os.sep)[0] for p in c if p.startswith("sub-")}
    if len(subs_a) != info(work)["subjects"] or subs_a & subs_c:
        raise SystemExit("FAIL: labels: %s vs %s" % (subs_a, subs_c))
    meta = info(work)
    for out in (out_a, out_c):
        by_subject = {}
        for rel, side in sidecars(out).items():
            if "AcquisitionDateTime" not in side:
                raise SystemExit("FAIL: no AcquisitionDateTime in %s" % rel)
            year = int(side["AcquisitionDateTime"][:4])
            if year > 1925:
                raise SystemExit("FAIL: shifted year %d > 1925" % year)
            ses = rel.split(os.sep)[1]
            by_subject.setdefault(rel.split(os.sep)[0], {})[ses] = side["AcquisitionDateTime"][:10]
        gaps = []
        import datetime
        for subj, sessions in by_subject.items():
            if "ses-2" in sessions:
                d1 = datetime.date.fromisoformat(sessions["ses-1"])
                d2 = datetime.date.fromisoformat(sessions["ses-2"])
                gaps.append((d2 - d1).days)
        if sorted(gaps) != sorted(meta["session_gaps_days"]):
            raise SystemExit("FAIL: session gaps %s, expected %s" % (sorted(gaps), meta["session_gaps_days"]))
    shifts_a = {json.loads(a[k]).get("AcquisitionDateTime") for k in a if k.endswith(".json") and k.startswith("sub-")}
    shifts_c = {json.loads(c[k]).get("AcquisitionDateTime") for k in c if k.endswith(".json") and k.startswith("sub-")}
    if shifts_a & shifts_c:
        raise SystemExit("FAIL: a different key gave the same shifted dates")
    ages = sorted({s.get("PatientAge") for s in sidecars(out_a).values()})
    if 90 not in ages or 0.5 not in ages:
        raise SystemExit("FAIL: ages %s: expected one capped at 90 and an infant at 0.5" % ages)
    print("PASS: same key identical (%d files), other key other labels and dates, gaps %s kept, ages %s" %
          (len(a), meta["session_gaps_days"], ages))


REMOVE_ATTRIBUTES = {
    "AccessionNumber": "LO", "ReferringPhysicianName": "PN", "StudyDescription": "LO", "ImageComments": "LT",
    "PatientWeight": "DS", "InstitutionAddress": "ST", "OperatorsName": "PN", "OtherPatientIDs": "LO",
    "PatientAddress": "LO", "StudyID": "SH", "AdditionalPatientHistory": "LT", "PatientComments": "LT",
    "RequestedProcedureDescription": "LO", "PerformedProcedureStepDescription": "LO", "MedicalAlerts": "LO",
    "PatientTelephoneNumbers": "SH", "StudyTime": "TM", "SeriesTime": "TM", "ContentTime": "TM",
}


def scenario_noninterference(rapidnii, work):
    key = os.path.join(work, "ni-key")
    open(key, "w").write("non-interference-key-0123456789\n")
    src = os.path.join(work, "archive")
    mutated = os.path.join(work, "archive-mutated")
    shutil.rmtree(mutated, ignore_errors=True)
    shutil.copytree(src, mutated)
    # every file of the T1 series (series 2) of every subject and session
    changed = 0
    for p in glob.glob(os.path.join(mutated, "**", "IM_*_002_*"), recursive=True):
        ds = pydicom.dcmread(p)
        if "ISO 2022 IR 87" in list(ds.get("SpecificCharacterSet", [])):
            # this series names its referring physician in the protocol: there the
            # name is what the known-value scrub removes, so changing it changes
            # the cleaned protocol (the documented limit of CLEAN); not mutated
            continue
        for kw, vr in REMOVE_ATTRIBUTES.items():
            value = {"PN": "Other^Person", "DS": "77.7", "TM": "101010.5"}.get(vr, "CHANGED VALUE 42")
            setattr(ds, kw, value)
        if ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1.99":
            # pydicom 2.3 cannot re-deflate a data set it inflated: store it explicit (same voxels)
            ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.1"
        ds.save_as(p, write_like_original=False)
        changed += 1
    if changed == 0:
        raise SystemExit("FAIL: nothing mutated")
    _, out1, base1, _ = run(rapidnii, work, "ni-orig", ["--key-file", key], input_dir=src, expect_rc=1)
    _, out2, base2, _ = run(rapidnii, work, "ni-mut", ["--key-file", key], input_dir=mutated, expect_rc=1)
    a, b = tree_bytes(out1), tree_bytes(out2)
    if a != b:
        diff = sorted(set(a) ^ set(b)) or [k for k in a if a[k] != b.get(k)]
        raise SystemExit("FAIL: REMOVE attributes changed the output: %s" % diff[:5])

    def norm(path):
        # timing lines (throughput, stage times, progress) differ from run to run
        return [l for l in open(path).read().splitlines()
                if "MB read" not in l and not l.startswith("rapidnii: series ") and not l.strip().startswith("time:")]
    for f in ("stdout", "stderr"):
        if norm(os.path.join(base1, f)) != norm(os.path.join(base2, f)):
            raise SystemExit("FAIL: REMOVE attributes changed the %s" % f)
    print("PASS: %d files mutated in %d attributes; %d output files byte-identical, logs identical" %
          (changed, len(REMOVE_ATTRIBUTES), len(a)))


def scenario_limited_and_origin(rapidnii, work):
    import nibabel as nib
    import numpy as np
    rc, out, base, state = run(rapidnii, work, "limited", ["--profile", "limited", "--allow-phi"], expect_rc=1)
    err = open(os.path.join(base, "stderr")).read()
    if "WARNING" not in err or "limited" not in err:
        raise SystemExit("FAIL: no banner for the limited profile")
    sides = sidecars(out)
    if not sides or not all(s.get("ContainsPHI") is True for s in sides.values()):
        raise SystemExit("FAIL: a limited-profile sidecar is not marked ContainsPHI")
    if not any(str(s.get("InstitutionName", "")).startswith("Q7INST") for s in sides.values()):
        raise SystemExit("FAIL: the limited profile did not keep the institution")
    rc, out, base, state = run(rapidnii, work, "origin", ["--neutral-origin"], expect_rc=1)
    niis = glob.glob(os.path.join(out, "sub-*", "**", "*.nii.gz"), recursive=True)
    for p in niis:
        img = nib.load(p)
        centre = img.affine @ np.array([(d - 1) / 2.0 for d in img.shape[:3]] + [1.0])
        if np.abs(centre[:3]).max() > 1e-3:
            raise SystemExit("FAIL: %s: volume centre at %s, not the origin" % (p, centre[:3]))
    code, text = scan_run(work, "research", base, out)
    if code:
        print(text)
        raise SystemExit("FAIL: leaks with --neutral-origin")
    print("PASS: limited marked and bannered; %d volumes centred at the origin" % len(niis))


def main():
    rapidnii, scenario, work = sys.argv[1:4]
    if scenario != "generate" and not os.path.exists(os.path.join(work, "canaries.json")):
        raise SystemExit("FAIL: the canary archive was not generated")
    fn = globals()["scenario_" + scenario.replace("-", "_")]
    fn(rapidnii, work)


if __name__ == "__main__":
    main()
