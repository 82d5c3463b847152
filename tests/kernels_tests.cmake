# Kernel tests: one executable, also shipped to the GPU machine.
add_executable(rapidnii_kernel_tests
  test_kernels.cpp
  test_reorient.cpp
  test_deface.cpp
  head_phantom.cpp
)
target_link_libraries(rapidnii_kernel_tests PRIVATE rapidnii_kernels GTest::gtest_main)
# The nibabel oracle of the reorientation test (Debian's python, skipped when
# nibabel is missing).
target_compile_definitions(rapidnii_kernel_tests PRIVATE
  RAPIDNII_PYTHON="/usr/bin/python3")
gtest_discover_tests(rapidnii_kernel_tests DISCOVERY_TIMEOUT 60)
