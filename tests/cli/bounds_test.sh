#!/usr/bin/env bash
# Sizes and counts above their limits, inputs the readers must refuse, damaged files: each is a
# clean exit (2 for bad input, 1 for running out of memory) with the key, value or file named, never
# a crash (design/reliability.md, "Bounds" and "Damaged and hostile files").
# Usage: bounds_test.sh /path/to/varflow
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
config() { printf '%b' "$1" >"$work/c.yaml"; }

# ---- bounds: every size and count is checked before anything is allocated -----------------------
config 'model:\n  n: 1000000000000\n'
expect_status 2 "config: model.n = 1000000000000 is above the limit 100000000 (one state would take 8 TB)" -- \
  "$varflow" assimilate --config "$work/c.yaml" --out "$work/x.nc"
expect_status 2 "model.n = 1000000000000 is above the limit" -- "$varflow" simulate --config "$work/c.yaml" --out "$work/x.nc"
config 'model:\n  name: advection_diffusion\n  n: 200000000\n'
expect_status 2 "model.n = 200000000 is above the limit 100000000" -- \
  "$varflow" assimilate --config "$work/c.yaml" --out "$work/x.nc"
config 'model:\n  name: lorenz96_two_scale\n  k: 100000\n  j: 100000\n'
expect_status 2 "model.k x (model.j + 1) = 10000100000 is above the limit 100000000" -- \
  "$varflow" simulate --config "$work/c.yaml" --out "$work/x.nc"
config 'cycling:\n  cycles: 100000000000\n'
expect_status 2 "config: cycling.cycles = 100000000000 is above the limit 1000000000" -- \
  "$varflow" assimilate --config "$work/c.yaml" --out "$work/x.nc"
config 'observations:\n  every_steps: 99999999999\n'
expect_status 2 "observations.every_steps = 99999999999 is above the limit" -- \
  "$varflow" simulate --config "$work/c.yaml" --out "$work/x.nc"
config 'incremental:\n  max_inner_iterations: 5000000000\n'
expect_status 2 "incremental.max_inner_iterations = 5000000000 is above the limit" -- \
  "$varflow" assimilate --config "$work/c.yaml" --out "$work/x.nc"
# Each key within its limit, the product beyond the memory: refused before the run starts.
config 'model:\n  n: 100000000\ncycling:\n  cycles: 1000000\n  burn_in: 0\n'
expect_status 2 "above the memory of this machine" -- "$varflow" assimilate --config "$work/c.yaml" --out "$work/x.nc"
grep -qF "the run (state size 100000000, 1000000 cycles" "$work/err" || fail "the memory error does not say what: $(cat "$work/err")"
config 'model:\n  n: 40000\nbackground:\n  covariance: periodic_gaussian\n'
expect_status 2 "dense n x n matrices" -- "$varflow" assimilate --config "$work/c.yaml" --out "$work/x.nc"
config 'emulator:\n  train_pairs: 1000000000000\n'
expect_status 2 "emulator.train_pairs = 1000000000000 is above the limit" -- \
  "$varflow" six-step --config "$work/c.yaml" --out "$work/six"
config 'model: {n: 20}\nemulator: {train_pairs: 900000000}\n'
expect_status 2 "above the memory of this machine" -- "$varflow" six-step --config "$work/c.yaml" --out "$work/six"
config 'model:\n  n: 1000000000000\n'
expect_status 2 "model.n = 1000000000000 is above the limit 100000000" -- \
  "$varflow" train --problem lorenz96 --head gaussian --config "$work/c.yaml" --out "$work/m.nc"
config 'encoder:\n  width: 100000000\n'
expect_status 2 "train: " -- \
  "$varflow" train --problem linear-gaussian --head gaussian --config "$work/c.yaml" --pairs 200 --out "$work/m.nc"
grep -qF "above the memory of this machine" "$work/err" || grep -qF "above the limit" "$work/err" ||
  fail "train with encoder.width 1e8 did not name a limit: $(cat "$work/err")"
expect_status 2 "--n" -- "$varflow" sample --model "$work/absent.nc" --obs 1 --n 1000000000 --out "$work/s.nc"
[ -z "$(ls -A "$work" | grep -v -e '^c.yaml$' -e '^out$' -e '^err$' -e '\.lock$')" ] ||
  fail "a refused run left files: $(ls -A "$work")"

