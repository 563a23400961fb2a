# End-to-end test of `varflow train` and `varflow sample` (run by ctest with VARFLOW and WORK_DIR).
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})

include(${CMAKE_CURRENT_LIST_DIR}/../cmake/expect.cmake)

set(model ${WORK_DIR}/lg.nc)
expect(0 "epoch    3/3" ${VARFLOW} train --problem linear-gaussian --head gaussian --pairs 3000 --epochs 3 --seed 7
       --out ${model})
expect(0 "seed 7, 1 threads" ${VARFLOW} train --problem two-moons --head flow --pairs 500 --epochs 1 --seed 7 --threads 1
       --out ${WORK_DIR}/tm.nc)
# --quiet: the first and last lines, no progress (the labels' progress lines included).
execute_process(COMMAND ${VARFLOW} train --problem linear-gaussian --head gaussian --pairs 500 --epochs 2 --seed 7
                --quiet --out ${WORK_DIR}/quiet.nc RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0 OR out MATCHES "labelled [0-9]+/" OR out MATCHES "epoch +1/" OR NOT out MATCHES "wrote")
  message(FATAL_ERROR "--quiet printed progress or failed (exit ${rc}):\n${out}\n${err}")
endif()
foreach(f ${model} ${model}.loss.csv)
  if(NOT EXISTS ${f})
    message(FATAL_ERROR "missing ${f}")
  endif()
endforeach()
file(STRINGS ${model}.loss.csv lines)
list(LENGTH lines n)
if(NOT n EQUAL 4)
  message(FATAL_ERROR "${model}.loss.csv has ${n} lines, expected a header and 3 epochs")
endif()
# Training ends on the validation loss and says why; the best epoch's weights are kept and logged.
file(WRITE ${WORK_DIR}/plateau.yaml "training: {patience: 2, min_steps: 0, min_improvement: 1000}\n")
expect(0 "training stopped: no improvement for 2 epochs" ${VARFLOW} train --problem linear-gaussian --head gaussian
       --pairs 500 --seed 7 --config ${WORK_DIR}/plateau.yaml --out ${WORK_DIR}/plateau.nc)
expect(0 "restored the weights of epoch 1 " ${VARFLOW} train --problem linear-gaussian --head gaussian
       --pairs 500 --seed 7 --config ${WORK_DIR}/plateau.yaml --out ${WORK_DIR}/plateau.nc)
# linear_gain: oracle: the oracle's gain at the mean observation, then training on the residual; a
# problem without an oracle and a bad value are refused naming the key.
file(WRITE ${WORK_DIR}/gain.yaml "linear_gain: oracle\n")
expect(0 "oracle gain at the mean observation (10 sensitivity solves)" ${VARFLOW} train --problem linear-gaussian
       --head gaussian --pairs 500 --epochs 2 --seed 7 --config ${WORK_DIR}/gain.yaml --out ${WORK_DIR}/gain.nc)
expect(0 "drew 20 samples" ${VARFLOW} sample --model ${WORK_DIR}/gain.nc --obs "0.1,0.2,0.3,0.4,0.5,-0.1,-0.2,-0.3,-0.4,-0.5"
       --n 20 --out ${WORK_DIR}/gain_samples.nc)
expect(2 "two-moons has no oracle for linear_gain = oracle" ${VARFLOW} train --problem two-moons --head flow --pairs 500
       --epochs 1 --config ${WORK_DIR}/gain.yaml --out ${WORK_DIR}/x.nc)
file(WRITE ${WORK_DIR}/bad_gain.yaml "linear_gain: kalman\n")
expect(2 "linear_gain" ${VARFLOW} train --problem linear-gaussian --head gaussian --pairs 500 --epochs 1
       --config ${WORK_DIR}/bad_gain.yaml --out ${WORK_DIR}/x.nc)
# A training that fails (non-finite loss) exits 1 and leaves the good model and its loss curves as
# they were.
file(SHA256 ${model} good_model)
file(SHA256 ${model}.loss.csv good_csv)
file(WRITE ${WORK_DIR}/huge_lr.yaml "training: {learning_rate: 1e6}\n")
expect(1 "was not written" ${VARFLOW} train --problem linear-gaussian --head gaussian --pairs 3000 --epochs 3 --seed 7
       --config ${WORK_DIR}/huge_lr.yaml --out ${model})
file(SHA256 ${model} after_model)
file(SHA256 ${model}.loss.csv after_csv)
if(NOT after_model STREQUAL good_model OR NOT after_csv STREQUAL good_csv)
  message(FATAL_ERROR "a failed training replaced ${model} or its loss curves")
endif()

expect(0 "drew 200 samples" ${VARFLOW} sample --model ${model} --obs "0.1,0.2,0.3,0.4,0.5,-0.1,-0.2,-0.3,-0.4,-0.5"
       --n 200 --seed 3 --out ${WORK_DIR}/s.nc)
