# Your own data without C++ (run by ctest with VARFLOW, PYTHON and WORK_DIR):
#  - `train --problem window` on a registered model other than Lorenz-96 (Lorenz-63), then
#    `validate --model` with no config: the model file's stored definition rebuilds the problem and
#    its 4D-Var oracle;
#  - `train --pairs FILE.nc` on pairs written by another program (python netCDF4), checked against the
#    problem's shape, whose posterior mean is right; then `validate --model` on it.
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
include(${CMAKE_CURRENT_LIST_DIR}/../cmake/expect.cmake)

# validate exits 0 (promoted) or 1 (refused by a gate): both mean it ran the gates with the stored
# problem and oracle and wrote its report; 2 would be a usage error.
function(expect_validated model out fragment)
  execute_process(COMMAND ${VARFLOW} validate --model ${model} --events 4 --sbc-simulations 200 --out ${out}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE o ERROR_VARIABLE e)
  if(NOT (rc EQUAL 0 OR rc EQUAL 1) OR NOT EXISTS ${out}/report.json)
    message(FATAL_ERROR "validate --model ${model}: exit ${rc}, report ${out}/report.json\n${o}\n${e}")
  endif()
  file(READ ${out}/report.json report)
  string(FIND "${report}" "${fragment}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "${out}/report.json lacks '${fragment}'")
  endif()
  message(STATUS "ok (${rc}): validate --model ${model}")
endfunction()

file(WRITE ${WORK_DIR}/short.yaml "training: {schedule: cosine, epochs: 3}\n")
expect(0 "window: model lorenz63 (sigma = 10" ${VARFLOW} train --problem window --head gaussian --pairs 600
       --config ${WORK_DIR}/short.yaml --out ${WORK_DIR}/l63.nc)
expect_validated(${WORK_DIR}/l63.nc ${WORK_DIR}/l63_report "incremental 4D-Var over the 16-step window")
# A config that contradicts the stored model is refused, naming the key.
file(WRITE ${WORK_DIR}/rho.yaml "model: {name: lorenz63, rho: 30}\n")
expect(2 "model.rho = 30 contradicts the model file, which was trained with model.rho = 28" ${VARFLOW} validate
       --model ${WORK_DIR}/l63.nc --config ${WORK_DIR}/rho.yaml --out ${WORK_DIR}/r2)
# The lorenz96 problem keeps to its model.
expect(2 "use the problem 'window'" ${VARFLOW} train --problem lorenz96 --head gaussian --config ${WORK_DIR}/rho.yaml
       --out ${WORK_DIR}/x.nc)

# Pairs from another program.
execute_process(COMMAND ${PYTHON} ${CMAKE_CURRENT_LIST_DIR}/own_pairs.py write ${WORK_DIR}/pairs.nc 8000 5
                RESULT_VARIABLE rc OUTPUT_VARIABLE o)
if(rc EQUAL 77)
  message(STATUS "python3-netCDF4 is missing: ${o}")
  return()
endif()
file(WRITE ${WORK_DIR}/lg.yaml "training: {schedule: cosine, epochs: 30}\n")
expect(0 "read 8000 pairs from ${WORK_DIR}/pairs.nc (checked against problem linear-gaussian)" ${VARFLOW} train
       --problem linear-gaussian --head gaussian --pairs ${WORK_DIR}/pairs.nc --config ${WORK_DIR}/lg.yaml
       --out ${WORK_DIR}/own.nc)
set(y "0.4,-0.4,0.2,-0.2,0,0.6,-0.6,0.1,-0.1,0.3")
expect(0 "wrote" ${VARFLOW} sample --model ${WORK_DIR}/own.nc --obs ${y} --n 4000 --out ${WORK_DIR}/own_samples.nc)
# The exact posterior mean is y/2 with sd 0.224: the trained mean within 0.08 (0.36 sd) everywhere.
expect(0 "max |sample mean - y/2|" ${PYTHON} ${CMAKE_CURRENT_LIST_DIR}/own_pairs.py check ${WORK_DIR}/own_samples.nc ${y} 0.08)
expect_validated(${WORK_DIR}/own.nc ${WORK_DIR}/own_report "\"problem\": \"linear-gaussian\"")
# The model file's provenance names the pairs file and its checksum.
execute_process(COMMAND ncdump -h ${WORK_DIR}/own.nc OUTPUT_VARIABLE header)
string(FIND "${header}" "--pairs ${WORK_DIR}/pairs.nc (checksum " at)
if(at EQUAL -1)
  message(FATAL_ERROR "the model file does not record its pairs file:\n${header}")
endif()
# Wrong shapes and missing files are usage errors that name them.
execute_process(COMMAND ${PYTHON} ${CMAKE_CURRENT_LIST_DIR}/own_pairs.py wrong ${WORK_DIR}/wrong.nc)
expect(2 "--pairs ${WORK_DIR}/wrong.nc: state = 3, but problem linear-gaussian has 10 state variables" ${VARFLOW}
       train --problem linear-gaussian --head gaussian --pairs ${WORK_DIR}/wrong.nc --out ${WORK_DIR}/x.nc)
expect(2 "--pairs = '${WORK_DIR}/none.nc' is neither a count nor an existing pairs file" ${VARFLOW} train
       --problem linear-gaussian --head gaussian --pairs ${WORK_DIR}/none.nc --out ${WORK_DIR}/x.nc)
if(EXISTS ${WORK_DIR}/x.nc)
  message(FATAL_ERROR "a refused train wrote ${WORK_DIR}/x.nc")
endif()
