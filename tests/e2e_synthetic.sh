#!/usr/bin/env bash
# Generated archive: 5 series with known geometry and values, plus an empty
# file, a text file and a truncated DICOM. Every series must match the
# first-principles reference; the three bad files must be skipped with their
# reasons in the summary; the exit code must be 1.
set -u
RAPIDNII=$1 PY=$2 WORK=$3
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$WORK" && mkdir -p "$WORK"
"$PY" "$here/gen_synthetic_dicom.py" "$WORK/in" "$WORK/ref" || { echo "FAIL: generator"; exit 1; }
"$RAPIDNII" convert "$WORK/in" "$WORK/out" > "$WORK/log" 2>&1
rc=$?
cat "$WORK/log"
fail=0
[ "$rc" = 1 ] || { echo "FAIL: exit code $rc, expected 1 (inputs were skipped)"; fail=1; }
for want in "5 series written" "3 files skipped" "skipped 1 file(s): empty file" \
            "skipped 1 file(s): not a DICOM file" "skipped 1 file(s): truncated pixel data"; do
  grep -qF "$want" "$WORK/log" || { echo "FAIL: summary lacks '$want'"; fail=1; }
done
# the summary never names an input path
if grep -qE "pat|fmri_4d|run 1|IMG[0-9]|notes.txt" "$WORK/log"; then echo "FAIL: summary names an input"; fail=1; fi
n_out=$(find "$WORK/out" -name '*.nii.gz' | wc -l)
[ "$n_out" = 5 ] || { echo "FAIL: $n_out outputs, expected 5"; fail=1; }
n_tmp=$(find "$WORK/out" -name '*.tmp*' | wc -l)
[ "$n_tmp" = 0 ] || { echo "FAIL: temporary files left"; fail=1; }
"$PY" "$here/compare_nifti.py" "$WORK/out" "$WORK/ref" --expect 5 || fail=1
[ "$fail" = 0 ] && echo "PASS"
exit $fail
