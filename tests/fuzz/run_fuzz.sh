#!/usr/bin/env bash
# Builds the libFuzzer target over the header indexer with clang
# (-fsanitize=fuzzer,address,undefined) and runs it for a bounded time on a
# seed corpus of real and synthetic DICOM. Exit 77 (skipped) without clang's
# libFuzzer runtime. Usage: run_fuzz.sh SRC_DIR WORK_DIR SECONDS [DATA_DIR]
set -u
SRC=$1 WORK=$2 SECONDS_=$3 DATA=${4:-}
CXX=${FUZZ_CXX:-clang++}
if ! command -v "$CXX" > /dev/null; then echo "SKIP: $CXX not found"; exit 77; fi
# a fresh corpus every run: libFuzzer adds what it finds to the corpus
# folder, and a grown corpus explores other inputs (not reproducible)
rm -rf "$WORK/corpus" "$WORK/artifacts"
mkdir -p "$WORK/corpus" "$WORK/artifacts"
echo 'int main(){}' > "$WORK/probe.cpp"
if ! "$CXX" -fsanitize=fuzzer -x c++ -c /dev/null -o /dev/null 2> /dev/null; then
  echo "SKIP: $CXX has no libFuzzer runtime (Debian: libclang-rt-14-dev)"; exit 77
fi
set -e
"$CXX" -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -I"$SRC" -I/usr/include/gdcm-3.0 \
  "$SRC/tests/fuzz/fuzz_index.cpp" "$SRC/io/dicom_header.cpp" "$SRC/io/dicom_probe.cpp" \
  "$SRC/io/dicom_meta.cpp" "$SRC/io/input_file.cpp" "$SRC/io/siemens_csa.cpp" "$SRC/io/parser_guard.cpp" \
  "$SRC/io/enhanced_frames.cpp" "$SRC/io/ge_protocol.cpp" "$SRC/io/interned_string.cpp" \
  -lgdcmMSFF -lgdcmDSED -lgdcmCommon -lz -o "$WORK/fuzz_index"
set +e
# seeds: the shared validation data (if present) and small generated files
if [ -n "$DATA" ] && [ -d "$DATA" ]; then
  find "$DATA" -type f -size -400k \( -path '*dcm_qa_ts*' -o -path '*dcm_qa_12bit*' \) -exec cp {} "$WORK/corpus/" \; 2> /dev/null
fi
/usr/bin/python3 "$SRC/tests/gen_synthetic_dicom.py" "$WORK/gen" "$WORK/gen-ref" > /dev/null 2>&1 &&
  find "$WORK/gen" -type f -exec sh -c 'cp "$1" "$0/corpus/seed_$(basename "$(dirname "$1")")_$(basename "$1")"' "$WORK" {} \;
# coverage seeds: enhanced multi-frame, DWI private tags, RGB
/usr/bin/python3 "$SRC/tests/gen_coverage_dicom.py" "$WORK/cov" "$WORK/cov-ref" > /dev/null 2>&1 &&
  find "$WORK/cov" -type f -size -400k -exec sh -c 'cp "$1" "$0/corpus/cov_$(basename "$(dirname "$1")")_$(basename "$1")"' "$WORK" {} \;
# vendor seeds: GE protocol blocks (gzip inside the header), private DWI tags
/usr/bin/python3 "$SRC/tests/gen_vendor_series.py" "$WORK/ven" "$WORK/ven-ref" > /dev/null 2>&1 &&
  find "$WORK/ven" -type f -size -400k -path '*gest_*' -exec sh -c 'cp "$1" "$0/corpus/ven_$(basename "$(dirname "$1")")_$(basename "$1")"' "$WORK" {} \;
echo "corpus: $(ls "$WORK/corpus" | wc -l) seeds"
# Leak detection is off: a parse abandoned by the parser guard leaks by
# design (io/parser_guard.h). Crashes, aborts and memory errors still fail.
# The memory limit is 4 GiB: GDCM trusts a 32-bit element length in some
# malformed files that the probe cannot rule out (a known limit, see README).
# A fixed seed and run count keep CI reproducible: the same binary and seeds
# explore the same inputs on every machine (the time limit only bounds it).
ASAN_OPTIONS=detect_leaks=0 "$WORK/fuzz_index" -seed=1 -runs="${FUZZ_RUNS:-300000}" -detect_leaks=0 \
  -max_total_time="$SECONDS_" -rss_limit_mb=4096 \
  -malloc_limit_mb=4096 -timeout=20 -print_final_stats=1 \
  -artifact_prefix="$WORK/artifacts/" "$WORK/corpus" 2>&1 | tail -25
rc=${PIPESTATUS[0]}
if [ "$rc" != 0 ]; then
  echo "FAIL: the fuzzer found a crash (exit $rc); inputs in $WORK/artifacts"
  ls -la "$WORK/artifacts"
  exit 1
fi
echo "PASS: no crash (seed 1, ${FUZZ_RUNS:-300000} runs at most, ${SECONDS_} s at most)"
