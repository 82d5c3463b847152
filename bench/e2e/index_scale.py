#!/usr/bin/python3
"""Index-scale benchmark: peak memory and time of rapidnii (and dcm2niix)
on an archive of many small files (bench/e2e/gen_many_files.py).

Usage:
  index_scale.py --rapidnii build/rapidnii --work /tmp/scale --files 1000000
                 [--per-series 1000] [--archive DIR] [--dcm2niix] [--out-json F]
  index_scale.py --rapidnii build/rapidnii --work /tmp/scale_smoke --smoke

What it measures, each tool run once on the same archive, the archive read
once before (page cache warm): wall time and peak resident memory (the
child's ru_maxrss from wait4), the peak per input file, and for rapidnii the
stage times from its summary line. rapidnii runs with default settings;
dcm2niix (optional: it needs about 9 KB per file and minutes per 100k files)
runs `dcm2niix -z n -f %s_%p` (no compression: what is compared is the
index, not gzip). A tiny archive (one series of 10 files) gives each tool's
baseline, so the table also shows (peak - baseline) / files.

Checks (the exit code is 1 when one fails; memory and time are reported,
never asserted): rapidnii indexes every file, skips none, writes one volume
per series, each of the series' shape (16 x 16 x K); dcm2niix, when run,
writes as many volumes. --smoke: 3000 files in 6 series, seconds.
"""
import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def run_measured(cmd, log):
    """Runs cmd; returns (exit code, wall s, peak RSS bytes)."""
    with open(log, "w") as out:
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.monotonic() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    return p.returncode, wall, ru.ru_maxrss * 1024


def read_all(folder):
    """Reads every file once (page cache warm for every tool)."""
    n = 0
    for root, _, files in os.walk(folder):
        for f in files:
            with open(os.path.join(root, f), "rb") as fh:
                while fh.read(1 << 20):
                    pass
            n += 1
    return n


def generate(out, files, per_series, quiet=True):
    cmd = ["/usr/bin/python3", os.path.join(HERE, "gen_many_files.py"), out, "--files", str(files),
           "--per-series", str(per_series)] + (["--quiet"] if quiet else [])
    subprocess.run(cmd, check=True)


def rapidnii_run(exe, archive, work, name):
    out = os.path.join(work, name + "_out")
    state = os.path.join(work, name + "_state")
    for d in (out, state):
        shutil.rmtree(d, ignore_errors=True)
    log = os.path.join(work, name + ".log")
    rc, wall, rss = run_measured([exe, "convert", archive, out, "--state", state], log)
    text = open(log, errors="replace").read()
    return {"rc": rc, "wall_s": wall, "peak_rss": rss, "out": out, "log": log, "text": text}


def dcm2niix_run(archive, work, name):
    out = os.path.join(work, name + "_out")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    log = os.path.join(work, name + ".log")
    rc, wall, rss = run_measured(["dcm2niix", "-z", "n", "-f", "%s_%p", "-o", out, archive], log)
    return {"rc": rc, "wall_s": wall, "peak_rss": rss, "out": out, "log": log}


def summary_numbers(text):
    m = re.search(r"(\d+) series written, (\d+) failed; (\d+) files scanned, (\d+) DICOM images indexed, "
                  r"(\d+) files skipped", text)
    t = re.search(r"time: (.*)", text)
    stages = {k: float(v) for k, v in re.findall(r"(\w+) ([0-9.]+) s", t.group(1))} if t else {}
    if not m:
        return None, stages
    keys = ("written", "failed", "scanned", "indexed", "skipped")
    return dict(zip(keys, map(int, m.groups()))), stages


