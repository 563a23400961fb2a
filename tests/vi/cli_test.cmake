# End-to-end test of `varflow vi` (run by ctest with VARFLOW and WORK_DIR): a short fit on the default
# Lorenz-96 window writes its samples file; `vi condition` conditions a flow prior trained on those
# samples on two observed values; bad options exit 2 naming the option and value.
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})

include(${CMAKE_CURRENT_LIST_DIR}/../cmake/expect.cmake)

expect(0 "IS effective sample fraction" ${VARFLOW} vi --epochs 1 --steps-per-epoch 5 --layers 1 --hidden 8 --samples 50
       --threads 1 --quiet --seed 3 --out ${WORK_DIR}/vi.nc)
if(NOT EXISTS ${WORK_DIR}/vi.nc)
  message(FATAL_ERROR "missing ${WORK_DIR}/vi.nc")
endif()
expect(2 "--flow = 'nvp' is not one of: maf, iaf" ${VARFLOW} vi --flow nvp --out ${WORK_DIR}/bad.nc)
expect(2 "--estimator = 'score' is not one of: reparameterised, stl" ${VARFLOW} vi --estimator score
       --out ${WORK_DIR}/bad.nc)
expect(0 "sticking-the-landing" ${VARFLOW} vi --help)
expect(2 "--out is required" ${VARFLOW} vi --epochs 1)

set(condition ${VARFLOW} vi condition --prior-samples ${WORK_DIR}/vi.nc --sigma 0.5 --prior-layers 1 --prior-epochs 1
    --layers 1 --hidden 8 --epochs 1 --steps-per-epoch 5 --draws 16 --stages 2 --samples 50 --reference-draws 1000
    --threads 1 --quiet --seed 2)
expect(0 "max |mean - reference| / reference sd" ${condition} --observe 0,5 --values 1.0,2.0 --out ${WORK_DIR}/cond.nc)
if(NOT EXISTS ${WORK_DIR}/cond.nc)
  message(FATAL_ERROR "missing ${WORK_DIR}/cond.nc")
endif()
expect(2 "--values has 1 values for 2 indices of --observe" ${condition} --observe 0,5 --values 1.0
       --out ${WORK_DIR}/bad.nc)
expect(2 "--values: value = nan is not finite" ${condition} --observe 0 --values nan --out ${WORK_DIR}/bad.nc)
expect(2 "--observe: index = 40 is outside [0, 40)" ${condition} --observe 40 --values 1.0 --out ${WORK_DIR}/bad.nc)
expect(2 "--estimator = 'em' is not one of: reparameterised, stl, forward-kl" ${condition} --estimator em --observe 0
       --values 1.0 --out ${WORK_DIR}/bad.nc)
expect(2 "--variable = 'states' is not a variable of --prior-samples" ${condition} --variable states --observe 0
       --values 1.0 --out ${WORK_DIR}/bad.nc)
expect(2 "--sigma-start = 0.1 is below --sigma = 0.5" ${condition} --sigma-start 0.1 --observe 0 --values 1.0
       --out ${WORK_DIR}/bad.nc)
if(EXISTS ${WORK_DIR}/bad.nc)
  message(FATAL_ERROR "a failed run left ${WORK_DIR}/bad.nc")
endif()
expect(0 "Composed flows (Whang, Lindgren & Dimakis 2021)" ${VARFLOW} vi condition --help)
