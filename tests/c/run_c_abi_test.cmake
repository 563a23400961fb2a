# Run by ctest: trains a small linear-gaussian model, then a C ABI test program (C or Fortran) on it.
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
execute_process(COMMAND ${VARFLOW} train --problem linear-gaussian --head gaussian --pairs 3000 --epochs 5 --seed 3
                --quiet --out ${WORK_DIR}/lg.nc RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "varflow train: exit ${rc}\n${out}\n${err}")
endif()
execute_process(COMMAND ${TEST_PROGRAM} ${WORK_DIR}/lg.nc ${WORK_DIR}/report RESULT_VARIABLE rc OUTPUT_VARIABLE out
                ERROR_VARIABLE err)
message("${out}${err}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${TEST_PROGRAM} failed (exit ${rc})")
endif()
# The C program's gate run wrote its report (the Fortran program passes no directory).
if(EXISTS ${WORK_DIR}/report/report.json OR NOT TEST_PROGRAM MATCHES "c_abi_test")
  message(STATUS "report: ${WORK_DIR}/report")
else()
  message(FATAL_ERROR "${TEST_PROGRAM} wrote no ${WORK_DIR}/report/report.json")
endif()
