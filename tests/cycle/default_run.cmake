# The full default run of `varflow six-step` (nightly, about 7 minutes on 2 cores), checked against the
# outcome design/cycle.md documents: every step passes, step 5's predictor (trained on the emulator's
# pairs and 4D-Var labels) passes posterior agreement, adjoint calibration and SBC, and the command
# exits 0.
# Usage: cmake -DVARFLOW=<varflow> -DOUT=<dir> [-DSEED=<seed>] -P default_run.cmake
include(${CMAKE_CURRENT_LIST_DIR}/../cmake/expect.cmake)
file(REMOVE_RECURSE ${OUT})
set(seed_args)
if(DEFINED SEED)
  set(seed_args --seed ${SEED})
endif()
expect(0 "steps computed by this run: 5 of 5" ${VARFLOW} six-step ${seed_args} --out ${OUT})
file(READ ${OUT}/manifest.json manifest)
foreach(i RANGE 0 4)
  string(JSON status GET "${manifest}" steps ${i} status)
  if(NOT status STREQUAL "passed" AND NOT status STREQUAL "ran")
    string(JSON gate GET "${manifest}" steps ${i} gate)
    message(FATAL_ERROR "step ${i}+1: ${status}: ${gate}")
  endif()
endforeach()
string(JSON gate5 GET "${manifest}" steps 4 gate)
foreach(fragment "agreement pass" "adjoint pass" "SBC pass")
  string(FIND "${gate5}" "${fragment}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "step 5's gate line lacks '${fragment}' (design/cycle.md documents it): ${gate5}")
  endif()
endforeach()
# The same run again computes nothing.
expect(0 "steps computed by this run: 0 of 5" ${VARFLOW} six-step ${seed_args} --out ${OUT})
message(STATUS "default run: every step passed; step 5: ${gate5}")