def check_rapidnii(r, files, per_series, failures):
    nums, _ = summary_numbers(r["text"])
    nseries = (files + per_series - 1) // per_series
    if r["rc"] != 0:
        failures.append("rapidnii exited %d (log: %s)" % (r["rc"], r["log"]))
    if not nums:
        failures.append("rapidnii printed no summary (log: %s)" % r["log"])
        return
    if nums["scanned"] != files or nums["indexed"] != files or nums["skipped"] != 0:
        failures.append("rapidnii: %d scanned, %d indexed, %d skipped of %d files" %
                        (nums["scanned"], nums["indexed"], nums["skipped"], files))
    vols = sorted(glob.glob(os.path.join(r["out"], "**", "*.nii.gz"), recursive=True))
    if nums["written"] != nseries or nums["failed"] != 0 or len(vols) != nseries:
        failures.append("rapidnii: %d series written (%d volumes), %d failed; expected %d" %
                        (nums["written"], len(vols), nums["failed"], nseries))
    import nibabel as nib
    for v in vols[:3]:
        shape = nib.load(v).shape
        if shape[:2] != (16, 16) or shape[2] not in (per_series, files % per_series or per_series):
            failures.append("rapidnii: %s has shape %s" % (os.path.basename(v), shape))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rapidnii", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--archive", help="an archive written by gen_many_files.py (else generated in --work)")
    ap.add_argument("--files", type=int, default=100000)
    ap.add_argument("--per-series", type=int, default=1000)
    ap.add_argument("--dcm2niix", action="store_true", help="also run dcm2niix -z n on the same archive")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--out-json")
    a = ap.parse_args()
    if a.smoke:
        a.files, a.per_series = 3000, 500
        a.dcm2niix = a.dcm2niix or shutil.which("dcm2niix") is not None
    os.makedirs(a.work, exist_ok=True)
    exe = os.path.abspath(a.rapidnii)

    archive = a.archive or os.path.join(a.work, "archive")
    if not a.archive:
        shutil.rmtree(archive, ignore_errors=True)
        t0 = time.monotonic()
        generate(archive, a.files, a.per_series)
        print("index_scale: %d files in %s (%.1f s)" % (a.files, archive, time.monotonic() - t0), flush=True)
    tiny = os.path.join(a.work, "tiny")
    shutil.rmtree(tiny, ignore_errors=True)
    generate(tiny, 10, 10)
    n = read_all(archive)
    if n != a.files:
        sys.exit("index_scale: the archive holds %d files, --files says %d" % (n, a.files))

    failures = []
    rows = []
    base = rapidnii_run(exe, tiny, a.work, "rapidnii_tiny")
    r = rapidnii_run(exe, archive, a.work, "rapidnii")
    check_rapidnii(r, a.files, a.per_series, failures)
    _, stages = summary_numbers(r["text"])
    rows.append(("rapidnii", r, base))
    if a.dcm2niix:
        dbase = dcm2niix_run(tiny, a.work, "dcm2niix_tiny")
        d = dcm2niix_run(archive, a.work, "dcm2niix")
        nd = len(glob.glob(os.path.join(d["out"], "*.nii")))
        nseries = (a.files + a.per_series - 1) // a.per_series
        if d["rc"] != 0 or nd != nseries:
            failures.append("dcm2niix exited %d with %d volumes (expected %d)" % (d["rc"], nd, nseries))
        rows.append(("dcm2niix -z n", d, dbase))

    print("\n%d files, %d per series (%s)" % (a.files, a.per_series, archive))
    print("| tool | wall s | peak RSS MB | bytes per file | (peak - baseline) per file | baseline MB |")
    print("| --- | --- | --- | --- | --- | --- |")
    result = {"files": a.files, "per_series": a.per_series, "rapidnii_stages_s": stages, "tools": {}}
    for name, x, b in rows:
        per = x["peak_rss"] / a.files
        net = (x["peak_rss"] - b["peak_rss"]) / a.files
        print("| %s | %.2f | %.1f | %.0f | %.0f | %.1f |" %
              (name, x["wall_s"], x["peak_rss"] / 1e6, per, net, b["peak_rss"] / 1e6))
        result["tools"][name] = {"wall_s": x["wall_s"], "peak_rss_bytes": x["peak_rss"],
                                 "baseline_rss_bytes": b["peak_rss"], "bytes_per_file": per,
                                 "net_bytes_per_file": net}
    if len(rows) == 2:
        rr, dd = rows[0][1], rows[1][1]
        print("\nrapidnii against dcm2niix: %.1fx less peak memory, %.1fx faster" %
              (dd["peak_rss"] / rr["peak_rss"], dd["wall_s"] / rr["wall_s"]))
    if stages:
        print("rapidnii stages (s): " + ", ".join("%s %.2f" % kv for kv in stages.items()))
    result["failures"] = failures
    if a.out_json:
        with open(a.out_json, "w") as f:
            json.dump(result, f, indent=1)
    if failures:
        print("\nFAIL:\n  " + "\n  ".join(failures))
        return 1
    print("\nChecks: PASS (every file indexed, one volume per series of the expected shape)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
