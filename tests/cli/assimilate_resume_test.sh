#!/usr/bin/env bash
# `varflow assimilate --resume` after kill -9 at random points writes the analysis file of an
# uninterrupted run: every per-cycle state and score and the last analysis, at full precision
# (the solver wall times aside), and leaves no checkpoint or temporary behind.
# Usage: assimilate_resume_test.sh /path/to/varflow KILLS SEED
# shellcheck source=kill_and_resume.sh
source "$(dirname "$0")/kill_and_resume.sh" "$@"
"$varflow" config --print-default | sed -e 's/^  cycles: 100$/  cycles: 150/' >"$work/c.yaml"
grep -q "cycles: 150" "$work/c.yaml" || fail "c.yaml did not set the cycles"
values() {
  ncdump -p 9,17 -v analysis_state,background_state,filter_state,forecast_state,rmse_filter,rmse_forecast,spread,final_cost,iterations,converged,chi2_per_obs,analysis "$1" |
    sed -n '/^data:/,$p'
}

time_run "$varflow" assimilate --config "$work/c.yaml" --quiet --out "$work/whole.nc"
kill_and_resume "resuming from .* after cycle" "$run_ms" "$work/cut.nc $work/cut.nc.checkpoint" \
  "$varflow" assimilate --config "$work/c.yaml" --quiet --resume --out "$work/cut.nc"
echo "assimilate_resume_test: $kills kills, $resumed runs resumed from a checkpoint (uninterrupted run $run_ms ms)"
[ -f "$work/cut.nc" ] || fail "the resumed runs never finished"
[ "$(values "$work/whole.nc")" = "$(values "$work/cut.nc")" ] ||
  fail "the resumed analysis differs: $(diff <(values "$work/whole.nc") <(values "$work/cut.nc") | head -5)"
leftovers=$(ls -A "$work" | grep -v -e '^whole\.' -e '^cut\.nc$' -e '^cut\.log$' -e '^c\.yaml$' -e '\.lock$')
[ -z "$leftovers" ] || fail "left behind: $leftovers"

# A checkpoint of another seed is refused naming the file (exit 2).
kill_at_first_checkpoint "$work/other.nc.checkpoint" "$varflow" assimilate --config "$work/c.yaml" --quiet --out "$work/other.nc"
if [ -f "$work/other.nc.checkpoint" ]; then
  "$varflow" assimilate --config "$work/c.yaml" --seed 99 --quiet --resume --out "$work/other.nc" >"$work/o.log" 2>&1
  [ $? -eq 2 ] && grep -q "other.nc.checkpoint was written by a run of other settings" "$work/o.log" ||
    fail "a checkpoint of another seed was not refused: $(cat "$work/o.log")"
fi

if [ "$failures" -eq 0 ]; then echo "assimilate_resume_test: all checks passed"; fi
exit "$failures"
