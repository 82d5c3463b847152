#!/bin/bash
# Vendor-specific fields (gen_vendor_series.py): diffusion vectors stored in
# the image's frame (GE's logical frame, UIH's image frame), whose
# .bval/.bvec and volumes must match references written from dcm2niix's
# documented rules, with --orient native and RAS; GE EPI timing and
# polarity and GE slice timing from the protocol, whose sidecar values
# must match (check_coverage.py). The rules
# themselves are checked against Debian's dcm2niix on every series its
# release implements the same way (REF/oracle.txt, REF/epi); that part
# reports itself skipped without dcm2niix.
# usage: e2e_vendor_series.sh RAPIDNII PYTHON WORKDIR
set -u
RAPIDNII=$1 PY=$2 WORK=$3
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$WORK" && mkdir -p "$WORK"
"$PY" "$here/gen_vendor_series.py" "$WORK/in" "$WORK/ref" || { echo "FAIL: generator"; exit 1; }
fail=0 checked=0
for series in "$WORK"/in/*/; do
  name=$(basename "$series")
  [ -f "$WORK/ref/$name.bval" ] || continue  # the EPI folders: below
  for orient in native RAS; do
    out="$WORK/out-$orient/$name" && mkdir -p "$WORK/out-$orient"
    "$RAPIDNII" convert "$series" "$out" --orient "$orient" --state "$WORK/state-$orient-$name" > "$out.log" 2>&1 ||
      { cat "$out.log"; echo "FAIL: $name ($orient): exit status"; fail=1; continue; }
    nii=$(find "$out" -name '*_dwi.nii.gz')
    [ "$(echo "$nii" | grep -c .)" = 1 ] || { cat "$out.log"; echo "FAIL: $name ($orient): expected one BIDS dwi output"; fail=1; continue; }
    "$PY" "$here/dwi_compare.py" "$nii" "$WORK/ref/$name.nii" "$WORK/ref/$name.bval" "$WORK/ref/$name.bvec" ||
      { echo "FAIL: $name ($orient)"; fail=1; continue; }
    checked=$((checked + 1))
  done
done
echo "rapidnii: $checked DWI outputs checked"
for sub in epi epi3d epi_delay; do
  for orient in native RAS; do
    out="$WORK/out-$orient/$sub"
    "$RAPIDNII" convert "$WORK/in/$sub" "$out" --orient "$orient" --state "$WORK/state-$orient-$sub" > "$out.log" 2>&1 ||
      { cat "$out.log"; echo "FAIL: $sub ($orient): exit status"; fail=1; continue; }
    "$PY" "$here/check_coverage.py" "$out" "$WORK/ref/$sub" --expect "$(ls "$WORK/ref/$sub"/*.nii | wc -l)" ||
      { echo "FAIL: $sub ($orient)"; fail=1; }
  done
done
if command -v dcm2niix > /dev/null; then
  n=0
  while read -r name; do
    d="$WORK/d2n/$name" && mkdir -p "$d"
    dcm2niix -b n -z y -f dwi -o "$d" "$WORK/in/$name" > "$d.log" 2>&1 || { cat "$d.log"; echo "FAIL: dcm2niix $name"; fail=1; continue; }
    "$PY" "$here/dwi_compare.py" "$d/dwi.nii.gz" "$WORK/ref/$name.nii" "$WORK/ref/$name.bval" "$WORK/ref/$name.bvec" ||
      { echo "FAIL: the reference of $name is not what dcm2niix writes"; fail=1; continue; }
    n=$((n + 1))
  done < "$WORK/ref/oracle.txt"
  dcm2niix -b y -z y -f %s -o "$WORK/d2n" "$WORK/in/epi" > "$WORK/d2n-epi.log" 2>&1 &&
    "$PY" "$here/check_coverage.py" "$WORK/d2n" "$WORK/ref/epi" --expect "$(ls "$WORK/ref/epi"/*.nii | wc -l)" ||
    { echo "FAIL: the EPI references are not what dcm2niix writes"; fail=1; }
  echo "dcm2niix agrees with $n DWI references and the EPI ones"
else
  echo "SKIPPED (part): dcm2niix not installed, references not checked against it"
fi
[ "$fail" = 0 ] && echo "PASS"
exit $fail
