# Kernel tests: one executable, also shipped to the GPU machine.
add_executable(rapidnii_kernel_tests
  test_kernels.cpp
)
target_link_libraries(rapidnii_kernel_tests PRIVATE rapidnii_kernels GTest::gtest_main)
gtest_discover_tests(rapidnii_kernel_tests DISCOVERY_TIMEOUT 60)
