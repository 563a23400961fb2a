# The full default run of `varflow six-step` (nightly, a few minutes on 2 cores), checked against the
# outcome design/cycle.md documents: steps 1-4 pass; step 5's predictor passes posterior agreement
# and SBC and is refused by adjoint calibration (Jacobian probing), so the command exits 1.
# Usage: cmake -DVARFLOW=<varflow> -DOUT=<dir> -P default_run.cmake
include(${CMAKE_CURRENT_LIST_DIR}/../cmake/expect.cmake)
file(REMOVE_RECURSE ${OUT})
expect(1 "steps computed by this run: 5 of 5" ${VARFLOW} six-step --out ${OUT})
file(READ ${OUT}/manifest.json manifest)
foreach(i RANGE 0 3)
  string(JSON status GET "${manifest}" steps ${i} status)
  if(NOT status STREQUAL "passed" AND NOT status STREQUAL "ran")
    string(JSON gate GET "${manifest}" steps ${i} gate)
    message(FATAL_ERROR "step ${i}+1: ${status}: ${gate}")
  endif()
endforeach()
string(JSON gate5 GET "${manifest}" steps 4 gate)
foreach(fragment "agreement pass" "SBC pass" "adjoint FAIL")
  string(FIND "${gate5}" "${fragment}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "step 5's gate line lacks '${fragment}' (design/cycle.md documents it): ${gate5}")
  endif()
endforeach()
# The same run again computes nothing.
expect(1 "steps computed by this run: 0 of 5" ${VARFLOW} six-step --out ${OUT})
message(STATUS "default run: steps 1-4 passed; step 5: ${gate5}")