# An allocation that fails anyway (here under a 1.5 GB address-space limit; the plan is below the
# machine's memory) is a clean exit 1 naming the cause, not an abort.
# (Not under AddressSanitizer, which reserves terabytes of address space.)
if ! ldd "$varflow" | grep -q libasan; then
  config 'model:\n  n: 10000000\ntruth:\n  spin_up_steps: 0\ncycling:\n  cycles: 10\n  burn_in: 0\n'
  (ulimit -v 1500000 && exec "$varflow" simulate --config "$work/c.yaml" --out "$work/x.nc") >"$work/out" 2>"$work/err"
  status=$?
  [ "$status" -eq 1 ] || fail "simulate out of memory exited $status, expected 1: $(cat "$work/err")"
  grep -qF "failed: out of memory" "$work/err" || fail "simulate out of memory did not say so: $(cat "$work/err")"
  [ ! -e "$work/x.nc" ] || fail "an out-of-memory run left x.nc"
fi

# ---- inputs that the readers refuse ------------------------------------------------------------
config 'observations:\n  variables: [3, 3]\n'
expect_status 2 "config: observations.variables[1] = 3 repeats observations.variables[0]" -- \
  "$varflow" assimilate --config "$work/c.yaml" --out "$work/x.nc"
"$varflow" config --print-default | sed -e 's/^  cycles: 100/  cycles: 4/' -e 's/^  burn_in: 20/  burn_in: 1/' >"$work/short.yaml"
expect_status 0 "wrote" -- "$varflow" simulate --config "$work/short.yaml" --out "$work/t.nc"
tail -c 64 "$work/t.nc" | grep -q '^varflow-sum1 fnv1a64=[0-9a-f]\{16\} size=[0-9]\{20\}$' || fail "t.nc has no checksum trailer"
if command -v ncdump >/dev/null; then
  ncdump -h "$work/t.nc" | grep -q 'varflow_file_type = "varflow_truth_obs"' || fail "ncdump cannot read a sealed t.nc"
  # A truth/obs file without varflow_file_type (rewritten by ncgen: no checksum) is refused.
  ncdump "$work/t.nc" | grep -v ':varflow_file_type = ' | ncgen -k nc4 -o "$work/untyped.nc"
  expect_status 2 "the global attribute varflow_file_type is missing" -- \
    "$varflow" assimilate --config "$work/short.yaml" --obs "$work/untyped.nc" --out "$work/x.nc"
  grep -qF "untyped.nc" "$work/err" || fail "the untyped-file error does not name the file"
fi

# ---- damaged and unsealed files ----------------------------------------------------------------
size=$(stat -c %s "$work/t.nc")
cp "$work/t.nc" "$work/flipped.nc"
printf '\x55' | dd of="$work/flipped.nc" bs=1 seek=$((size / 2)) conv=notrunc status=none
expect_status 2 "flipped.nc: the file is damaged: its content has checksum" -- \
  "$varflow" assimilate --config "$work/short.yaml" --obs "$work/flipped.nc" --out "$work/x.nc"
head -c $((size - 1000)) "$work/t.nc" >"$work/cut.nc"
tail -c 64 "$work/t.nc" >>"$work/cut.nc"
expect_status 2 "cut.nc: the file is damaged: its checksum trailer records" -- \
  "$varflow" assimilate --config "$work/short.yaml" --obs "$work/cut.nc" --out "$work/x.nc"
# Without its trailer a file is read as any netCDF file (checked in a child process first).
head -c $((size - 64)) "$work/t.nc" >"$work/unsealed.nc"
expect_status 0 "observations from" -- \
  "$varflow" assimilate --config "$work/short.yaml" --obs "$work/unsealed.nc" --out "$work/a.nc" --quiet
expect_status 0 "observations from" -- \
  "$varflow" assimilate --config "$work/short.yaml" --obs "$work/t.nc" --out "$work/b.nc" --quiet
cmp -s <(tail -c 64 "$work/a.nc" | head -c 21) <(printf 'varflow-sum1 fnv1a64=') || fail "a.nc (analysis) has no checksum trailer"

if [ "$failures" -eq 0 ]; then echo "bounds_test: all checks passed"; fi
exit "$failures"
