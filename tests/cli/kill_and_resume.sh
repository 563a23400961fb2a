# Kill-and-resume scaffolding, sourced by train_resume_test.sh and assimilate_resume_test.sh with the
# test's arguments (/path/to/varflow KILLS SEED). It sets $varflow, $kills_wanted, RANDOM (the seed of
# the kill times), $work (a scratch directory removed on exit), and fail(), which prints a failure
# and counts it in $failures.
set -u
varflow=$1
kills_wanted=${2:-3}
RANDOM=${3:-1}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# time_run CMD...: runs CMD to the end (output in $work/whole.log) and sets $run_ms to its wall time
# in ms (>= 1).
time_run() {
  local start
  start=$(date +%s%N)
  "$@" >"$work/whole.log" 2>&1 || fail "uninterrupted run: $(cat "$work/whole.log")"
  run_ms=$(( ($(date +%s%N) - start) / 1000000 ))
  [ "$run_ms" -gt 0 ] || run_ms=1
}

# kill_and_resume PATTERN RUN_MS "FILES" CMD...: runs CMD (a --resume run, output in $work/cut.log)
# and kill -9s it at a random point before 80% of RUN_MS, until $kills_wanted kills landed; a run
# that finished before its kill is undone (FILES removed) and started again. Then one run to the end.
# Sets $kills, and $resumed: the runs whose log matches PATTERN (they resumed from a checkpoint).
kill_and_resume() {
  local pattern=$1 window_ms=$(($2 * 8 / 10 + 1)) files=$3 attempt pid status
  shift 3
  kills=0
  resumed=0
  for attempt in $(seq 1 $((kills_wanted * 4 + 5))); do
    [ "$kills" -lt "$kills_wanted" ] || break
    "$@" >"$work/cut.log" 2>&1 &
    pid=$!
    sleep "$(awk -v ms="$((RANDOM % window_ms))" 'BEGIN { printf "%.3f", ms / 1000 }')"
    if kill -9 "$pid" 2>/dev/null; then
      kills=$((kills + 1))
      wait "$pid" 2>/dev/null
    else
      wait "$pid"
      # shellcheck disable=SC2086  # FILES is a list of paths without spaces
      rm -f $files
    fi
    grep -q "$pattern" "$work/cut.log" && resumed=$((resumed + 1))
  done
  [ "$kills" -eq "$kills_wanted" ] || fail "only $kills of $kills_wanted kills landed"
  "$@" >"$work/cut.log" 2>&1
  status=$?
  [ "$status" -eq 0 ] || fail "the last resumed run exited $status: $(cat "$work/cut.log")"
  grep -q "$pattern" "$work/cut.log" && resumed=$((resumed + 1))
  # With many kills some must land after a checkpoint (the first is written after one epoch or cycle).
  [ "$kills_wanted" -lt 10 ] || [ "$resumed" -gt 0 ] || fail "no run resumed from a checkpoint"
}

# kill_at_first_checkpoint CHECKPOINT CMD...: starts CMD and kill -9s it as soon as CHECKPOINT
# exists (at most 8 s); fails when none was written.
kill_at_first_checkpoint() {
  local checkpoint=$1 pid
  shift
  "$@" >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 1 400); do [ -f "$checkpoint" ] && break; sleep 0.02; done
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  [ -f "$checkpoint" ] || fail "no checkpoint was written within 8 s"
}
