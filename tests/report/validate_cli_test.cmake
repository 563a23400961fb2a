# End-to-end test of `varflow validate` (run by ctest with VARFLOW and WORK_DIR): a correctly trained
# linear-Gaussian model passes every gate and exits 0, the report files are written and report.json
# parses with the gate results; bad input exits 2 naming the option.
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})

include(${CMAKE_CURRENT_LIST_DIR}/../cmake/expect.cmake)

set(model ${WORK_DIR}/lg.nc)
# The smoke configuration: linear networks, which contain the exact posterior (validation/).
expect(0 "epoch" ${VARFLOW} train --problem linear-gaussian --head gaussian --config ${CONFIG} --seed 3
       --quiet --out ${model})
set(out ${WORK_DIR}/new/dir)  # created by validate
expect(0 "all gates passed" ${VARFLOW} validate --model ${model} --seed 4 --events 5 --out ${out})
foreach(f report.json report.html)
  if(NOT EXISTS ${out}/${f})
    message(FATAL_ERROR "missing ${out}/${f}")
  endif()
endforeach()
file(READ ${out}/report.json json)
string(JSON passed GET "${json}" passed)
string(JSON problem GET "${json}" problem)
string(JSON seed GET "${json}" seed)
string(JSON bins GET "${json}" gates simulation_based_calibration bins)
# Provenance: the run's settings, their hash, the command line and the creation time.
string(JSON config GET "${json}" config)
string(JSON config_hash GET "${json}" config_hash)
string(JSON command_line GET "${json}" command_line)
string(JSON date_created GET "${json}" date_created)
if(NOT config MATCHES "seed: 4" OR NOT config_hash MATCHES "^[0-9a-f]+$" OR NOT command_line MATCHES "validate --model"
   OR NOT date_created MATCHES "^[0-9-]+T[0-9:]+Z$")
  message(FATAL_ERROR "report.json provenance: config='${config}' config_hash=${config_hash} "
                      "command_line='${command_line}' date_created=${date_created}")
endif()
string(JSON hist_rows LENGTH "${json}" gates simulation_based_calibration histogram)
string(JSON probes LENGTH "${json}" gates adjoint_calibration jacobians 0 probe_errors)
string(JSON epochs LENGTH "${json}" training train_loss)
if(NOT passed STREQUAL "ON" OR NOT problem STREQUAL "linear-gaussian" OR NOT seed EQUAL 4 OR NOT bins EQUAL 20
   OR NOT hist_rows EQUAL 10 OR NOT probes EQUAL 20 OR NOT epochs GREATER 0)
  message(FATAL_ERROR "report.json: passed=${passed} problem=${problem} seed=${seed} bins=${bins} "
                      "histogram rows=${hist_rows} probes=${probes} epochs=${epochs}")
endif()
file(READ ${out}/report.html html)
foreach(fragment "<svg" "SBC rank histograms" "ECDF difference" "Jacobian probes" "Training")
  string(FIND "${html}" "${fragment}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "report.html lacks '${fragment}'")
  endif()
endforeach()
foreach(external "src=\"http" "href=\"http" "<script src" "<link")
  string(FIND "${html}" "${external}" at)
  if(NOT at EQUAL -1)
    message(FATAL_ERROR "report.html is not self-contained: it has '${external}'")
  endif()
endforeach()

# Bad input: exit 2, the message names the option and the value.
expect(2 "--model" ${VARFLOW} validate --model ${WORK_DIR}/missing.nc --out ${WORK_DIR}/r)
expect(2 "--sbc-simulations" ${VARFLOW} validate --model ${model} --sbc-simulations 10 --out ${WORK_DIR}/r)
file(WRITE ${WORK_DIR}/not_a_model.nc "plain text")
expect(2 "not_a_model.nc" ${VARFLOW} validate --model ${WORK_DIR}/not_a_model.nc --out ${WORK_DIR}/r)
file(WRITE ${WORK_DIR}/a_file "x")
expect(2 "a_file" ${VARFLOW} validate --model ${model} --events 1 --out ${WORK_DIR}/a_file)

# A Lorenz-96 model records its problem: validate needs no config, and a config that contradicts it
# is refused naming the key (a tiny model; the gates' verdict does not matter here).
file(WRITE ${WORK_DIR}/l96.yaml "model: {n: 8}\ncycling: {window_steps: 4}\n"
     "observations: {every_steps: 2, stride: 1, missing_fraction: 0, error_variance: 0.25}\n"
     "truth: {spin_up_steps: 100}\nbackground: {prior: gaussian}\nencoder: {type: local, channels: 4, conv_layers: 1, kernel: 3}\n"
     "gaussian: {covariance: diagonal}\n")
expect(0 "lorenz96: n = 8" ${VARFLOW} train --problem lorenz96 --head gaussian --pairs 400 --epochs 1
       --config ${WORK_DIR}/l96.yaml --out ${WORK_DIR}/l96.nc)
execute_process(COMMAND ${VARFLOW} validate --model ${WORK_DIR}/l96.nc --events 3 --sbc-simulations 200
                --out ${WORK_DIR}/l96_report RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT (rc EQUAL 0 OR rc EQUAL 1) OR NOT EXISTS ${WORK_DIR}/l96_report/report.json)
  message(FATAL_ERROR "validate without --config: exit ${rc}\n${out}\n${err}")
endif()
file(READ ${WORK_DIR}/l96_report/report.json json)
string(JSON described GET "${json}" problem_description)
string(FIND "${described}" "noise 0.5" at)
if(at EQUAL -1)
  message(FATAL_ERROR "validate did not use the model's recorded problem: ${described}")
endif()
file(WRITE ${WORK_DIR}/l96_other.yaml "model: {n: 8}\nobservations: {error_variance: 1}\n")
expect(2 "observations.error_variance = 1 contradicts the model file" ${VARFLOW} validate --model ${WORK_DIR}/l96.nc
       --config ${WORK_DIR}/l96_other.yaml --events 3 --out ${WORK_DIR}/l96_report2)
