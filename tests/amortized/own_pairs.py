#!/usr/bin/env python3
"""Pairs simulated outside varflow, for the `train --pairs` CLI test.

  own_pairs.py write FILE N SEED   linear-Gaussian pairs in 10-D, x ~ N(0, 0.1 I), y = x + N(0, 0.1 I),
                                   written with netCDF4 as another program would (no varflow attributes)
  own_pairs.py wrong FILE          a file of 3-D states (the wrong shape for linear-gaussian)
  own_pairs.py check SAMPLES Y TOL the draws in SAMPLES (varflow sample --out) have mean y/2 (the exact
                                   posterior mean at y) within TOL in every component
Exit 77 when python3-netCDF4 is missing (the test is then skipped, visibly)."""
import sys

try:
    import netCDF4
    import numpy as np
except ImportError as e:  # pragma: no cover
    print(f"skipped: {e}")
    sys.exit(77)


def write(path, x, y):
    with netCDF4.Dataset(path, "w") as f:
        f.createDimension("pair", x.shape[0])
        f.createDimension("state", x.shape[1])
        f.createDimension("observation", y.shape[1])
        f.createVariable("x", "f8", ("pair", "state"))[:] = x
        f.createVariable("y", "f8", ("pair", "observation"))[:] = y


def main(argv):
    if argv[1] == "write":
        n, seed = int(argv[3]), int(argv[4])
        rng = np.random.default_rng(seed)
        x = rng.normal(0.0, np.sqrt(0.1), size=(n, 10))
        y = x + rng.normal(0.0, np.sqrt(0.1), size=(n, 10))
        write(argv[2], x, y)
    elif argv[1] == "wrong":
        write(argv[2], np.zeros((4, 3)), np.zeros((4, 10)))
    elif argv[1] == "check":
        with netCDF4.Dataset(argv[2]) as f:
            draws = np.array(f["samples"][:])
        y = np.array([float(v) for v in argv[3].split(",")])
        error = np.abs(draws.mean(axis=0) - y / 2.0).max()
        sd = draws.std(axis=0).mean()
        print(f"max |sample mean - y/2| = {error:.4f} (tolerance {argv[4]}), mean sd {sd:.4f} (exact {np.sqrt(0.05):.4f})")
        if not error <= float(argv[4]):
            sys.exit(1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
