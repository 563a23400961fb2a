#!/usr/bin/env bash
# Builds varflow with AddressSanitizer + UndefinedBehaviorSanitizer (the `asan` preset of
# CMakePresets.json, in SOURCE/build-asan) and runs its default test suite there. Any sanitizer
# report fails the test that triggered it (-fno-sanitize-recover=undefined; ASan aborts).
# Usage: run_sanitized_suite.sh SOURCE_DIR [JOBS] [ctest arguments...]
# e.g.   run_sanitized_suite.sh . 2 -L "io|cli"   (a subset)
set -euo pipefail
source_dir=$(cd "$1" && pwd)
jobs=${2:-2}
shift $(( $# >= 2 ? 2 : 1 ))
cd "$source_dir"
cmake --preset asan >/dev/null
cmake --build build-asan -j "$jobs"
# Leak reports are off: the netCDF/HDF5 and OpenMP runtimes keep allocations until exit.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
if [ $# -eq 0 ]; then set -- -LE nightly; fi
ctest --test-dir build-asan --output-on-failure -j "$jobs" "$@"
