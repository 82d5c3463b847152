#!/usr/bin/python3
"""End-to-end throughput benchmark: rapidnii against dcm2niix on one archive.

Usage:
  run_e2e.py --rapidnii PATH [--archive DIR | --size-mb N] [--seed S]
             [--threads T] [--compression default[,fast,...]] [--work DIR]
             [--out-json FILE] [--bench-deflate PATH] [--keep] [--smoke]

On the same archive, in the same run (the archive is read once beforehand,
so every tool starts from the page cache):
  1. rapidnii convert ARCHIVE OUT --compression X --key-file K --state S
     (once per value of --compression);
  2. dcm2niix -z y -f %s_%p -o OUT ARCHIVE: one process over the archive
     (Debian's dcm2niix compresses through pigz on every core);
  3. dcm2niix the same way, one process per series folder, nproc processes
     at a time (xargs -P);
  4. the deflate-bound limit of each rapidnii run: rapidnii's outputs are
     decompressed here, their voxels grouped by the compressor rapidnii
     chose for them (the summary line "gzip: <choice> x<n>"; when a run used
     several, each volume's choice is recomputed with rapidnii_bench_deflate
     choose/<policy>, which is deterministic on the voxel bytes), and each
     group is compressed by rapidnii_bench_deflate
     parallel/<choice>/threads:T (gzip_compress_parallel_to, the function
     rapidnii uses, on the same cores, the output counted and dropped: no
     I/O, no decode, no choice, no output buffer). The
     limit is the sum of those compression times, timed right after every
     rapidnii run (so a drift in the machine's speed hits both alike; the
     groups are built once, untimed); its median over the runs is the
     limit, and rapidnii's fraction of it is limit time / rapidnii wall time.
Before every timed run the page cache is synced (untimed), so no tool pays
for writing back the previous one's outputs.
It prints input MB/s (DICOM bytes / wall seconds), output size (.nii.gz
bytes) and the ratios, and checks that every dcm2niix volume has a rapidnii
volume with the same voxels (nibabel as_closest_canonical; shapes and
values exact, affines within 1e-3) and is stored in the same voxel order
(shape and affine as written, before any reorientation, within 1e-3):
AGREEMENT PASS/FAIL, with the range
of the matched volumes' .nii.gz sizes against dcm2niix's
(size_vs_dcm2niix_per_volume: [min, max]).

--smoke: a tiny archive (~10 MB), rapidnii and one dcm2niix process only,
asserts both complete and agree; exit 0 (pass), 1 (fail), 77 (dcm2niix
missing: skipped).
"""
import argparse
import glob
import gzip
import hashlib
import json
import os
import platform
import re
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SKIP = 77
POLICIES = ("fast", "default", "small")


def log(*a):
    print("run_e2e:", *a, flush=True)


# ------------------------------------------------------------ machine --

def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def mem_gb():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal"):
                    return int(line.split()[1]) / 1e6
    except OSError:
        pass
    return 0.0


# ---------------------------------------------------------- utilities --

def tree_bytes(root, suffix=None):
    total = 0
    for d, _, files in os.walk(root):
        for f in files:
            if suffix is None or f.endswith(suffix):
                total += os.path.getsize(os.path.join(d, f))
    return total


def nii_files(root):
    out = []
    for d, _, files in os.walk(root):
        out += [os.path.join(d, f) for f in files if f.endswith(".nii.gz") and not f.startswith(".")]
    return sorted(out)


def warm_cache(root):
    """Reads every input file once so that every tool starts from the page cache."""
    for d, _, files in os.walk(root):
        for f in files:
            with open(os.path.join(d, f), "rb") as fh:
                while fh.read(1 << 22):
                    pass


def series_dirs(root):
    return sorted(d for d, _, files in os.walk(root) if files)


COLD = False  # --cold: the page cache is dropped before every timed tool run


