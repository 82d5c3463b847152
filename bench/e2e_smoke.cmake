# End-to-end benchmark smoke test (bench/e2e/run_e2e.py --smoke): a ~10 MB
# synthetic archive converted by rapidnii and by dcm2niix -z y; passes when
# both complete and every dcm2niix volume has a rapidnii volume with the same
# voxels and affine. Seconds, not minutes; no timing is asserted.
# Skipped (exit 77) when dcm2niix is not installed.
# Include from tests/CMakeLists.txt:
#   include(${CMAKE_SOURCE_DIR}/bench/e2e_smoke.cmake)
add_test(NAME bench_e2e_smoke
  COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/bench/e2e/run_e2e.py --rapidnii $<TARGET_FILE:rapidnii>
          --smoke --work ${CMAKE_CURRENT_BINARY_DIR}/bench_smoke)
set_tests_properties(bench_e2e_smoke PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 180)

# Index-scale smoke test (bench/e2e/index_scale.py --smoke): 3000 small files
# in 6 series; passes when rapidnii indexes every file and writes one volume
# of the right shape per series (and dcm2niix, when installed, as many).
# Peak memory and time are printed, not asserted.
add_test(NAME bench_index_scale_smoke
  COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/bench/e2e/index_scale.py --rapidnii $<TARGET_FILE:rapidnii>
          --smoke --work ${CMAKE_CURRENT_BINARY_DIR}/bench_index_smoke)
set_tests_properties(bench_index_scale_smoke PROPERTIES TIMEOUT 180)
