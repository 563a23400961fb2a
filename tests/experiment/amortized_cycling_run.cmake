# The amortized analysis of validation/amortized-cycling (nightly, about 12 minutes on 2 cores):
# `varflow train` with train.yaml, `varflow validate` of the model, and `varflow assimilate` with
# cycle.yaml beside the same experiment with 4D-Var alone (same seed: same truth and observations).
# Holds what design/solvers.md reports: the model's mean agrees with the 4D-Var oracle and SBC
# passes; in the cycle it replaces 4D-Var in all cycles but the first (whose layout differs), with a
# filter RMSE within 20% of 4D-Var's and chi2/m near 1.
# Usage: cmake -DVARFLOW=<varflow> -DSOURCE=<source dir> -DOUT=<dir> -P amortized_cycling_run.cmake
include(${CMAKE_CURRENT_LIST_DIR}/../cmake/expect.cmake)
file(REMOVE_RECURSE ${OUT})
file(MAKE_DIRECTORY ${OUT})
set(dir ${SOURCE}/validation/amortized-cycling)
expect(0 "wrote" ${VARFLOW} train --problem lorenz96 --head gaussian --config ${dir}/train.yaml --out ${OUT}/cycled.nc --quiet)

execute_process(COMMAND ${VARFLOW} validate --model ${OUT}/cycled.nc --out ${OUT}/report RESULT_VARIABLE rc
                OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT (rc EQUAL 0 OR rc EQUAL 1))
  message(FATAL_ERROR "validate: exit status ${rc}\n${out}\n${err}")
endif()
file(READ ${OUT}/report/report.json report)
string(JSON mean_passed GET "${report}" gates posterior_agreement mean_passed)
string(JSON sbc_passed GET "${report}" gates simulation_based_calibration passed)
string(JSON max_d GET "${report}" gates posterior_agreement max_abs_difference)
message(STATUS "validate: exit ${rc}, agreement max |d| ${max_d} (mean passed: ${mean_passed}), SBC passed: ${sbc_passed}")
if(NOT mean_passed OR NOT sbc_passed)
  message(FATAL_ERROR "the cycled model's mean agreement or SBC failed:\n${out}\n${err}")
endif()

# The cycle, run where cycled.nc is (amortized.model is relative to the working directory).
function(filter_rmse output result)
  string(REGEX MATCH "filter RMSE ([0-9.]+)" m "${output}")
  set(${result} ${CMAKE_MATCH_1} PARENT_SCOPE)
endfunction()
execute_process(COMMAND ${VARFLOW} assimilate --config ${dir}/cycle.yaml --out ${OUT}/amortized.nc --quiet
                WORKING_DIRECTORY ${OUT} RESULT_VARIABLE rc OUTPUT_VARIABLE amortized ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "assimilate with the amortized analysis: exit status ${rc}\n${amortized}\n${err}")
endif()
file(READ ${dir}/cycle.yaml config)
string(REGEX REPLACE "amortized:.*" "" config "${config}")
file(WRITE ${OUT}/var.yaml "${config}")
execute_process(COMMAND ${VARFLOW} assimilate --config ${OUT}/var.yaml --out ${OUT}/var.nc --quiet
                RESULT_VARIABLE rc OUTPUT_VARIABLE var ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "assimilate with 4D-Var: exit status ${rc}\n${var}\n${err}")
endif()
filter_rmse("${amortized}" a)
filter_rmse("${var}" v)
string(REGEX MATCH "amortized analysis \\(cycled.nc\\): ([0-9]+) of 100 cycles" m "${amortized}")
set(used ${CMAKE_MATCH_1})
string(REGEX MATCH "chi2/m = 2 J\\(analysis\\)/m ([0-9.]+)" m "${amortized}")
set(chi2 ${CMAKE_MATCH_1})
message(STATUS "amortized cycling: ${used} of 100 cycles amortized, filter RMSE ${a} (4D-Var ${v}), chi2/m ${chi2}")
if(used LESS 95)
  message(FATAL_ERROR "only ${used} of 100 cycles used the amortized analysis:\n${amortized}")
endif()
# Within 20% of 4D-Var's filter RMSE (in thousandths: math() is integer only), chi2/m in [0.8, 1.25].
string(REGEX REPLACE "^0\\.([0-9][0-9][0-9]).*" "\\1" a_milli "${a}")
string(REGEX REPLACE "^0\\.([0-9][0-9][0-9]).*" "\\1" v_milli "${v}")
math(EXPR limit "${v_milli} * 12 / 10")
if(NOT a MATCHES "^0\\." OR a_milli GREATER limit)
  message(FATAL_ERROR "amortized filter RMSE ${a} is not within 20% of 4D-Var's ${v}")
endif()
if(chi2 LESS 0.8 OR chi2 GREATER 1.25)
  message(FATAL_ERROR "amortized chi2/m ${chi2} outside [0.8, 1.25]")
endif()
