#!/usr/bin/env bash
# `varflow train --resume` after kill -9 at random points gives the model and loss curves of an
# uninterrupted run, bit for bit (the model's weight checksum and the loss CSV bytes), and leaves no
# checkpoint, temporary or journal behind.
# Usage: train_resume_test.sh /path/to/varflow KILLS SEED
# shellcheck source=kill_and_resume.sh
source "$(dirname "$0")/kill_and_resume.sh" "$@"
settings=(--problem linear-gaussian --head gaussian --pairs 4000 --epochs 30 --seed 11 --threads 1 --quiet)
other=(--problem linear-gaussian --head gaussian --pairs 4000 --epochs 200 --threads 1 --quiet)
checksum() { ncdump -h "$1" | grep ':checksum = ' | sed 's/.*= //'; }

time_run "$varflow" train "${settings[@]}" --out "$work/whole.nc"
kill_and_resume "resuming from .* after epoch" "$run_ms" "$work/cut.nc $work/cut.nc.loss.csv $work/cut.nc.checkpoint" \
  "$varflow" train "${settings[@]}" --resume --out "$work/cut.nc"
echo "train_resume_test: $kills kills, $resumed runs resumed from a checkpoint (uninterrupted run $run_ms ms)"
[ -f "$work/cut.nc" ] || fail "the resumed runs never finished"
cmp -s "$work/whole.nc.loss.csv" "$work/cut.nc.loss.csv" || fail "loss curves differ: $(diff "$work/whole.nc.loss.csv" "$work/cut.nc.loss.csv" | head -5)"
[ "$(checksum "$work/whole.nc")" = "$(checksum "$work/cut.nc")" ] ||
  fail "model checksums differ: $(checksum "$work/whole.nc") vs $(checksum "$work/cut.nc")"
leftovers=$(ls -A "$work" | grep -v -e '^whole\.' -e '^cut\.nc$' -e '^cut\.nc\.loss\.csv$' -e '^cut\.log$' -e '^\.cut\.nc\.lock$' -e '^\.whole\.nc\.lock$')
[ -z "$leftovers" ] || fail "left behind: $leftovers"

# A checkpoint of other settings is refused naming the file (exit 2); a damaged one too.
kill_at_first_checkpoint "$work/other.nc.checkpoint" "$varflow" train "${other[@]}" --seed 11 --out "$work/other.nc"
if [ -f "$work/other.nc.checkpoint" ]; then
  "$varflow" train "${other[@]}" --seed 12 --resume --out "$work/other.nc" >"$work/o.log" 2>&1
  [ $? -eq 2 ] && grep -q "other.nc.checkpoint was written by a run of other settings" "$work/o.log" ||
    fail "a checkpoint of another seed was not refused: $(cat "$work/o.log")"
  printf 'x' | dd of="$work/other.nc.checkpoint" bs=1 seek=100 conv=notrunc 2>/dev/null
  "$varflow" train "${other[@]}" --seed 11 --resume --out "$work/other.nc" >"$work/o.log" 2>&1
  [ $? -eq 2 ] && grep -q "damaged" "$work/o.log" || fail "a damaged checkpoint was not refused: $(cat "$work/o.log")"
fi

if [ "$failures" -eq 0 ]; then echo "train_resume_test: all checks passed"; fi
exit "$failures"
