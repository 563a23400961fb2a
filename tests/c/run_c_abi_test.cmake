# Run by ctest: trains a small linear-gaussian model, then a C ABI test program (C or Fortran) on it.
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
execute_process(COMMAND ${VARFLOW} train --problem linear-gaussian --head gaussian --pairs 3000 --epochs 5 --seed 3
                --quiet --out ${WORK_DIR}/lg.nc RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "varflow train: exit ${rc}\n${out}\n${err}")
endif()
execute_process(COMMAND ${TEST_PROGRAM} ${WORK_DIR}/lg.nc RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}${err}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${TEST_PROGRAM} failed (exit ${rc})")
endif()
