#!/usr/bin/env bash
# varflow_amortized_validate_mpi from C under `mpirun -np 2` (tests/parallel/mpi_c_abi_test.c): trains
# a small linear-gaussian model with the varflow program, runs the C program on 2 ranks and checks
# that one report was written. design/parallel.md, design/c_abi.md.
# Usage: mpi_c_abi_test.sh /path/to/varflow /path/to/mpi_c_abi_test /path/to/mpirun
set -u
varflow=$1
program=$2
mpirun=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "mpi_c_abi_test: FAIL: $*"; exit 1; }
export OMP_NUM_THREADS=1
"$varflow" train --problem linear-gaussian --head gaussian --pairs 3000 --epochs 5 --seed 3 --quiet \
  --out "$work/lg.nc" >"$work/train.log" 2>&1 || fail "varflow train: $(tail -3 "$work/train.log")"
"$mpirun" -np 2 --oversubscribe "$program" "$work/lg.nc" "$work/report" >"$work/run.log" 2>&1
status=$?
cat "$work/run.log"
[ "$status" = 0 ] || fail "the C program on 2 ranks: exit $status"
[ -f "$work/report/report.json" ] || fail "no report.json written by rank 0"
leftovers=$(ls -A "$work/report" | grep -v -e '^report\.json$' -e '^report\.html$' -e '^\.report.*\.lock$')
[ -z "$leftovers" ] || fail "left behind in the report directory: $leftovers"
echo "mpi_c_abi_test: passed"
