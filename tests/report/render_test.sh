#!/usr/bin/env bash
# Renders a validation report in headless Chromium and checks that the screenshot is not blank.
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
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
timeout 120 "$chromium" --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking \
  --disable-component-update --disable-sync --user-data-dir="$profile" --screenshot="$work/report.png" \
  --window-size=1200,2000 "file://$work/report/report.html" > "$work/chromium.log" 2>&1 || true
if [[ ! -s $work/report.png ]]; then
  echo "no screenshot written"; cat "$work/chromium.log"
  exit 1
fi
"$checker" "$work/report.png"
