# Installs the current build of varflow into a temporary prefix, then configures, builds and runs the
# downstream project (a program and a conformance test of its own plug-in) against it.
# Invoked by ctest (see tests/CMakeLists.txt) with SOURCE_DIR, BUILD_DIR, WORK_DIR and GENERATOR.
file(REMOVE_RECURSE ${WORK_DIR})
set(prefix ${WORK_DIR}/prefix)
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "command failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  message(STATUS "${out}")
endfunction()
run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})
run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/downstream -B ${WORK_DIR}/downstream -G ${GENERATOR}
    -DCMAKE_PREFIX_PATH=${prefix})
run(${CMAKE_COMMAND} --build ${WORK_DIR}/downstream)
run(${WORK_DIR}/downstream/downstream)
run(${WORK_DIR}/downstream/downstream_conformance)
