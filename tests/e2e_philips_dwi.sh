#!/usr/bin/env bash
# Philips classic DWI of the validation data (dcm_qa_philips_dwi): rapidnii
# and Debian's dcm2niix convert the same input; volumes must agree after
# as_closest_canonical and the .bval/.bvec must match the shipped Ref (which
# dcm2niix wrote) within 1e-3, vectors compared in the canonical voxel frame.
# Exit 77 (skipped) when the data or dcm2niix is absent.
set -u
RAPIDNII=$1 DATA=$2 PY=$3 WORK=$4
here=$(cd "$(dirname "$0")" && pwd)
IN="$DATA/dcm_qa_philips_dwi/In" REF="$DATA/dcm_qa_philips_dwi/Ref"
[ -d "$IN" ] || { echo "SKIP: $IN not found"; exit 77; }
command -v dcm2niix > /dev/null || { echo "SKIP: dcm2niix not installed"; exit 77; }
rm -rf "$WORK" && mkdir -p "$WORK/d2n"
dcm2niix -b n -z n -f dwi -o "$WORK/d2n" "$IN" > "$WORK/d2n.log" 2>&1 || { cat "$WORK/d2n.log"; echo "FAIL: dcm2niix"; exit 1; }
fail=0
for orient in native RAS; do
  # default settings: Philips' empty SecondaryCaptureDevice* attributes are no burned-in risk
  "$RAPIDNII" convert "$IN" "$WORK/out-$orient" --orient "$orient" --state "$WORK/state-$orient" > "$WORK/log-$orient" 2>&1
  cat "$WORK/log-$orient"
  out=$(find "$WORK/out-$orient" -name '*.nii.gz')
  case "$out" in */dwi/*_dwi.nii.gz) ;; *) echo "FAIL: not written as BIDS dwi: $out"; fail=1 ;; esac
  [ "$(echo "$out" | wc -l)" = 1 ] || { echo "FAIL: expected one output ($orient)"; fail=1; continue; }
  "$PY" "$here/dwi_compare.py" "$out" "$WORK/d2n/dwi.nii" "$REF"/*.bval "$REF"/*.bvec || fail=1
done
[ "$fail" = 0 ] && echo "PASS"
exit $fail
