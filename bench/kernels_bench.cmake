# Kernel micro-benchmarks (Google Benchmark): rescale, reorientation and
# defacing on the CPU executor, and on CUDA when a GPU is found at run time.
# Volumes 256^3 and 512x512x300; the defacing input is the head phantom of
# tests/head_phantom.cpp.
add_executable(rapidnii_bench_kernels
  bench_kernels.cpp
  ${CMAKE_SOURCE_DIR}/tests/head_phantom.cpp
)
target_link_libraries(rapidnii_bench_kernels PRIVATE rapidnii_kernels benchmark::benchmark)

# Before/after volumes of a defaced head phantom for scripts/render_deface.py
# (docs/deface_before_after.png).
add_executable(rapidnii_deface_demo
  deface_demo.cpp
  ${CMAKE_SOURCE_DIR}/tests/head_phantom.cpp
)
target_link_libraries(rapidnii_deface_demo PRIVATE rapidnii_kernels)