if(NOT EXISTS ${WORK_DIR}/s.nc)
  message(FATAL_ERROR "missing ${WORK_DIR}/s.nc")
endif()

# Gridded observations with missing values, read from a file (when ncgen is available to write it).
if(NCGEN)
  file(WRITE ${WORK_DIR}/l96.yaml "model: {n: 8}\ncycling: {window_steps: 4}\nobservations: {every_steps: 2}\ntruth: {spin_up_steps: 100}\n"
       "encoder: {width: 16, context: 8, channels: 4, conv_layers: 1}\ngaussian: {width: 16}\n")
  expect(0 "lorenz96: n = 8" ${VARFLOW} train --problem lorenz96 --head gaussian --pairs 300 --epochs 1
         --config ${WORK_DIR}/l96.yaml --out ${WORK_DIR}/l96.nc)
  # 3 observation times x 8 points; odd points are never observed, one even point is missing.
  file(WRITE ${WORK_DIR}/y.cdl "netcdf y {\ndimensions:\n obs = 24 ;\nvariables:\n double observation(obs) ;\n"
       "data:\n observation = 1, NaN, 2, NaN, NaN, NaN, 3, NaN, 1, NaN, 2, NaN, 4, NaN, 3, NaN, "
       "0, NaN, 1, NaN, 4, NaN, 2, NaN ;\n}\n")
  execute_process(COMMAND ${NCGEN} -4 -o ${WORK_DIR}/y.nc ${WORK_DIR}/y.cdl RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "ncgen failed")
  endif()
  expect(0 "drew 50 samples" ${VARFLOW} sample --model ${WORK_DIR}/l96.nc --obs-file ${WORK_DIR}/y.nc --n 50
         --out ${WORK_DIR}/l96_samples.nc)
  expect(2 "y[1] is missing, but the mlp encoder" ${VARFLOW} sample --model ${model}
         --obs "0.1,,0.3,0.4,0.5,-0.1,-0.2,-0.3,-0.4,-0.5" --out ${WORK_DIR}/x.nc)
endif()

# Bad options: exit status 2 and a message naming the option and the value.
expect(2 "--problem: two-moonz" ${VARFLOW} train --problem two-moonz --head flow --out ${WORK_DIR}/x.nc)
expect(2 "--head: kernel" ${VARFLOW} train --problem two-moons --head kernel --out ${WORK_DIR}/x.nc)
expect(2 "--pairs = 0: a count of pairs must be in [2, 100000000]" ${VARFLOW} train --problem two-moons --head flow --pairs 0 --out ${WORK_DIR}/x.nc)
expect(2 "directory ${WORK_DIR}/nope does not exist" ${VARFLOW} train --problem two-moons --head flow
       --out ${WORK_DIR}/nope/x.nc)
file(WRITE ${WORK_DIR}/bad.yaml "flow:\n  binz: 3\n")
expect(2 "unknown key 'flow.binz'" ${VARFLOW} train --problem two-moons --head flow --config ${WORK_DIR}/bad.yaml
       --out ${WORK_DIR}/x.nc)
expect(2 "--obs: 2 values" ${VARFLOW} sample --model ${model} --obs "1,2" --out ${WORK_DIR}/x.nc)
expect(2 "--obs: value 'abc'" ${VARFLOW} sample --model ${model} --obs "abc" --out ${WORK_DIR}/x.nc)
expect(2 "exactly one of --obs and --obs-file" ${VARFLOW} sample --model ${model} --out ${WORK_DIR}/x.nc)
expect(2 "Unknown file format" ${VARFLOW} sample --model ${model}.loss.csv --obs 1 --out ${WORK_DIR}/x.nc)

# `train --print-default` is a config: nested sections that read back as themselves.
execute_process(COMMAND ${VARFLOW} train --problem lorenz96 --head gaussian --print-default
                OUTPUT_FILE ${WORK_DIR}/printed.yaml RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "train --print-default: exit ${rc}")
endif()
file(READ ${WORK_DIR}/printed.yaml printed)
if(NOT printed MATCHES "\nobservations:\n  every_steps: 4\n")
  message(FATAL_ERROR "train --print-default is not nested by section:\n${printed}")
endif()
execute_process(COMMAND ${VARFLOW} train --problem lorenz96 --head gaussian --config ${WORK_DIR}/printed.yaml
                --print-default OUTPUT_VARIABLE again RESULT_VARIABLE rc)
string(REGEX REPLACE "^[^\n]*\n" "" printed_body "${printed}")
string(REGEX REPLACE "^[^\n]*\n" "" again_body "${again}")
if(NOT rc EQUAL 0 OR NOT again_body STREQUAL printed_body)
  message(FATAL_ERROR "train --print-default does not read back as itself (exit ${rc}):\n${again}")
endif()
