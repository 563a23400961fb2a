#!/usr/bin/env bash
# `mpirun -np 2 varflow six-step` against one rank (design/parallel.md): a small cycle whose step 5
# (oracle labels, data-parallel training, distributed validation) runs on both ranks. The same step
# statuses and gate decisions as one rank, one writer (one report, one `wrote` line), and a second
# 2-rank run in the same directory reuses every step.
# Usage: mpi_six_step_test.sh /path/to/varflow /path/to/mpirun
set -u
varflow=$1
mpirun=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "mpi_six_step_test: FAIL: $*"; exit 1; }
export OMP_NUM_THREADS=1
cat >"$work/c.yaml" <<'YAML'
model: {name: lorenz96, n: 20}
emulator: {train_pairs: 200, held_out: 10, epochs: 2, hidden: 6}
oracle: {windows: 2}
on_gate_failure: fallback
predictor:
  pairs: 600
  training: {epochs: 2}
  labels: {pairs: 20, probes: 1}
  validation: {events: 4, jacobian_cases: 2, sbc_simulations: 200}
YAML
"$varflow" six-step --config "$work/c.yaml" --out "$work/one" --seed 3 >"$work/one.log" 2>&1
s1=$?
"$mpirun" -np 2 --oversubscribe "$varflow" six-step --config "$work/c.yaml" --out "$work/two" --seed 3 >"$work/two.log" 2>&1
s2=$?
[ "$s1" -le 1 ] || fail "six-step on 1 rank: exit $s1: $(tail -5 "$work/one.log")"
[ "$s1" = "$s2" ] || fail "exit status: 1 rank $s1, 2 ranks $s2: $(tail -8 "$work/two.log")"
grep -q "step 5 distributed over MPI, 2 ranks" "$work/two.log" || fail "not run on 2 ranks: $(head -3 "$work/two.log")"
grep -q "labelled 20 pairs" "$work/two.log" || fail "step 5 did not label pairs: $(grep 'step 5' "$work/two.log" | head)"
[ "$(grep -c '^wrote ' "$work/two.log")" = 1 ] || fail "not exactly one writer: $(grep '^wrote' "$work/two.log")"
for f in physics.nc oracle.nc emulator.nc predictor.nc manifest.json report.html; do
  [ -f "$work/two/$f" ] || fail "2 ranks wrote no $f"
done
# Every step's status and step 5's gate decisions, as one rank's.
python3 - "$work/one/manifest.json" "$work/two/manifest.json" <<'PY' || fail "1 and 2 ranks differ"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
sa = [(s["step"], s["status"]) for s in a["steps"]]
sb = [(s["step"], s["status"]) for s in b["steps"]]
print("mpi_six_step_test: steps (1 rank)", sa, "(2 ranks)", sb)
assert sa == sb, (sa, sb)
assert sa[4][1] in ("passed", "FAILED"), "step 5 did not run"
g5a = [s for s in a["steps"] if s["step"] == 5][0]["gate"]
g5b = [s for s in b["steps"] if s["step"] == 5][0]["gate"]
decisions = lambda g: [w for w in g.replace(";", " ").split() if w in ("pass", "FAIL")]
print("mpi_six_step_test: step 5 decisions", decisions(g5a), decisions(g5b))
assert decisions(g5a) == decisions(g5b)
PY
"$mpirun" -np 2 --oversubscribe "$varflow" six-step --config "$work/c.yaml" --out "$work/two" --seed 3 >"$work/again.log" 2>&1
[ "$?" = "$s2" ] || fail "the 2-rank re-run: another exit status: $(tail -5 "$work/again.log")"
grep -q "steps computed by this run: 0 of 5" "$work/again.log" || fail "the 2-rank re-run recomputed: $(grep -E 'step [0-9]:' "$work/again.log" | head)"
echo "mpi_six_step_test: passed"
