# Kernel micro-benchmarks (Google Benchmark).
