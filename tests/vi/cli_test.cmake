# End-to-end test of `varflow vi` (run by ctest with VARFLOW and WORK_DIR): a short fit on the default
# Lorenz-96 window writes its samples file; bad options exit 2 naming the option and value.
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
