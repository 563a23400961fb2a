# Nightly: `varflow train --problem linear-gaussian --head H` with the head's defaults, then
# `varflow validate` with its defaults, must pass all three gates (exit 0) for every head and every
# seed given (design/amortized.md, "Derivative-informed training" and "... score head").
# Usage: cmake -DVARFLOW=<varflow> -DOUT=<dir> -DHEADS=gaussian,flow,score -DSEEDS=1,2,3 -P default_gates_run.cmake
include(${CMAKE_CURRENT_LIST_DIR}/../cmake/expect.cmake)
file(REMOVE_RECURSE ${OUT})
file(MAKE_DIRECTORY ${OUT})
string(REPLACE "," ";" heads "${HEADS}")
string(REPLACE "," ";" seeds "${SEEDS}")
foreach(head IN LISTS heads)
  foreach(seed IN LISTS seeds)
    set(model ${OUT}/${head}_${seed}.nc)
    expect(0 "wrote" ${VARFLOW} train --problem linear-gaussian --head ${head} --seed ${seed} --out ${model} --quiet)
    expect(0 "all gates passed" ${VARFLOW} validate --model ${model} --out ${OUT}/${head}_${seed}_report)
  endforeach()
endforeach()
