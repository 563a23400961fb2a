#!/usr/bin/env bash
# Runs every command that writes netCDF on tiny settings into DIR and lists the files it wrote in
# DIR/files.txt (one path a line), for cf_files_check and cf_files_xarray.
# Usage: cf_files_generate.sh /path/to/varflow DIR
set -eu
varflow=$1
dir=$2
rm -rf "$dir"
mkdir -p "$dir"
cd "$dir"
run() { echo "+ $*"; "$@" >>log.txt 2>&1 || { status=$?; cat log.txt; echo "FAIL: '$*' exited $status"; exit 1; }; }

# simulate and assimilate.
"$varflow" config --print-default | sed -e 's/^  cycles: 100/  cycles: 3/' -e 's/^  burn_in: 20/  burn_in: 1/' >short.yaml
run "$varflow" simulate --config short.yaml --out truth_obs.nc
run "$varflow" assimilate --config short.yaml --obs truth_obs.nc --out analysis.nc --quiet
# One window of 4 steps of an 8-variable Lorenz-96, every variable observed every 2 steps (3 times).
printf 'model:\n  n: 8\ncycling:\n  cycles: 1\n  burn_in: 0\n  window_steps: 4\nobservations:\n  every_steps: 2\n' >one_window.yaml
run "$varflow" simulate --config one_window.yaml --out one_window.nc

# train and sample: linear-gaussian from --obs, Lorenz-96 from the simulate file (--obs-file).
run "$varflow" train --problem linear-gaussian --head gaussian --pairs 400 --epochs 1 --out model.nc
run "$varflow" sample --model model.nc --obs 0.1,0.2,0.3,0.4,0.5,-0.1,-0.2,-0.3,-0.4,-0.5 --n 50 --out samples.nc
# The same problem as one_window.yaml, so that its observations(obs_time, obs) are the model's y.
printf 'model: {n: 8}\ncycling: {window_steps: 4}\nobservations: {every_steps: 2, stride: 1}\ntruth: {spin_up_steps: 100}\nencoder: {width: 16, context: 8, channels: 4, conv_layers: 1}\ngaussian: {width: 16}\n' >l96.yaml
run "$varflow" train --problem lorenz96 --head gaussian --pairs 300 --epochs 1 --config l96.yaml --out l96_model.nc
run "$varflow" sample --model l96_model.nc --obs-file one_window.nc --n 20 --out l96_samples.nc
# Missing values (NaN in the file, with _FillValue).
run "$varflow" sample --model l96_model.nc --obs "1,,2,,,,3,,1,,2,,4,,3,,0,,1,,4,,2," --n 20 --out l96_gaps.nc

# six-step through step 5 (on_gate_failure: fallback goes on past a refused emulator).
"$varflow" six-step --config "$(dirname "$0")/six_step_tiny.yaml" --out six >>log.txt 2>&1 || true  # exit 1: its gates fail at this size
for f in physics.nc oracle.nc emulator.nc predictor.nc; do
  [ -f "six/$f" ] || { cat log.txt; echo "FAIL: six-step wrote no $f"; exit 1; }
done

ls "$dir"/*.nc "$dir"/six/*.nc >files.txt
echo "wrote $(wc -l <files.txt) files"
