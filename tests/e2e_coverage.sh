#!/usr/bin/env bash
# Input coverage on generated series (tests/gen_coverage_dicom.py): DWI with
# .bval/.bvec (standard and Philips private tags, scrambled instance
# numbers), Philips precise scaling, complex parts split, gantry tilt
# reported, enhanced multi-frame, legacy multi-frame (NM tomography, gated
# NM, MR cine, NM projections), RGB; multi-frame objects in compressed and
# deflated transfer syntaxes. Every reference must be reproduced
# (tests/check_coverage.py), with the orientation options too.
set -u
RAPIDNII=$1 PY=$2 WORK=$3
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$WORK" && mkdir -p "$WORK"
"$PY" "$here/gen_coverage_dicom.py" "$WORK/in" "$WORK/ref" || { echo "FAIL: generator"; exit 1; }
nref=$(ls "$WORK/ref"/*.nii | wc -l)
fail=0
for orient in native acquired RAS LPS; do
  "$RAPIDNII" convert "$WORK/in" "$WORK/out-$orient" --orient "$orient" > "$WORK/log-$orient" 2>&1
  rc=$?
  cat "$WORK/log-$orient"
  [ "$rc" = 0 ] || { echo "FAIL: exit code $rc ($orient)"; fail=1; }
  "$PY" "$here/check_coverage.py" "$WORK/out-$orient" "$WORK/ref" --expect "$nref" > "$WORK/check-$orient" 2>&1 || fail=1
  cat "$WORK/check-$orient"
done
# the two echoes of one series are told apart by echo-<n>, not run-<k>
for e in 1 2; do
  grep -qE "^MATCH enh_echo$e.nii <- .*_echo-${e}_mr.nii.gz$" "$WORK/check-native" \
    || { echo "FAIL: echo $e of the enhanced series is not named echo-$e"; fail=1; }
done
# no position at all (and NM projections): code 0, native order whatever --orient asks
"$PY" "$here/gen_coverage_dicom.py" "$WORK/in-nopos" "$WORK/ref-nopos" --no-position || { echo "FAIL: generator (no position)"; exit 1; }
nref_nopos=$(ls "$WORK/ref-nopos"/*.nii | wc -l)
for orient in native RAS; do
  "$RAPIDNII" convert "$WORK/in-nopos" "$WORK/out-nopos-$orient" --orient "$orient" > "$WORK/log-nopos-$orient" 2>&1
  rc=$?
  cat "$WORK/log-nopos-$orient"
  [ "$rc" = 0 ] || { echo "FAIL: exit code $rc (no position, $orient)"; fail=1; }
  "$PY" "$here/check_coverage.py" "$WORK/out-nopos-$orient" "$WORK/ref-nopos" --expect "$nref_nopos" || fail=1
  grep -qF "position unknown" "$WORK/log-nopos-$orient" || { echo "FAIL: unknown position not reported"; fail=1; }
done
# multi-frame objects (enhanced MR, enhanced CT, legacy gated NM) re-encoded by
# gdcmconv in JPEG lossless, JPEG-LS, RLE and deflated transfer syntaxes:
# every reference still reproduced
mkdir -p "$WORK/ref-ts"
for r in enh_echo1 enh_echo2 enh_ct nm_gated; do cp "$WORK/ref/$r".* "$WORK/ref-ts/"; done
for opt in jpeg jpegls rle deflated; do
  mkdir -p "$WORK/in-$opt"
  for src in enhanced/multiecho enhanced/ct legacy/nm_gated; do
    gdcmconv "--$opt" "$WORK/in/$src" "$WORK/in-$opt/$(basename "$src").dcm" \
      || { echo "FAIL: gdcmconv --$opt $src (libgdcm-tools, installed by scripts/setup)"; fail=1; }
  done
  "$RAPIDNII" convert "$WORK/in-$opt" "$WORK/out-$opt" > "$WORK/log-$opt" 2>&1 || { cat "$WORK/log-$opt"; echo "FAIL: exit code ($opt)"; fail=1; }
  "$PY" "$here/check_coverage.py" "$WORK/out-$opt" "$WORK/ref-ts" --expect 4 || { echo "FAIL: $opt"; fail=1; }
done
# a Modality LUT is not applied: the series is skipped with its reason, nothing written
"$PY" "$here/gen_coverage_dicom.py" "$WORK/in-lut" "$WORK/ref-lut" --unsupported || { echo "FAIL: generator (LUT)"; exit 1; }
"$RAPIDNII" convert "$WORK/in-lut" "$WORK/out-lut" > "$WORK/log-lut" 2>&1
rc=$?
[ "$rc" != 0 ] || { echo "FAIL: a skipped series must give a non-zero exit code"; fail=1; }
grep -qF "modality LUT sequence (not applied)" "$WORK/log-lut" || { cat "$WORK/log-lut"; echo "FAIL: LUT skip not reported"; fail=1; }
[ -z "$(find "$WORK/out-lut" -name '*.nii.gz' 2>/dev/null)" ] || { echo "FAIL: a series with a Modality LUT was written"; fail=1; }
grep -qF "gantry tilt corrected" "$WORK/log-native" || { echo "FAIL: gantry tilt correction not reported"; fail=1; }
grep -qF "1 derived isotropic (trace) volume(s) removed" "$WORK/log-native" || { echo "FAIL: removal of the isotropic volume not reported"; fail=1; }
# de-identification: the gradient tables hold numbers only
if grep -lvE '^[-0-9.e ]*$' $(find "$WORK/out-native" -name '*.bval' -o -name '*.bvec') 2>/dev/null | grep -q .; then
  echo "FAIL: a .bval/.bvec holds something other than numbers"; fail=1
fi
[ "$fail" = 0 ] && echo "PASS: $nref coverage references reproduced (native, RAS, LPS)"
exit $fail
