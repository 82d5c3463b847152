# io/ micro-benchmarks (Google Benchmark): deflate, header index, decode.

# Deflate per MB per compressor, level and thread count on a generated
# CT-like volume (or RAPIDNII_BENCH_FILE), with zlib -6 as the gzip/pigz
# reference and the cost of the per-volume choice of level.
add_executable(rapidnii_bench_deflate bench_deflate.cpp)
target_link_libraries(rapidnii_bench_deflate PRIVATE rapidnii_io benchmark::benchmark)

# Header index per file, pixel decode per transfer syntax, index memory per file.
add_executable(rapidnii_bench_index bench_index.cpp)
target_link_libraries(rapidnii_bench_index PRIVATE rapidnii_io benchmark::benchmark)
