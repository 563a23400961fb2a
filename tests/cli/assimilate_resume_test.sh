#!/usr/bin/env bash
# `varflow assimilate --resume` after kill -9 at random points writes the analysis file of an
# uninterrupted run: every per-cycle state and score and the last analysis, at full precision
# (the solver wall times aside), and leaves no checkpoint or temporary behind.
# Usage: assimilate_resume_test.sh /path/to/varflow KILLS SEED
set -u
varflow=$1
kills_wanted=${2:-3}
RANDOM=${3:-1}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
"$varflow" config --print-default | sed -e 's/^  cycles: 100$/  cycles: 150/' >"$work/c.yaml"
grep -q "cycles: 150" "$work/c.yaml" || fail "c.yaml did not set the cycles"
values() {
  ncdump -p 9,17 -v analysis_state,background_state,filter_state,forecast_state,rmse_filter,rmse_forecast,spread,final_cost,iterations,converged,chi2_per_obs,analysis "$1" |
    sed -n '/^data:/,$p'
}

start=$(date +%s%N)
"$varflow" assimilate --config "$work/c.yaml" --quiet --out "$work/whole.nc" >"$work/whole.log" 2>&1 ||
  fail "uninterrupted run: $(cat "$work/whole.log")"
run_ms=$(( ($(date +%s%N) - start) / 1000000 ))

# Kill -9 at a random point of each run (before 80% of an uninterrupted run's time) until
# KILLS kills landed, resuming each time; a run that finished before its kill starts over. Then
# one run to the end.
kills=0
resumed=0
window_ms=$((run_ms * 8 / 10 + 1))
for attempt in $(seq 1 $((kills_wanted * 4 + 5))); do
  [ "$kills" -lt "$kills_wanted" ] || break
  "$varflow" assimilate --config "$work/c.yaml" --quiet --resume --out "$work/cut.nc" >"$work/cut.log" 2>&1 &
  pid=$!
  sleep "$(awk -v ms="$((RANDOM % window_ms))" 'BEGIN { printf "%.3f", ms / 1000 }')"
  if kill -9 "$pid" 2>/dev/null; then
    kills=$((kills + 1))
    wait "$pid" 2>/dev/null
  else
    wait "$pid"
    rm -f "$work/cut.nc" "$work/cut.nc.checkpoint"
  fi
  grep -q "resuming from .* after cycle" "$work/cut.log" && resumed=$((resumed + 1))
done
[ "$kills" -eq "$kills_wanted" ] || fail "only $kills of $kills_wanted kills landed"
"$varflow" assimilate --config "$work/c.yaml" --quiet --resume --out "$work/cut.nc" >"$work/cut.log" 2>&1
status=$?
[ "$status" -eq 0 ] || fail "the last resumed run exited $status: $(cat "$work/cut.log")"
grep -q "resuming from .* after cycle" "$work/cut.log" && resumed=$((resumed + 1))
echo "assimilate_resume_test: $kills kills, $resumed runs resumed from a checkpoint (uninterrupted run $run_ms ms)"
# With many kills some must land after a checkpoint (the first is written after one cycle).
[ "$kills_wanted" -lt 10 ] || [ "$resumed" -gt 0 ] || fail "no run resumed from a checkpoint"
[ -f "$work/cut.nc" ] || fail "the resumed runs never finished"
[ "$(values "$work/whole.nc")" = "$(values "$work/cut.nc")" ] ||
  fail "the resumed analysis differs: $(diff <(values "$work/whole.nc") <(values "$work/cut.nc") | head -5)"
leftovers=$(ls -A "$work" | grep -v -e '^whole\.' -e '^cut\.nc$' -e '^cut\.log$' -e '^c\.yaml$' -e '\.lock$')
[ -z "$leftovers" ] || fail "left behind: $leftovers"

# A checkpoint of another seed is refused naming the file (exit 2).
"$varflow" assimilate --config "$work/c.yaml" --quiet --out "$work/other.nc" >/dev/null 2>&1 &
pid=$!
for _ in $(seq 1 400); do [ -f "$work/other.nc.checkpoint" ] && break; sleep 0.02; done
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
if [ -f "$work/other.nc.checkpoint" ]; then
  "$varflow" assimilate --config "$work/c.yaml" --seed 99 --quiet --resume --out "$work/other.nc" >"$work/o.log" 2>&1
  [ $? -eq 2 ] && grep -q "other.nc.checkpoint was written by a run of other settings" "$work/o.log" ||
    fail "a checkpoint of another seed was not refused: $(cat "$work/o.log")"
else
  fail "no checkpoint was written within 8 s"
fi

if [ "$failures" -eq 0 ]; then echo "assimilate_resume_test: all checks passed"; fi
exit "$failures"
