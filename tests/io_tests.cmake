# io/ tests that need their own executable (gzip and friends, native pixel reads).
# Parallel single-member gzip, the compression policy, and the readers that
# must open the output: zlib, gzip -t, Python's gzip and, when
# `npm ci --prefix tests/js` has been run, fflate / nifti-reader-js (node);
# each external reader reports the test skipped when it is missing.
add_executable(rapidnii_io_tests
  test_gzip.cpp
  test_dicom_pixels.cpp
  test_ge_protocol.cpp
  test_siemens_protocol.cpp
)
target_link_libraries(rapidnii_io_tests PRIVATE rapidnii_io PkgConfig::ZLIB_PC GTest::gtest_main)
# GCC 12 reports a false -Wrestrict inside std::string operator+.
target_compile_options(rapidnii_io_tests PRIVATE -Wno-restrict)
target_compile_definitions(rapidnii_io_tests PRIVATE RAPIDNII_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
# RAPIDNII_TEST_DATA: the validation data for the indexer comparison (the
# test reports itself skipped without it).
gtest_discover_tests(rapidnii_io_tests DISCOVERY_TIMEOUT 60
                     PROPERTIES TIMEOUT 600 ENVIRONMENT "RAPIDNII_TEST_DATA=${RAPIDNII_TEST_DATA}")
