#!/usr/bin/env bash
# End-to-end checks of the varflow program: help, config printing, a short run with netCDF output,
# round trip through simulate, and exit status 2 with a clear message on bad input.
# Usage: cli_test.sh /path/to/varflow
set -u
varflow=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
expect_status() {  # expect_status CODE MESSAGE-FRAGMENT -- command...
  local code=$1 fragment=$2; shift 3
  "$@" >"$work/out" 2>"$work/err"
  local got=$?
  [ "$got" -eq "$code" ] || fail "'$*' exited $got, expected $code: $(cat "$work/err")"
  if [ -n "$fragment" ] && ! grep -qF -- "$fragment" "$work/out" "$work/err"; then
    fail "'$*' did not print '$fragment': $(cat "$work/out" "$work/err")"
  fi
}

expect_status 0 "assimilate" -- "$varflow" --help
expect_status 0 "--obs" -- "$varflow" assimilate --help
expect_status 0 "incremental_4dvar" -- "$varflow" config --print-default
"$varflow" config --print-default | sed -e 's/^  cycles: 100/  cycles: 6/' -e 's/^  burn_in: 20/  burn_in: 2/' >"$work/short.yaml"
expect_status 0 "time means: filter RMSE" -- "$varflow" assimilate --config "$work/short.yaml" --out "$work/a.nc"
[ -f "$work/a.nc" ] || fail "assimilate wrote no file"
if command -v ncdump >/dev/null; then
  ncdump -h "$work/a.nc" | grep -q "rmse_analysis_mean" || fail "a.nc lacks rmse_analysis_mean"
  ncdump -h "$work/a.nc" | grep -q "double spread(cycle)" || fail "a.nc lacks spread(cycle)"
  for v in "double rmse_filter(cycle)" "double rmse_forecast(cycle)" "double chi2_per_obs(cycle)" \
           "double analysis_state(cycle, state)" "double forecast_state(cycle, state)"; do
    ncdump -h "$work/a.nc" | grep -qF "$v" || fail "a.nc lacks $v"
  done
fi
expect_status 0 "wrote" -- "$varflow" simulate --config "$work/short.yaml" --out "$work/t.nc"
expect_status 0 "observations from" -- "$varflow" assimilate --config "$work/short.yaml" --obs "$work/t.nc" --out "$work/b.nc" --quiet

# Numerical failure in every cycle (a forcing that blows the trajectory up) is exit status 1, not 0.
sed -e 's/^  forcing: 8$/  forcing: 1e200/' "$work/short.yaml" >"$work/blowup.yaml"
grep -q "forcing: 1e200" "$work/blowup.yaml" || fail "blowup.yaml did not set the forcing"
expect_status 1 "cycles failed numerically" -- "$varflow" assimilate --config "$work/blowup.yaml" --out "$work/f.nc" --quiet

# Bad input: exit status 2, the message names the key / option / file, and no output file appears.
printf 'model:\n  n: 40\n  forcng: 8\n' >"$work/typo.yaml"
expect_status 2 "unknown key 'model.forcng'" -- "$varflow" assimilate --config "$work/typo.yaml" --out "$work/c.nc"
printf 'method: 3dvar\ncycling:\n  window_steps: 4\n' >"$work/old3dvar.yaml"
expect_status 2 "window_steps: 0 and shift_steps: 4" -- "$varflow" assimilate --config "$work/old3dvar.yaml" --out "$work/c.nc"
printf 'cycling:\n  assimilate: latest\n' >"$work/badsel.yaml"
expect_status 2 "cycling.assimilate = 'latest' is not one of: new, all, newest" -- "$varflow" assimilate --config "$work/badsel.yaml" --out "$work/c.nc"
printf 'cycling:\n  cycles: -3\n' >"$work/neg.yaml"
expect_status 2 "cycling.cycles = -3" -- "$varflow" assimilate --config "$work/neg.yaml" --out "$work/c.nc"
expect_status 2 "does not exist" -- "$varflow" assimilate --config "$work/short.yaml" --out "$work/nodir/c.nc"
expect_status 2 "" -- "$varflow" assimilate --obs "$work/absent.nc" --out "$work/c.nc"
expect_status 2 "--out is required" -- "$varflow" simulate
expect_status 2 "not a readable netCDF" -- "$varflow" assimilate --obs "$work/typo.yaml" --out "$work/c.nc"
[ ! -e "$work/c.nc" ] || fail "a failed run left c.nc behind"
expect_status 2 "n = 2 must be at least 4" -- "$varflow" forecast --n 2
expect_status 2 "--velocity is not a parameter of lorenz96" -- "$varflow" forecast --velocity 2
expect_status 0 "advection_diffusion" -- "$varflow" forecast --model advection_diffusion --steps 10
printf 'n: 20\n' >"$work/old6.yaml"
expect_status 2 "key 'n' was renamed: use model.n" -- "$varflow" six-step --config "$work/old6.yaml" --out "$work/six0"

