#!/usr/bin/env bash
# Converts the real validation data (dcm_qa_ts, dcm_qa_12bit,
# dcm_qa_orientation) and checks all 33 reference volumes with the nibabel
# oracle, and their native voxel order and sidecar acquisition fields
# (tests/compare_sidecars.py). Exit 77 (skipped) when the data is absent.
set -u
RAPIDNII=$1 DATA=$2 PY=$3 WORK=$4
if [ ! -d "$DATA/dcm_qa_ts/In" ] || [ ! -d "$DATA/dcm_qa_12bit/In" ] || [ ! -d "$DATA/dcm_qa_orientation/In" ]; then
  echo "SKIP: validation data not found at $DATA (set -DRAPIDNII_TEST_DATA=... or place ../shared/data)"
  exit 77
fi
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$WORK" && mkdir -p "$WORK"
fail=0
total=0
# name, expected rapidnii exit code (the orientation set holds a PDF, a text
# file and a NIfTI among its DICOM: those are skipped, so exit 1), refs
for spec in "dcm_qa_ts 0 9" "dcm_qa_12bit 0 3" "dcm_qa_orientation 1 21"; do
  set -- $spec
  name=$1 want_rc=$2 nref=$3
  "$RAPIDNII" convert "$DATA/$name/In" "$WORK/$name" > "$WORK/$name.log" 2>&1
  rc=$?
  cat "$WORK/$name.log"
  if [ "$rc" != "$want_rc" ]; then
    echo "FAIL: $name: exit code $rc, expected $want_rc"
    fail=1
  fi
  if ! "$PY" "$here/compare_nifti.py" "$WORK/$name" "$DATA/$name/Ref" --expect "$nref"; then
    echo "FAIL: $name: reference volumes not reproduced"
    fail=1
  fi
  # native voxel order, phase encoding, echo spacing, readout time, slice timing
  # (dcm_qa_12bit's mosaics hold no slice times: ours, like dcm2niix's, come
  # from the protocol, and must match)
  if ! "$PY" "$here/compare_sidecars.py" "$WORK/$name" "$DATA/$name/Ref"; then
    echo "FAIL: $name: sidecar acquisition fields or voxel order differ from dcm2niix's"
    fail=1
  fi
  # the two multiband series whose first volume stores slice times beyond
  # TR: the second volume's are taken (compare_sidecars checked them against
  # dcm2niix's), so nothing is reported left out
  if [ "$name" = dcm_qa_orientation ] && grep -qF "slice times not written" "$WORK/$name.log"; then
    echo "FAIL: $name: slice times left out"
    fail=1
  fi
  total=$((total + nref))
done
if [ "$fail" = 0 ]; then echo "PASS: all $total reference volumes reproduced"; fi
exit $fail
