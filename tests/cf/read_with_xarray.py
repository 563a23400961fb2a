#!/usr/bin/python3
"""Opens every netCDF file varflow wrote (the arguments) with xarray and checks what a reader relies on:
each dimension (except string lengths) is an indexed coordinate with units, NaN-missing data are
decoded as missing, and the provenance attributes are there. Exit 77 (skipped) without xarray."""
import sys

try:
    import numpy as np
    import xarray as xr
except ImportError as e:
    print(f"SKIPPED: xarray is not installed ({e}); scripts/setup.sh installs python3-xarray")
    sys.exit(77)

PROVENANCE = ["Conventions", "history", "date_created", "varflow_version", "config", "config_hash", "seed"]
failures = 0
for path in sys.argv[1:]:
    problems = []
    with xr.open_dataset(path) as ds:
        for name in PROVENANCE:
            if name not in ds.attrs:
                problems.append(f"no global attribute {name}")
        string_dims = {v.dims[-1] for v in ds.variables.values() if v.dtype.kind in "SU" and v.dims}
        for dim in ds.dims:
            if dim in string_dims:
                continue
            if dim not in ds.indexes:
                problems.append(f"dimension {dim} is not an indexed coordinate")
            elif "units" not in ds[dim].attrs:
                problems.append(f"coordinate {dim} has no units")
        for name, v in ds.data_vars.items():
            if v.dtype.kind == "f" and "_FillValue" not in v.encoding and np.isnan(v.values).any():
                problems.append(f"{name} holds NaN with no _FillValue in its encoding")
    for p in problems:
        print(f"{path}: {p}")
    if not problems:
        print(f"{path}: opens in xarray {xr.__version__} with coordinates and provenance")
    failures += 1 if problems else 0
sys.exit(1 if failures else 0)
