# io/ micro-benchmarks (Google Benchmark): deflate, header index, decode.