def drop_caches():
    """Empties the page cache (root only): the next run reads from the disk."""
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def timed(cmd, env=None, stdout_path=None):
    """Runs cmd; returns (rc, wall s, child CPU s, stdout+stderr text).

    The page cache is synced first (untimed): dcm2niix does not fsync its
    outputs, so without it the kernel writes them back while the next tool
    runs, and that tool pays for the previous one's disk writes (and its own
    fsyncs wait behind them). With --cold it is also dropped."""
    os.sync()
    if COLD:
        drop_caches()
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    text = p.stdout.decode("utf-8", "replace")
    if stdout_path:
        with open(stdout_path, "w") as f:
            f.write(text)
    return p.returncode, wall, cpu, text


def fresh_dir(path):
    if os.path.exists(path):
        shutil.rmtree(path)
    os.makedirs(path)


# ------------------------------------------------------------- runners --

def run_rapidnii(a, archive, work, compression, key):
    out = os.path.join(work, "out_rapidnii_" + re.sub(r"[^A-Za-z0-9_-]", "_", compression))
    state = out + ".state"
    for p in (out, state):
        if os.path.exists(p):
            shutil.rmtree(p)
    cmd = [a.rapidnii, "convert", archive, out, "--compression", compression, "--key-file", key,
           "--state", state, "--threads", str(a.threads)]
    load = loadavg()
    rc, wall, cpu, text = timed(cmd, stdout_path=out + ".log")
    res = {"tool": "rapidnii", "compression": compression, "cmd": " ".join(cmd), "rc": rc, "wall_s": wall,
           "cpu_s": cpu, "load_before": load, "out_dir": out, "log": text.strip().splitlines()[-12:]}
    m = re.search(r"^\s*gzip:(.*)$", text, re.M)
    res["compressors"] = {}
    if m:
        for name, n in re.findall(r"(\S+) x(\d+)", m.group(1)):
            res["compressors"][name] = int(n)
    m = re.search(r"([\d.]+) MB read, ([\d.]+) MB written in ([\d.]+) s \(([\d.]+) MB/s input\)", text)
    if m:
        res["self_reported"] = {"mb_read": float(m.group(1)), "mb_written": float(m.group(2)),
                                "seconds": float(m.group(3)), "mb_s": float(m.group(4))}
    files = nii_files(out) if os.path.isdir(out) else []
    res["volumes"] = len(files)
    res["out_bytes"] = sum(os.path.getsize(f) for f in files)
    return res


def run_dcm2niix_single(a, archive, work):
    out = os.path.join(work, "out_dcm2niix")
    fresh_dir(out)
    cmd = [a.dcm2niix, "-z", "y", "-f", "%s_%p", "-o", out, archive]
    load = loadavg()
    rc, wall, cpu, text = timed(cmd, stdout_path=out + ".log")
    files = nii_files(out)
    return {"tool": "dcm2niix -z y", "cmd": " ".join(cmd), "rc": rc, "wall_s": wall, "cpu_s": cpu,
            "load_before": load, "out_dir": out, "volumes": len(files),
            "out_bytes": sum(os.path.getsize(f) for f in files)}


def run_dcm2niix_per_series(a, archive, work):
    out = os.path.join(work, "out_dcm2niix_per_series")
    fresh_dir(out)
    args = []
    for i, d in enumerate(series_dirs(archive)):
        o = os.path.join(out, "s%05d" % i)
        os.makedirs(o)
        args += ["-o", o, d]
    listing = os.path.join(work, "per_series_args")
    with open(listing, "wb") as f:
        f.write(b"".join(x.encode() + b"\0" for x in args))
    nproc = os.cpu_count() or 1
    cmd = ["xargs", "-0", "-a", listing, "-P", str(nproc), "-n", "3", a.dcm2niix, "-z", "y", "-f", "%s_%p"]
    load = loadavg()
    rc, wall, cpu, text = timed(cmd, stdout_path=out + ".log")
    files = nii_files(out)
    return {"tool": "dcm2niix -z y per series x%d" % nproc, "cmd": " ".join(cmd), "rc": rc, "wall_s": wall,
            "cpu_s": cpu, "load_before": load, "out_dir": out, "volumes": len(files),
            "out_bytes": sum(os.path.getsize(f) for f in files)}


# ---------------------------------------------------------- the limit --

