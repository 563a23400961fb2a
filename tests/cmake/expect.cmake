# expect(<exit status> <text the output must contain> command...): runs the command and stops the
# script with FATAL_ERROR when its exit status or output differs. Shared by the CLI test scripts.
function(expect status fragment)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL status)
    message(FATAL_ERROR "exit status ${rc}, expected ${status}: ${ARGN}\n${out}\n${err}")
  endif()
  string(FIND "${out}${err}" "${fragment}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "output lacks '${fragment}': ${ARGN}\n${out}\n${err}")
  endif()
  message(STATUS "ok (${rc}): ${ARGN}")
endfunction()
