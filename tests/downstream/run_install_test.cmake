# Installs the current build of varflow into a temporary prefix, then configures, builds and runs the
# downstream project (a program and a conformance test of its own plug-in) against it.
# Invoked by ctest (see tests/CMakeLists.txt) with SOURCE_DIR, BUILD_DIR, WORK_DIR and GENERATOR, and
# CONSUMER_FLAGS: the -fsanitize flags of a sanitized build (empty otherwise), given to every consumer.
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
set(consumer_cmake_flags "")
set(consumer_compile_flags "")
if(CONSUMER_FLAGS)
  set(consumer_cmake_flags "-DCMAKE_CXX_FLAGS=${CONSUMER_FLAGS}" "-DCMAKE_C_FLAGS=${CONSUMER_FLAGS}"
      "-DCMAKE_Fortran_FLAGS=${CONSUMER_FLAGS}" "-DCMAKE_EXE_LINKER_FLAGS=${CONSUMER_FLAGS}")
  separate_arguments(consumer_compile_flags UNIX_COMMAND "${CONSUMER_FLAGS}")
endif()
run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/downstream -B ${WORK_DIR}/downstream -G ${GENERATOR}
    -DCMAKE_PREFIX_PATH=${prefix} ${consumer_cmake_flags})
run(${CMAKE_COMMAND} --build ${WORK_DIR}/downstream)
run(${WORK_DIR}/downstream/downstream)
run(${WORK_DIR}/downstream/downstream_conformance)
run(${WORK_DIR}/downstream/downstream_c)

# The same C program built with pkg-config alone (no CMake), as a Makefile-based code would.
find_program(PKG_CONFIG pkg-config REQUIRED)
find_program(C_COMPILER NAMES cc gcc REQUIRED)
file(GLOB_RECURSE pc_file ${prefix}/*/varflow.pc)
get_filename_component(pc_dir "${pc_file}" DIRECTORY)
set(ENV{PKG_CONFIG_PATH} ${pc_dir})
execute_process(COMMAND ${PKG_CONFIG} --cflags --libs varflow OUTPUT_VARIABLE flags RESULT_VARIABLE rc
                OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT rc EQUAL 0 OR NOT flags MATCHES "-I${prefix}/include")
  message(FATAL_ERROR "pkg-config varflow (in ${pc_dir}): exit ${rc}, flags '${flags}'")
endif()
separate_arguments(flags UNIX_COMMAND "${flags}")
run(${C_COMPILER} -std=c99 ${consumer_compile_flags} -o ${WORK_DIR}/pkgconfig_c ${SOURCE_DIR}/tests/c/c_abi_test.c ${SOURCE_DIR}/tests/c/lorenz96.c
    -I${SOURCE_DIR}/tests/c ${flags} -lm)
run(${WORK_DIR}/pkgconfig_c)

# The Fortran program of tests/fortran against the installed module and libraries, when gfortran is
# there (scripts/setup.sh installs it).
find_program(FORTRAN_COMPILER gfortran)
if(FORTRAN_COMPILER AND EXISTS ${prefix}/include/varflow/fortran/varflow.mod)
  file(GLOB_RECURSE fortran_lib ${prefix}/*/libvarflow_fortran.so)
  get_filename_component(lib_dir "${fortran_lib}" DIRECTORY)
  file(MAKE_DIRECTORY ${WORK_DIR}/fortran)
  run(${FORTRAN_COMPILER} -std=f2008 ${consumer_compile_flags} -J${WORK_DIR}/fortran -I${prefix}/include/varflow/fortran
      -o ${WORK_DIR}/fortran/consumer ${SOURCE_DIR}/tests/fortran/lorenz96_model.f90
      ${SOURCE_DIR}/tests/fortran/fortran_abi_test.f90 -L${lib_dir} -Wl,-rpath,${lib_dir} -lvarflow_fortran -lvarflow)
  # libgfortran hands strndup strings that are not NUL-terminated (valid); a sanitized run's
  # strict_string_checks would report them (tests/fortran/CMakeLists.txt).
  set(ENV{ASAN_OPTIONS} "$ENV{ASAN_OPTIONS}:strict_string_checks=0")
  run(${WORK_DIR}/fortran/consumer)
elseif(FORTRAN_COMPILER)
  message(FATAL_ERROR "gfortran is present but the installed package has no Fortran module")
endif()