# six-step: a tiny run whose emulator is under-trained (exit 1, the table names the failed gate), the
# same run again computes nothing, a changed observation network recomputes steps 2, 4 and 5.
printf 'model: {n: 20}\nemulator: {train_pairs: 200, held_out: 10, epochs: 2, hidden: 6}\noracle: {windows: 2}\n' >"$work/tiny.yaml"
expect_status 0 "--fresh" -- "$varflow" six-step --help
expect_status 0 "on_gate_failure: stop" -- "$varflow" six-step --print-config
"$varflow" six-step --print-config >"$work/six_default.yaml"
"$varflow" six-step --config "$work/six_default.yaml" --print-config | cmp -s - "$work/six_default.yaml" ||
  fail "six-step --print-config does not read back as itself"
expect_status 2 "--out is required" -- "$varflow" six-step
printf 'x\n' >"$work/plain_file"
expect_status 2 "exists and is not a directory" -- "$varflow" six-step --config "$work/tiny.yaml" --out "$work/plain_file"
expect_status 1 "FAILED" -- "$varflow" six-step --config "$work/tiny.yaml" --out "$work/six"
for f in physics.nc oracle.nc emulator.nc manifest.json report.html; do
  [ -f "$work/six/$f" ] || fail "six-step wrote no $f"
done
expect_status 1 "steps computed by this run: 0 of" -- "$varflow" six-step --config "$work/tiny.yaml" --out "$work/six"
printf 'observations: {error_variance: 0.25}\n' >>"$work/tiny.yaml"
expect_status 1 "step 3: reused" -- "$varflow" six-step --config "$work/tiny.yaml" --out "$work/six"
grep -q "step 2: inputs changed" "$work/out" || fail "six-step did not recompute step 2 after an observation change"
printf 'model: {n: 20}\nemulator: {hiden: 6}\n' >"$work/typo6.yaml"
expect_status 2 "unknown key 'emulator.hiden'" -- "$varflow" six-step --config "$work/typo6.yaml" --out "$work/six2"
printf 'emulator: {file: %s}\n' "$work/absent.nc" >"$work/nofile.yaml"
expect_status 2 "emulator.file" -- "$varflow" six-step --config "$work/nofile.yaml" --out "$work/six3"
[ ! -e "$work/six3/physics.nc" ] || fail "six-step computed step 1 before refusing its emulator_file"

# Run lock: a second run on the same output file is refused naming the holder (exit 2), whatever
# the command; after the holder is killed with -9 its stale lock is taken over.
sed -e 's/^  cycles: 6$/  cycles: 20000/' "$work/short.yaml" >"$work/long.yaml"
grep -q "cycles: 20000" "$work/long.yaml" || fail "long.yaml did not set the cycles"
"$varflow" assimilate --config "$work/long.yaml" --out "$work/locked.nc" --quiet >/dev/null 2>&1 &
holder=$!
for _ in $(seq 1 400); do [ -s "$work/.locked.nc.lock" ] && break; sleep 0.05; done
expect_status 2 "locked.nc is in use by another varflow run (pid $holder on host" -- \
  "$varflow" assimilate --config "$work/short.yaml" --out "$work/locked.nc" --quiet
expect_status 2 "pid $holder" -- "$varflow" simulate --config "$work/short.yaml" --out "$work/locked.nc"
expect_status 2 "pid $holder" -- "$varflow" train --problem linear-gaussian --head gaussian --pairs 200 --epochs 1 \
  --out "$work/locked.nc"
kill -9 "$holder"
wait "$holder" 2>/dev/null
[ ! -e "$work/locked.nc" ] || fail "a killed assimilate left locked.nc"
expect_status 0 "wrote" -- "$varflow" assimilate --config "$work/short.yaml" --out "$work/locked.nc" --quiet
ls -A "$work" | grep -q '\.tmp[0-9]' && fail "temporaries left behind: $(ls -A "$work")"

if [ "$failures" -eq 0 ]; then echo "cli_test: all checks passed"; fi
exit "$failures"
