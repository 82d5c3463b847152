#!/usr/bin/env bash
# Converts a typical MR archive (the canary generator's: T1w, BOLD,
# multi-echo BOLD, PET, three subjects with two sessions, plus the burned-in
# and broken files it holds) and runs the BIDS validator on the output: no
# error allowed (warnings are printed). Exit 77 (skipped) without npx or
# when the validator cannot be installed from the npm registry.
set -u
RAPIDNII=$1 PY=$2 WORK=$3
here=$(cd "$(dirname "$0")" && pwd)
if ! command -v npx > /dev/null; then echo "SKIP: npx not found"; exit 77; fi
rm -rf "$WORK" && mkdir -p "$WORK"
"$PY" "$here/deid/gen_canary_archive.py" "$WORK/in" "$WORK/canaries.json" || { echo "FAIL: generator"; exit 1; }
"$RAPIDNII" convert "$WORK/in" "$WORK/out" --state "$WORK/state" > "$WORK/log" 2>&1
rc=$?
cat "$WORK/log"
[ "$rc" -le 1 ] || { echo "FAIL: rapidnii exit $rc"; exit 1; }
validator=(npx -y bids-validator@1.15.0)
if [ -x "$here/js/node_modules/.bin/bids-validator" ]; then validator=("$here/js/node_modules/.bin/bids-validator"); fi
timeout 600 "${validator[@]}" --json "$WORK/out" > "$WORK/bids.json" 2> "$WORK/bids.err"
vrc=$?
if [ ! -s "$WORK/bids.json" ]; then
  cat "$WORK/bids.err"
  echo "SKIP: the BIDS validator could not be run (exit $vrc)"
  exit 77
fi
"$PY" - "$WORK/bids.json" <<'PYEOF'
import json, sys
r = json.load(open(sys.argv[1]))
errors = r["issues"]["errors"]
warnings = r["issues"]["warnings"]
for w in warnings:
    print("warning: %s (%s)" % (w["key"], w["code"]))
for e in errors:
    print("ERROR: %s: %s" % (e["key"], e["reason"]))
    for f in e.get("files", [])[:5]:
        if f.get("file"):
            print("   ", f["file"].get("relativePath"), f.get("evidence") or "")
print("bids-validator: %d errors, %d warnings" % (len(errors), len(warnings)))
sys.exit(1 if errors else 0)
PYEOF
