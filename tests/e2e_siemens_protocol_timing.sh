#!/bin/bash
# Siemens mosaics that store no slice times (syngo VB12: no MosaicRefAcqTimes):
# SliceTiming estimated from the protocol (ASCCONV slice order, TR, delay in
# TR), checked against Debian's dcm2niix, which estimates it the same way.
# Inputs: a real VB12 mosaic of dcm_qa_12bit (35 slices, ascending, 10 ms
# delay) and copies whose protocol text says descending, interleaved, or
# another delay (same-length edits of the ASCCONV lines), plus a multiband
# one, for which nothing may be written.
# Usage: e2e_siemens_protocol_timing.sh RAPIDNII DATA_DIR WORK_DIR
# Exit 77 (skipped) without the data or dcm2niix.
set -u
RAPIDNII="$1" DATA="$2" WORK="$3"
PY=/usr/bin/python3
src="$DATA/dcm_qa_12bit/In/12bitUnsigned.dcm"
if [ ! -f "$src" ]; then echo "SKIP: $src not found (set RAPIDNII_TEST_DATA)"; exit 77; fi
if ! command -v dcm2niix > /dev/null; then echo "SKIP: dcm2niix not installed"; exit 77; fi
rm -rf "$WORK" && mkdir -p "$WORK"
fail=0
for spec in "asc|0x1|10000|" "desc|0x2|10000|" "int|0x4|10000|" "int_delay|0x4|90000|" "asc_nodelay|0x1|00000|" "mb|0x4|10000|mb"; do
  IFS='|' read -r name mode delay mb <<< "$spec"
  mkdir -p "$WORK/$name/in"
  "$PY" - "$src" "$WORK/$name/in/IM1.dcm" "$mode" "$delay" "$mb" << 'PYEOF'
import sys
src, dst, mode, delay, mb = sys.argv[1:6]
d = open(src, "rb").read()
def sub(d, old, new):
    assert len(old) == len(new) and d.count(old) == 1, old
    return d.replace(old, new)
d = sub(d, b"sSliceArray.ucMode                       = 0x1\n", b"sSliceArray.ucMode                       = %s\n" % mode.encode())
d = sub(d, b"lDelayTimeInTR                           = 10000\n", b"lDelayTimeInTR                           = %s\n" % delay.encode())
if mb:  # a multiband factor in place of the (unused) lRepetitions line
    old = b"lRepetitions                             = 1\n"
    d = sub(d, old, b"sSliceAcceleration.lMultiBandFactor".ljust(len(old) - 4) + b"= 2\n")
open(dst, "wb").write(d)
PYEOF
  "$RAPIDNII" convert "$WORK/$name/in" "$WORK/$name/out" --state "$WORK/$name/state" > "$WORK/$name/rapidnii.log" 2>&1 || { echo "FAIL: $name: rapidnii failed"; fail=1; continue; }
  mkdir -p "$WORK/$name/ref"
  dcm2niix -z n -f ref -o "$WORK/$name/ref" "$WORK/$name/in" > "$WORK/$name/dcm2niix.log" 2>&1
  "$PY" - "$WORK/$name" "$name" << 'PYEOF' || fail=1
import glob, json, sys
work, name = sys.argv[1:3]
out = [f for f in glob.glob(work + "/out/**/*.json", recursive=True) if "/sub-" in f]
ref = json.load(open(work + "/ref/ref.json"))
got = json.load(open(out[0])) if len(out) == 1 else None
if got is None:
    sys.exit("FAIL: %s: %d sidecars" % (name, len(out)))
rt, ot = ref.get("SliceTiming"), got.get("SliceTiming")
if name == "mb":
    # the protocol's even spread is wrong under multiband: never estimated
    if ot is not None:
        sys.exit("FAIL: mb: SliceTiming written from a multiband protocol: %s" % ot[:4])
    print("PASS: mb: no SliceTiming (dcm2niix: %s)" % ("none" if rt is None else "%d values" % len(rt)))
    sys.exit(0)
if rt is None or ot is None or len(rt) != len(ot) or max(abs(a - b) for a, b in zip(rt, ot)) > 1e-3:
    sys.exit("FAIL: %s: SliceTiming %s, dcm2niix %s" % (name, ot and ot[:6], rt and rt[:6]))
print("PASS: %s: %d slice times within 1 ms of dcm2niix's (first %s)" % (name, len(ot), [round(x, 4) for x in ot[:4]]))
PYEOF
done
exit $fail
