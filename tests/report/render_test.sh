#!/usr/bin/env bash
# Renders a validation report and a six-step report (tests/cf/six_step_tiny.yaml) in headless
# Chromium and checks that each screenshot is not blank.
# Usage: render_test.sh VARFLOW PNG_CHECK CHROMIUM WORK_DIR. Exit 77 (skipped) without CHROMIUM.
set -euo pipefail
varflow=$1 checker=$2 chromium=$3 work=$4
if [[ ! -x $chromium ]]; then
  echo "skipped: $chromium not found"
  exit 77
fi
rm -rf "$work" && mkdir -p "$work"
"$varflow" train --problem linear-gaussian --head gaussian --pairs 2000 --epochs 2 --seed 5 --quiet --out "$work/lg.nc"
status=0
"$varflow" validate --model "$work/lg.nc" --seed 5 --events 3 --out "$work/report" || status=$?
if [[ $status -gt 1 ]]; then
  echo "varflow validate exited with $status"
  exit 1
fi
"$varflow" six-step --config "$(dirname "$0")/../cf/six_step_tiny.yaml" --out "$work/six" > "$work/six.log" 2>&1 || true
if [[ ! -s $work/six/report.html ]]; then
  echo "six-step wrote no report.html"; cat "$work/six.log"
  exit 1
fi
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
render() {  # render PAGE PNG HEIGHT
  timeout 120 "$chromium" --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking \
    --disable-component-update --disable-sync --user-data-dir="$profile" --screenshot="$2" \
    --window-size=1200,"$3" "file://$1" > "$work/chromium.log" 2>&1 || true
  if [[ ! -s $2 ]]; then
    echo "no screenshot of $1 written"; cat "$work/chromium.log"
    exit 1
  fi
  "$checker" "$2"
}
render "$work/report/report.html" "$work/report.png" 2000
render "$work/six/report.html" "$work/six_step_report.png" 3000