def nifti_voxels(raw):
    """The voxel bytes of an uncompressed NIfTI-1/2 image."""
    (hdr,) = struct.unpack_from("<i", raw, 0)
    if hdr == 348:
        (off,) = struct.unpack_from("<f", raw, 108)
    elif hdr == 540:
        (off,) = struct.unpack_from("<q", raw, 168)
    else:
        raise ValueError("not a little-endian NIfTI file")
    return memoryview(raw)[int(off):]


def nifti_slice_bytes(raw):
    """Bytes per slice (dim1 x dim2 x bytes per voxel) of an uncompressed NIfTI-1/2 image."""
    (hdr,) = struct.unpack_from("<i", raw, 0)
    if hdr == 348:
        dims = struct.unpack_from("<8h", raw, 40)
        (bitpix,) = struct.unpack_from("<h", raw, 72)
    else:
        dims = struct.unpack_from("<8q", raw, 16)
        (bitpix,) = struct.unpack_from("<h", raw, 14)
    return dims[1] * dims[2] * bitpix // 8


def bench_json(a, env_file, bench_filter, repetitions=1, period=0, gzip6=True):
    """The run of the benchmark with the median bytes_per_second, plus "best_bps"."""
    env = dict(os.environ, RAPIDNII_BENCH_FILE=env_file, RAPIDNII_BENCH_PERIOD=str(period))
    if not gzip6:
        env["RAPIDNII_BENCH_NO_GZIP6"] = "1"
    cmd = [a.bench_deflate, "--benchmark_filter=" + bench_filter, "--benchmark_format=json",
           "--benchmark_repetitions=%d" % repetitions]
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode != 0:
        raise RuntimeError("%s failed: %s" % (" ".join(cmd), p.stderr.decode()[-500:]))
    data = json.loads(p.stdout.decode())
    runs = [b for b in data["benchmarks"] if b.get("run_type", "iteration") == "iteration"]
    if not runs:
        raise RuntimeError("no benchmark matched %s" % bench_filter)
    if "bytes_per_second" not in runs[0]:
        return runs[0]
    runs.sort(key=lambda b: b["bytes_per_second"])
    med = dict(runs[len(runs) // 2])
    med["best_bps"] = runs[-1]["bytes_per_second"]
    return med


def prepare_limit(a, work, rap, threads):
    """rapidnii's voxels grouped by the compressor it chose for them: one raw
    file per compressor, for timing the compressors alone (time_limit)."""
    files = nii_files(rap["out_dir"])
    comps = rap["compressors"]
    setting = rap["compression"]
    tmpdir = os.path.join(work, "limit_voxels_" + re.sub(r"[^A-Za-z0-9_-]", "_", setting))
    fresh_dir(tmpdir)
    choice_of = {}
    if len(comps) == 1:
        only = next(iter(comps))
        choice_of = {f: only for f in files}
    elif setting in POLICIES:
        for f in files:
            vf = os.path.join(tmpdir, "vol.raw")
            raw = gzip.open(f).read()
            with open(vf, "wb") as o:
                o.write(nifti_voxels(raw))
            b = bench_json(a, vf, "^choose/%s/threads:1/" % setting, period=nifti_slice_bytes(raw), gzip6=False)
            del raw
            choice_of[f] = b.get("label", "?")
        os.remove(os.path.join(tmpdir, "vol.raw"))
        counted = {}
        for c in choice_of.values():
            counted[c] = counted.get(c, 0) + 1
        if counted != comps:
            log("WARNING: recomputed choices %s differ from rapidnii's summary %s" % (counted, comps))
    else:
        raise RuntimeError("cannot attribute compressors %s to volumes" % comps)
    groups, handles = {}, {}
    raw_total = 0
    try:
        for f in files:
            raw = gzip.open(f).read()
            raw_total += len(raw)
            c = choice_of[f]
            if c not in handles:
                groups[c] = os.path.join(tmpdir, "group_%s.raw" % c.replace("/", "_"))
                handles[c] = open(groups[c], "wb")
            handles[c].write(nifti_voxels(raw))
            del raw
    finally:
        for h in handles.values():
            h.close()
    return {"dir": tmpdir, "raw_nifti_bytes": raw_total, "bench_threads": max(1, min(threads, 2)),
            "groups": [{"choice": c, "path": p, "voxel_bytes": os.path.getsize(p),
                        "volumes": sum(1 for v in choice_of.values() if v == c)} for c, p in sorted(groups.items())]}


def time_limit(a, prep, repetitions=1, gzip6=False):
    """The chosen compressors alone over their voxels (rapidnii_bench_deflate's
    parallel/<choice>/threads:N, --threads capped at the 2 it registers)."""
    per = []
    total_s = best_s = 0.0
    for g in prep["groups"]:
        b = bench_json(a, g["path"], "^parallel/%s/threads:%d/" % (g["choice"], prep["bench_threads"]), repetitions,
                       gzip6=gzip6)
        bps = float(b["bytes_per_second"])
        total_s += g["voxel_bytes"] / bps
        best_s += g["voxel_bytes"] / float(b["best_bps"])
        per.append({"choice": g["choice"], "voxel_bytes": g["voxel_bytes"], "volumes": g["volumes"], "mb_s": bps / 1e6,
                    "seconds": g["voxel_bytes"] / bps, "ratio": b.get("ratio"), "vs_gzip6": b.get("vs_gzip6"),
                    "benchmark": b["name"]})
    return {"raw_nifti_bytes": prep["raw_nifti_bytes"], "seconds": total_s, "best_seconds": best_s, "groups": per,
            "bench_threads": prep["bench_threads"]}


def canonical_key(path):
    """(shape, voxel hash) after as_closest_canonical, its affine, and the
    stored (shape, affine) as written."""
    import nibabel as nib
    import numpy as np
    stored = nib.load(path)
    img = nib.as_closest_canonical(stored)
    data = np.ascontiguousarray(np.asanyarray(img.dataobj), dtype=np.float64)
    key = (tuple(data.shape), hashlib.sha1(data.tobytes()).hexdigest())
    return key, img.affine.copy(), (tuple(stored.shape), stored.affine.copy())


def agreement(dcm_dir, rap_dir):
    import nibabel as nib
    import numpy as np
    rap = {}
    for f in nii_files(rap_dir):
        key, aff, stored = canonical_key(f)
        rap.setdefault(key, []).append((f, aff, stored))
    problems = []
    matched = 0
    ratios = []
    dcm_files = nii_files(dcm_dir)
    for f in dcm_files:
        key, aff, stored = canonical_key(f)
        cands = rap.get(key, [])
        if not cands:
            problems.append("%s: no rapidnii volume with the same shape and voxels" % os.path.relpath(f, dcm_dir))
            continue
        same = [c for c in cands if np.allclose(aff, c[1], atol=1e-3, rtol=0)]
        if not same:
            d = min(float(np.max(np.abs(aff - c[1]))) for c in cands)
            problems.append("%s: voxels match but affine differs by %.4g mm" % (os.path.relpath(f, dcm_dir), d))
            continue
        matched += 1
        # stored as dcm2niix stores it: the same shape and affine before any
        # reorientation (dcm2niix's row flip, its 3D acquisitions rotated)
        if not any(c[2][0] == stored[0] and np.allclose(c[2][1], stored[1], atol=1e-3, rtol=0) for c in same):
            problems.append("%s: stored in another voxel order than dcm2niix (%s %s)" % (
                os.path.relpath(f, dcm_dir), stored[0], "".join(nib.aff2axcodes(stored[1]))))
        # this volume's .nii.gz size against dcm2niix's (pigz -6) of the same voxels
        ratios.append(os.path.getsize(same[0][0]) / os.path.getsize(f))
    ok = not problems and len(dcm_files) > 0
    out = {"pass": ok, "dcm2niix_volumes": len(dcm_files), "rapidnii_volumes": sum(len(v) for v in rap.values()),
           "matched": matched, "problems": problems[:20]}
    if ratios:
        out["size_vs_dcm2niix_per_volume"] = [round(min(ratios), 4), round(max(ratios), 4)]
    return out


# --------------------------------------------------------------- table --

def table(results, input_bytes, ref, per_series=None):
    """Markdown table; wall = median of the runs, best = fastest run."""
    rows = []
    hdr = ["run", "wall s (median)", "best s", "CPU s", "input MB/s", "output MB", "size vs dcm2niix",
           "speed vs dcm2niix -z y"]
    if per_series:
        hdr.append("speed vs per-series")
    hdr.append("of limit")
    for r in results:
        row = [r["label"], "%.2f" % r["wall_s"], "%.2f" % r.get("best_s", r["wall_s"]),
               "%.1f" % r["cpu_s"] if r.get("cpu_s") is not None else "-",
               "%.1f" % (input_bytes / 1e6 / r["wall_s"]),
               "%.1f" % (r["out_bytes"] / 1e6) if r.get("out_bytes") else "-",
               "%.3f" % (r["out_bytes"] / ref["out_bytes"]) if r.get("out_bytes") and ref.get("out_bytes") else "-",
               "%.2fx" % (ref["wall_s"] / r["wall_s"])]
        if per_series:
            row.append("%.2fx" % (per_series["wall_s"] / r["wall_s"]))
        row.append("%.0f%%" % (100 * r["limit_fraction"]) if "limit_fraction" in r else "-")
        rows.append(row)
    lines = ["| " + " | ".join(hdr) + " |", "|" + "---|" * len(hdr)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------- main --

def main(argv=None):
    global COLD
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rapidnii", required=True)
    ap.add_argument("--archive", help="an existing DICOM archive (default: generate one)")
    ap.add_argument("--size-mb", type=float, help="size of the generated archive (default 100; 10 with --smoke)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--compression", default="default", help="comma-separated: default,fast,small,<level>...")
    ap.add_argument("--work", help="work folder (default: a temporary folder, removed unless --keep)")
    ap.add_argument("--out-json")
    ap.add_argument("--dcm2niix", default=shutil.which("dcm2niix"))
    ap.add_argument("--bench-deflate", help="rapidnii_bench_deflate (default: beside rapidnii, bench/)")
    ap.add_argument("--no-per-series", action="store_true")
    ap.add_argument("--no-limit", action="store_true")
    ap.add_argument("--repeat", type=int, default=1, help="runs of every tool (the table shows the median)")
    ap.add_argument("--keep", action="store_true", help="keep the outputs (the archive is always kept in --work)")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--cold", action="store_true",
                    help="drop the page cache before every timed tool run (root): the archive is read from the disk, "
                         "as an overnight conversion of an archive not read since boot")
    a = ap.parse_args(argv)

    if not a.dcm2niix or not os.access(a.dcm2niix, os.X_OK):
        log("SKIP: dcm2niix not found")
        return SKIP
    if not os.access(a.rapidnii, os.X_OK):
        log("FAIL: rapidnii not executable: %s" % a.rapidnii)
        return 1
    if a.bench_deflate is None:
        a.bench_deflate = os.path.join(os.path.dirname(os.path.abspath(a.rapidnii)), "bench",
                                       "rapidnii_bench_deflate")
    if a.smoke:
        a.no_per_series = True
        a.no_limit = True
    if not a.no_limit and not os.access(a.bench_deflate, os.X_OK):
        log("no rapidnii_bench_deflate at %s: the limit is not measured" % a.bench_deflate)
        a.no_limit = True
    size_mb = a.size_mb if a.size_mb is not None else (10.0 if a.smoke else 100.0)
    compressions = [c for c in a.compression.split(",") if c]

    temp_work = a.work is None
    work = a.work or tempfile.mkdtemp(prefix="rapidnii_e2e_")
    os.makedirs(work, exist_ok=True)
    report = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
              "machine": {"nproc": os.cpu_count(), "cpu": cpu_model(), "mem_gb": round(mem_gb(), 1),
                          "load_start": loadavg(), "kernel": platform.release()},
              "threads": a.threads, "smoke": a.smoke}
    try:
        # the archive
        if a.archive:
            archive = os.path.abspath(a.archive)
        else:
            archive = os.path.join(work, "archive_%gMB_seed%d" % (size_mb, a.seed))
            stamp = archive + ".done"
            if not os.path.exists(stamp):
                if os.path.exists(archive):
                    shutil.rmtree(archive)
                g = subprocess.run([sys.executable, os.path.join(HERE, "gen_archive.py"), archive, "--size-mb",
                                    str(size_mb), "--seed", str(a.seed), "--quiet"])
                if g.returncode != 0:
                    log("FAIL: archive generation failed")
                    return 1
                open(stamp, "w").close()
        input_bytes = tree_bytes(archive)
        nseries = len(series_dirs(archive))
        report["archive"] = {"path": archive, "bytes": input_bytes, "series_folders": nseries}
        log("archive %s: %.1f MB, %d series folders; machine: %d cores, %s, load %s" % (
            archive, input_bytes / 1e6, nseries, os.cpu_count(), cpu_model(), loadavg()))
        if a.cold:
            try:
                drop_caches()
            except OSError as e:
                log("FAIL: --cold needs to write /proc/sys/vm/drop_caches (root): %s" % e)
                return 1
            COLD = True
            report["cold_cache"] = True
            log("cold: the page cache is dropped before every timed run")
        else:
            warm_cache(archive)
        key = os.path.join(work, "bench.key")
        with open(key, "wb") as f:
            f.write(hashlib.sha256(b"rapidnii e2e benchmark key").digest())
        os.chmod(key, 0o600)

        # Every tool runs --repeat times, round-robin (so that a change in the
        # machine's load hits every tool alike); the table uses the median.
        runs = {}  # label -> list of results

        def record(key, r):
            runs.setdefault(key, []).append(r)
            log("%s: rc %d, %.2f s wall, %.1f s CPU, %d volumes, %.1f MB, load %s%s" % (
                key, r["rc"], r["wall_s"], r["cpu_s"], r["volumes"], r["out_bytes"] / 1e6, r["load_before"],
                (", " + str(r["compressors"])) if "compressors" in r else ""))

        limit_prep, limit_runs = {}, {}  # compression -> grouped voxels; timed limits
        for rep in range(a.repeat):
            record("dcm2niix", run_dcm2niix_single(a, archive, work))
            if not a.no_per_series:
                record("per_series", run_dcm2niix_per_series(a, archive, work))
            for c in compressions:
                r = run_rapidnii(a, archive, work, c, key)
                record("rapidnii:" + c, r)
                # The limit is timed right after each run of rapidnii, so that
                # a drift in the machine's speed hits both alike (its voxels
                # grouped once, untimed, from the first run's outputs).
                if not a.no_limit and r["rc"] == 0 and r["compressors"]:
                    if c not in limit_prep:
                        limit_prep[c] = prepare_limit(a, work, r, a.threads)
                        os.sync()
                    lim = time_limit(a, limit_prep[c])
                    limit_runs.setdefault(c, []).append(lim)
                    log("limit:%s: %.2f s (%s)" % (c, lim["seconds"], ", ".join(
                        "%s %.0f MB/s" % (g["choice"], g["mb_s"]) for g in lim["groups"])))

        def summarise(key, label):
            rs = runs[key]
            walls = sorted(r["wall_s"] for r in rs)
            last = dict(rs[-1])
            last["walls_s"] = [r["wall_s"] for r in rs]
            last["wall_s"] = walls[len(walls) // 2] if len(walls) % 2 else 0.5 * (
                walls[len(walls) // 2 - 1] + walls[len(walls) // 2])
            last["best_s"] = walls[0]
            last["cpu_s"] = sorted(r["cpu_s"] for r in rs)[len(rs) // 2]
            last["rc"] = max(r["rc"] for r in rs)
            last["label"] = label
            return last

        results = []
        ref = summarise("dcm2niix", "dcm2niix -z y (1 process, pigz)")
        ok = ref["rc"] == 0 and ref["volumes"] > 0
        if not ok:
            log("FAIL: dcm2niix did not complete (see %s.log)" % ref["out_dir"])
        results.append(ref)
        if not a.no_per_series:
            ps = summarise("per_series", "dcm2niix -z y, 1 process per series, %d at a time" % (os.cpu_count() or 1))
            ok = ok and ps["rc"] == 0
            results.append(ps)

        agree_all = True
        for c in compressions:
            r = summarise("rapidnii:" + c, "rapidnii --compression %s" % c)
            r["label"] += " (%s)" % ", ".join("%s x%d" % kv for kv in sorted(r["compressors"].items()))
            if r["rc"] != 0 or r["volumes"] == 0:
                ok = False
                log("FAIL: rapidnii did not complete (rc %d; see %s.log)" % (r["rc"], r["out_dir"]))
            results.append(r)
            if ref["volumes"] and r["volumes"]:
                ag = agreement(ref["out_dir"], r["out_dir"])
            else:
                ag = {"pass": False, "problems": ["no outputs"]}
            r["agreement"] = ag
            agree_all = agree_all and ag["pass"]
            log("AGREEMENT %s (%s vs dcm2niix -z y): %s" % ("PASS" if ag["pass"] else "FAIL", c, json.dumps(
                {k: v for k, v in ag.items() if k != "pass"})))
            if limit_runs.get(c):
                lims = sorted(limit_runs[c], key=lambda l: l["seconds"])
                lim = dict(lims[len(lims) // 2])  # the median run (its groups' speeds)
                lim["runs_s"] = [l["seconds"] for l in limit_runs[c]]
                lim["best_seconds"] = lims[0]["seconds"]
                # sizes against gzip -6 (zlib -6 over every group: slow, untimed)
                sizes = {g["choice"]: g["vs_gzip6"] for g in time_limit(a, limit_prep[c], gzip6=True)["groups"]}
                for g in lim["groups"]:
                    g["vs_gzip6"] = sizes.get(g["choice"])
                shutil.rmtree(limit_prep[c]["dir"], ignore_errors=True)
                r["limit"] = lim
                r["limit_fraction"] = lim["seconds"] / r["wall_s"]
                results.append({"label": "deflate-bound limit for '%s' (%s, threads:%d)" % (
                    c, ", ".join(g["choice"] for g in lim["groups"]), lim["bench_threads"]),
                    "wall_s": lim["seconds"], "best_s": lim["best_seconds"], "cpu_s": None, "out_bytes": None})
                log("limit for %s: %.2f s median of %s (%s); rapidnii at %.0f%% of it" % (
                    c, lim["seconds"], ", ".join("%.2f" % x for x in lim["runs_s"]),
                    "; ".join("%s %.0f MB at %.0f MB/s, %.3f of gzip -6" % (
                        g["choice"], g["voxel_bytes"] / 1e6, g["mb_s"], g["vs_gzip6"] or 0) for g in lim["groups"]),
                    100 * r["limit_fraction"]))
            if not a.keep:
                shutil.rmtree(r["out_dir"], ignore_errors=True)
                shutil.rmtree(r["out_dir"] + ".state", ignore_errors=True)

        report["machine"]["load_end"] = loadavg()
        report["results"] = [{k: v for k, v in r.items() if k != "log"} for r in results]
        report["agreement_pass"] = agree_all
        tab = table(results, input_bytes, ref, None if a.no_per_series else ps)
        report["table"] = tab
        print()
        print("Machine: %d cores (%s), %.0f GB RAM; load at start %s, at end %s; rapidnii --threads %d" % (
            os.cpu_count(), cpu_model(), mem_gb(), report["machine"]["load_start"], report["machine"]["load_end"],
            a.threads))
        print("Archive: %.1f MB of DICOM, %d series folders; %d run(s) of each tool, round-robin" % (
            input_bytes / 1e6, nseries, a.repeat))
        print(tab)
        print("AGREEMENT: %s" % ("PASS" if agree_all else "FAIL"))
        if a.out_json:
            with open(a.out_json, "w") as f:
                json.dump(report, f, indent=2)
        if not ok or not agree_all:
            return 1
        return 0
    finally:
        if temp_work and not a.keep:
            shutil.rmtree(work, ignore_errors=True)
        elif not a.keep:
            for d in glob.glob(os.path.join(work, "out_*")):
                shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
