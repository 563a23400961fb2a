#!/usr/bin/env bash
# `mpirun -np 2 varflow train` and `mpirun -np 2 varflow validate` against one rank: the same loss
# curves up to round-off, the same report (bit for bit but its timing) and the same gate decisions,
# one writer of each output and nothing left behind. design/parallel.md.
# Usage: mpi_cli_test.sh /path/to/varflow /path/to/mpirun
set -u
varflow=$1
mpirun=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "mpi_cli_test: FAIL: $*"; exit 1; }
two() { "$mpirun" -np 2 --oversubscribe "$varflow" "$@"; }
export OMP_NUM_THREADS=1

settings=(--problem linear-gaussian --head gaussian --pairs 4000 --epochs 10 --seed 11 --threads 1 --quiet)
"$varflow" train "${settings[@]}" --out "$work/one.nc" >"$work/t1.log" 2>&1 || fail "train on 1 rank: $(tail -3 "$work/t1.log")"
two train "${settings[@]}" --out "$work/two.nc" >"$work/t2.log" 2>&1 || fail "train on 2 ranks: $(tail -5 "$work/t2.log")"
grep -q "data-parallel over MPI, 2 ranks" "$work/t2.log" || fail "train did not run on 2 ranks: $(head -3 "$work/t2.log")"
[ "$(grep -c '^wrote ' "$work/t2.log")" = 1 ] || fail "train on 2 ranks: not exactly one writer: $(grep '^wrote' "$work/t2.log")"
# Loss curves: the same epochs, every loss equal to 1e-9 relative (the order of the gradient sums).
python3 - "$work/one.nc.loss.csv" "$work/two.nc.loss.csv" <<'PY' || fail "loss curves of 1 and 2 ranks differ"
import sys
a = [l.split(',') for l in open(sys.argv[1]).read().split()[1:]]
b = [l.split(',') for l in open(sys.argv[2]).read().split()[1:]]
assert len(a) == len(b) and len(a) > 0, (len(a), len(b))
worst = max(abs(float(x) - float(y)) / max(abs(float(x)), 1e-300) for ra, rb in zip(a, b) for x, y in zip(ra[1:3], rb[1:3]))
print(f"mpi_cli_test: {len(a)} epochs, largest relative difference of the losses {worst:.2e}")
assert worst < 1e-9, worst
PY
leftovers=$(ls -A "$work" | grep -v -e '^one\.nc' -e '^two\.nc' -e '^\.one\.nc\.lock$' -e '^\.two\.nc\.lock$' -e '\.log$')
[ -z "$leftovers" ] || fail "left behind: $leftovers"

# validate: the report of 2 ranks is the one of 1 rank (but the seconds it took), the same exit status.
v=(--events 6 --sbc-simulations 200 --seed 5)
gates() { grep -E '^(posterior_agreement|adjoint_calibration|simulation_based_calibration) ' "$1"; }
strip() { grep -v -e '"seconds"' -e '"history"' -e '"date_created"' -e '"command_line"' "$1"; }
# validate_on_one_and_two MODEL TAG: validates MODEL on 1 rank (into $work/TAG1) and on 2 ranks
# ($work/TAG2); fails unless the exit statuses, the gate decisions and report.json agree. Sets s1.
validate_on_one_and_two() {
  "$varflow" validate --model "$1" "${v[@]}" --out "$work/${2}1" >"$work/${2}1.log" 2>&1
  s1=$?
  two validate --model "$1" "${v[@]}" --out "$work/${2}2" >"$work/${2}2.log" 2>&1
  local s2=$?
  [ "$s1" -le 1 ] || fail "validate $1 on 1 rank: exit $s1: $(tail -3 "$work/${2}1.log")"
  [ "$s1" = "$s2" ] || fail "validate $1, exit status: 1 rank $s1, 2 ranks $s2: $(tail -5 "$work/${2}2.log")"
  grep -q "distributed over MPI, 2 ranks" "$work/${2}2.log" || fail "validate $1 did not run on 2 ranks"
  [ "$(gates "$work/${2}1.log")" = "$(gates "$work/${2}2.log")" ] ||
    fail "gate decisions differ: $(gates "$work/${2}1.log") / $(gates "$work/${2}2.log")"
  [ "$(gates "$work/${2}1.log" | wc -l)" = 3 ] || fail "validate printed no gate decisions: $(cat "$work/${2}1.log")"
  diff <(strip "$work/${2}1/report.json") <(strip "$work/${2}2/report.json") >"$work/${2}.diff" ||
    fail "report.json of $1 on 1 and 2 ranks differ: $(head -6 "$work/${2}.diff")"
}
validate_on_one_and_two "$work/one.nc" v
# The model trained on 2 ranks takes the same gate decisions as the one trained on 1.
"$varflow" validate --model "$work/two.nc" "${v[@]}" --out "$work/v3" >"$work/v3.log" 2>&1
[ "$(gates "$work/v1.log")" = "$(gates "$work/v3.log")" ] || fail "the model of 2 ranks is judged otherwise: $(gates "$work/v3.log")"

# A flow head: its Jacobian probes split every J v and J^T w over the ranks (blocks of base draws);
# the report, probe errors and operator-norm estimates included, is still the one of 1 rank.
# 200 base draws: 4 blocks of 50, 2 per rank.
printf 'mean_samples: 200\n' >"$work/flow.yaml"
"$varflow" train --problem linear-gaussian --head flow --config "$work/flow.yaml" --pairs 500 --epochs 1 --seed 11 \
  --threads 1 --quiet --out "$work/flow.nc" >"$work/f.log" 2>&1 || fail "train a flow head: $(tail -3 "$work/f.log")"
validate_exit=$s1
validate_on_one_and_two "$work/flow.nc" f
grep -q '"relative_operator_norm_difference"' "$work/f1/report.json" || fail "the flow head's report has no Jacobian cases"

echo "mpi_cli_test: train and validate on 2 ranks agree with 1 rank (validate exit $validate_exit, flow head $s1)"
