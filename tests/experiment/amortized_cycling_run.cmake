# An amortized analysis of validation/amortized-cycling (nightly): `varflow train` with TRAIN,
# `varflow validate` of the model, and `varflow assimilate` with CYCLE beside the same experiment with
# 4D-Var alone and its posterior (same seed: same truth and observations). Holds what
# design/solvers.md reports for that case:
#   - GATES = all: every gate passes (exit 0); GATES = mean_sbc: the mean's agreement and SBC pass
#     (train.yaml's 8-step windows, where adjoint calibration refuses every model measured);
#   - in the cycle the model replaces 4D-Var in at least MIN_USED of CYCLES cycles, with a filter RMSE
#     within RMSE_PERCENT of 4D-Var's and chi2/m in [0.8, 1.25];
#   - SPREAD_PERCENT (optional): its spread within that many percent of the 4D-Var posterior's.
# Usage: cmake -DVARFLOW=<varflow> -DSOURCE=<source dir> -DOUT=<dir> -DTRAIN=<yaml> -DCYCLE=<yaml>
#        -DMODEL=<the model file CYCLE names> -DCYCLES=<n> -DMIN_USED=<n> -DGATES=all|mean_sbc
#        -DRMSE_PERCENT=<p> [-DSPREAD_PERCENT=<p>] -P amortized_cycling_run.cmake
include(${CMAKE_CURRENT_LIST_DIR}/../cmake/expect.cmake)
file(REMOVE_RECURSE ${OUT})
file(MAKE_DIRECTORY ${OUT})
set(dir ${SOURCE}/validation/amortized-cycling)
expect(0 "wrote" ${VARFLOW} train --problem lorenz96 --head gaussian --config ${dir}/${TRAIN} --out ${OUT}/${MODEL} --quiet)

# The report where the README's commands write it (<model>-report/), which a CYCLE with
# amortized.validation names.
string(REGEX REPLACE "\\.nc$" "-report" report_dir "${MODEL}")
execute_process(COMMAND ${VARFLOW} validate --model ${OUT}/${MODEL} --out ${OUT}/${report_dir} RESULT_VARIABLE rc
                OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT (rc EQUAL 0 OR rc EQUAL 1))
  message(FATAL_ERROR "validate: exit status ${rc}\n${out}\n${err}")
endif()
file(READ ${OUT}/${report_dir}/report.json report)
string(JSON mean_passed GET "${report}" gates posterior_agreement mean_passed)
string(JSON sbc_passed GET "${report}" gates simulation_based_calibration passed)
string(JSON max_d GET "${report}" gates posterior_agreement max_abs_difference)
message(STATUS "validate: exit ${rc}, agreement max |d| ${max_d} (mean passed: ${mean_passed}), SBC passed: ${sbc_passed}")
if(GATES STREQUAL "all")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "the cycled model ${MODEL} did not pass every gate:\n${out}\n${err}")
  endif()
elseif(NOT mean_passed OR NOT sbc_passed)
  message(FATAL_ERROR "the cycled model's mean agreement or SBC failed:\n${out}\n${err}")
endif()

# The cycle, run where the model is (amortized.model is relative to the working directory).
function(match_number output pattern result)
  string(REGEX MATCH "${pattern} ([0-9.]+)" m "${output}")
  set(${result} ${CMAKE_MATCH_1} PARENT_SCOPE)
endfunction()
execute_process(COMMAND ${VARFLOW} assimilate --config ${dir}/${CYCLE} --out ${OUT}/amortized.nc --quiet
                WORKING_DIRECTORY ${OUT} RESULT_VARIABLE rc OUTPUT_VARIABLE amortized ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "assimilate with the amortized analysis: exit status ${rc}\n${amortized}\n${err}")
endif()
# The same experiment with 4D-Var alone, with its posterior (for the spread).
file(READ ${dir}/${CYCLE} config)
string(REGEX REPLACE "amortized:.*" "" config "${config}")
string(REGEX REPLACE "\n *posterior: none" "" config "${config}")
file(WRITE ${OUT}/var.yaml "${config}")
execute_process(COMMAND ${VARFLOW} assimilate --config ${OUT}/var.yaml --out ${OUT}/var.nc --quiet
                RESULT_VARIABLE rc OUTPUT_VARIABLE var ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "assimilate with 4D-Var: exit status ${rc}\n${var}\n${err}")
endif()
match_number("${amortized}" "filter RMSE" a)
match_number("${var}" "filter RMSE" v)
match_number("${amortized}" "spread" a_spread)
match_number("${var}" "spread" v_spread)
string(REGEX MATCH "amortized analysis \\(${MODEL}\\): ([0-9]+) of ${CYCLES} cycles" m "${amortized}")
set(used ${CMAKE_MATCH_1})
match_number("${amortized}" "chi2/m = 2 J\\(analysis\\)/m" chi2)
message(STATUS "amortized cycling: ${used} of ${CYCLES} cycles amortized, filter RMSE ${a} (4D-Var ${v}), "
               "spread ${a_spread} (4D-Var ${v_spread}), chi2/m ${chi2}")
if(GATES STREQUAL "all" AND NOT amortized MATCHES "every gate passed \\(${report_dir}/report.json\\)")
  message(FATAL_ERROR "the cycle did not check the model's report (amortized.validation):\n${amortized}")
endif()
if(used STREQUAL "" OR used LESS MIN_USED)
  message(FATAL_ERROR "'${used}' of ${CYCLES} cycles used the amortized analysis (at least ${MIN_USED}):\n${amortized}")
endif()
# Ratios in thousandths (math() is integer only): values of the form 0.ddd.
function(milli value result)
  if(NOT value MATCHES "^0\\.[0-9][0-9][0-9]")
    message(FATAL_ERROR "'${value}' is not of the form 0.ddd")
  endif()
  string(REGEX REPLACE "^0\\.([0-9][0-9][0-9]).*" "\\1" m "${value}")
  math(EXPR m "1${m} - 1000")  # no leading-zero octal surprises
  set(${result} ${m} PARENT_SCOPE)
endfunction()
milli(${a} a_milli)
milli(${v} v_milli)
math(EXPR limit "${v_milli} * (100 + ${RMSE_PERCENT}) / 100")
if(a_milli GREATER limit)
  message(FATAL_ERROR "amortized filter RMSE ${a} is not within ${RMSE_PERCENT}% of 4D-Var's ${v}")
endif()
if(DEFINED SPREAD_PERCENT)
  milli(${a_spread} as_milli)
  milli(${v_spread} vs_milli)
  math(EXPR low "${vs_milli} * (100 - ${SPREAD_PERCENT}) / 100")
  math(EXPR high "${vs_milli} * (100 + ${SPREAD_PERCENT}) / 100")
  if(as_milli LESS low OR as_milli GREATER high)
    message(FATAL_ERROR "amortized spread ${a_spread} is not within ${SPREAD_PERCENT}% of 4D-Var's ${v_spread}")
  endif()
endif()
if(chi2 LESS 0.8 OR chi2 GREATER 1.25)
  message(FATAL_ERROR "amortized chi2/m ${chi2} outside [0.8, 1.25]")
endif()
