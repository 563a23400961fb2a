#!/usr/bin/env bash
# Installs the Debian packages varflow builds against, and nothing when all are present.
# Usage: scripts/setup.sh   (runs apt-get through sudo when not root)
set -euo pipefail

packages=(
  build-essential cmake pkg-config gfortran
  libeigen3-dev libceres-dev libgoogle-glog-dev libgflags-dev
  libnetcdf-c++4-dev libnetcdf-dev netcdf-bin
  libgtest-dev libgmock-dev
  libyaml-cpp-dev libcli11-dev libfftw3-dev nlohmann-json3-dev libboost-math-dev
  python3-xarray python3-netcdf4  # the xarray reading test of every file varflow writes (tests/cf/read_with_xarray.py)
  python3-numpy  # the numpy peer of bench/varflow_dapper_bench (bench/dapper_numpy_peer.py)
  python3-scipy  # the numpy/scipy 4D-Var peer of bench/varflow_scale_bench (bench/scale_numpy_peer.py)
  libopenmpi-dev openmpi-bin  # optional MPI (VARFLOW_WITH_MPI; `mpirun -np N varflow ...`, design/parallel.md)
  clang libclang-rt-dev  # the libFuzzer targets in fuzz/ (the `fuzz` preset, design/reliability.md)
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

echo "setup: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
