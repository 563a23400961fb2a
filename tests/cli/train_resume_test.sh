#!/usr/bin/env bash
# `varflow train --resume` after kill -9 at random points gives the model and loss curves of an
# uninterrupted run, bit for bit (the model's weight checksum and the loss CSV bytes), and leaves no
# checkpoint, temporary or journal behind.
# Usage: train_resume_test.sh /path/to/varflow KILLS SEED
set -u
varflow=$1
kills_wanted=${2:-3}
RANDOM=${3:-1}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
settings=(--problem linear-gaussian --head gaussian --pairs 4000 --epochs 30 --seed 11 --threads 1 --quiet)
other=(--problem linear-gaussian --head gaussian --pairs 4000 --epochs 200 --threads 1 --quiet)
checksum() { ncdump -h "$1" | grep ':checksum = ' | sed 's/.*= //'; }

start=$(date +%s%N)
"$varflow" train "${settings[@]}" --out "$work/whole.nc" >"$work/whole.log" 2>&1 || fail "uninterrupted run: $(cat "$work/whole.log")"
run_ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$run_ms" -gt 0 ] || run_ms=1

# Kill -9 at a random point of each run (before 80% of an uninterrupted run's time) until
# KILLS kills landed, resuming each time; a run that finished before its kill starts over. Then
# one run to the end.
kills=0
resumed=0
window_ms=$((run_ms * 8 / 10 + 1))
for attempt in $(seq 1 $((kills_wanted * 4 + 5))); do
  [ "$kills" -lt "$kills_wanted" ] || break
  "$varflow" train "${settings[@]}" --resume --out "$work/cut.nc" >"$work/cut.log" 2>&1 &
  pid=$!
  sleep "$(awk -v ms="$((RANDOM % window_ms))" 'BEGIN { printf "%.3f", ms / 1000 }')"
  if kill -9 "$pid" 2>/dev/null; then
    kills=$((kills + 1))
    wait "$pid" 2>/dev/null
  else
    wait "$pid"
    rm -f "$work/cut.nc" "$work/cut.nc.loss.csv" "$work/cut.nc.checkpoint"
  fi
  grep -q "resuming from .* after epoch" "$work/cut.log" && resumed=$((resumed + 1))
done
[ "$kills" -eq "$kills_wanted" ] || fail "only $kills of $kills_wanted kills landed"
"$varflow" train "${settings[@]}" --resume --out "$work/cut.nc" >"$work/cut.log" 2>&1
status=$?
[ "$status" -eq 0 ] || fail "the last resumed run exited $status: $(cat "$work/cut.log")"
grep -q "resuming from .* after epoch" "$work/cut.log" && resumed=$((resumed + 1))
echo "train_resume_test: $kills kills, $resumed runs resumed from a checkpoint (uninterrupted run $run_ms ms)"
# With many kills some must land after a checkpoint (the first is written after one epoch).
[ "$kills_wanted" -lt 10 ] || [ "$resumed" -gt 0 ] || fail "no run resumed from a checkpoint"
[ -f "$work/cut.nc" ] || fail "the resumed runs never finished"
cmp -s "$work/whole.nc.loss.csv" "$work/cut.nc.loss.csv" || fail "loss curves differ: $(diff "$work/whole.nc.loss.csv" "$work/cut.nc.loss.csv" | head -5)"
[ "$(checksum "$work/whole.nc")" = "$(checksum "$work/cut.nc")" ] ||
  fail "model checksums differ: $(checksum "$work/whole.nc") vs $(checksum "$work/cut.nc")"
leftovers=$(ls -A "$work" | grep -v -e '^whole\.' -e '^cut\.nc$' -e '^cut\.nc\.loss\.csv$' -e '^cut\.log$' -e '^\.cut\.nc\.lock$' -e '^\.whole\.nc\.lock$')
[ -z "$leftovers" ] || fail "left behind: $leftovers"

# A checkpoint of other settings is refused naming the file (exit 2); a damaged one too.
"$varflow" train "${other[@]}" --seed 11 --out "$work/other.nc" >/dev/null 2>&1 &
pid=$!
for _ in $(seq 1 400); do [ -f "$work/other.nc.checkpoint" ] && break; sleep 0.02; done
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
if [ -f "$work/other.nc.checkpoint" ]; then
  "$varflow" train "${other[@]}" --seed 12 --resume --out "$work/other.nc" >"$work/o.log" 2>&1
  [ $? -eq 2 ] && grep -q "other.nc.checkpoint was written by a run of other settings" "$work/o.log" ||
    fail "a checkpoint of another seed was not refused: $(cat "$work/o.log")"
  printf 'x' | dd of="$work/other.nc.checkpoint" bs=1 seek=100 conv=notrunc 2>/dev/null
  "$varflow" train "${other[@]}" --seed 11 --resume --out "$work/other.nc" >"$work/o.log" 2>&1
  [ $? -eq 2 ] && grep -q "damaged" "$work/o.log" || fail "a damaged checkpoint was not refused: $(cat "$work/o.log")"
else
  fail "no checkpoint was written within 8 s"
fi

if [ "$failures" -eq 0 ]; then echo "train_resume_test: all checks passed"; fi
exit "$failures"
