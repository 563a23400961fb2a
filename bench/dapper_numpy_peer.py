#!/usr/bin/env python3
"""A numpy peer of varflow's DAPPER Lorenz-96 rows (bench/dapper_bench.cpp runs it).

The same cycling as DAPPER's Var4D (dapper/da_methods/variational.py) and Var3D
(dapper/da_methods/baseline.py), written with numpy only: Lorenz-96 (N = 40, F = 8, RK4, dt = 0.05),
every variable observed (every 4 steps for Var4D, every step for Var3D) with R = I, B = xB I or xB
times the climatological covariance of a free run.
Var4D: windows of `lag` observation intervals shifted by one, each assimilating its newest
observation, `iterations` Gauss-Newton steps with the window's tangent-linear model formed as a
dense matrix (one n x n product per model step) and the Hessian solved by an SVD, as DAPPER does.
Var3D (lag 0): the Kalman update with B at every observation time.

Prints one line: `numpy_peer lag=<L> cycles=<C> rmse_filter=<x> ms_per_cycle=<t>`. The truth and
observation errors come from numpy's generator with the given seed (not varflow's), so the RMSE is
a statistical peer of varflow's, not the same numbers.
Usage: dapper_numpy_peer.py LAG XB B_KIND CYCLES BURN_IN [SEED]   (B_KIND: identity | climatological)
"""
import sys
import time

import numpy as np

N, F, DT = 40, 8.0, 0.05


def tendency(x):
    return (np.roll(x, -1) - np.roll(x, 2)) * np.roll(x, 1) - x + F


def jacobian(x):
    j = -np.eye(N)
    i = np.arange(N)
    j[i, (i + 1) % N] += np.roll(x, 1)
    j[i, (i - 2) % N] -= np.roll(x, 1)
    j[i, (i - 1) % N] += np.roll(x, -1) - np.roll(x, 2)
    return j


def step(x):
    k1 = tendency(x)
    k2 = tendency(x + 0.5 * DT * k1)
    k3 = tendency(x + 0.5 * DT * k2)
    k4 = tendency(x + DT * k3)
    return x + DT / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)


def step_tlm(x):
    """The RK4 step and its Jacobian (n x n) at x."""
    eye = np.eye(N)
    k1 = tendency(x)
    j1 = jacobian(x)
    s2 = x + 0.5 * DT * k1
    k2 = tendency(s2)
    j2 = jacobian(s2) @ (eye + 0.5 * DT * j1)
    s3 = x + 0.5 * DT * k2
    k3 = tendency(s3)
    j3 = jacobian(s3) @ (eye + 0.5 * DT * j2)
    s4 = x + DT * k3
    k4 = tendency(s4)
    j4 = jacobian(s4) @ (eye + DT * j3)
    return x + DT / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4), eye + DT / 6.0 * (j1 + 2 * j2 + 2 * j3 + j4)


def main():
    lag, xb, b_kind = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
    cycles, burn_in = int(sys.argv[4]), int(sys.argv[5])
    seed = int(sys.argv[6]) if len(sys.argv) > 6 else 1
    every = 4 if lag > 0 else 1
    if b_kind not in ("identity", "climatological"):
        sys.exit("dapper_numpy_peer.py: B_KIND = '%s' is not one of: identity, climatological" % b_kind)
    iterations = 10
    rng = np.random.default_rng(seed)

    # Truth after spin-up, climatology from a free run, observations every `every` steps.
    x = F * np.ones(N)
    x[19] += 0.01
    for _ in range(1000):
        x = step(x)
    clim = np.empty((20000, N))
    xc = x.copy()
    for k in range(clim.shape[0]):
        xc = step(xc)
        clim[k] = xc
    b = xb * (np.cov(clim.T) if b_kind == "climatological" else np.eye(N))
    evals, evecs = np.linalg.eigh(b)
    b12 = (evecs * np.sqrt(np.maximum(evals, 0.0))) @ evecs.T
    window = lag * every
    total = (cycles - 1) * every + window
    truth = np.empty((total + 1, N))
    truth[0] = x
    for k in range(total):
        truth[k + 1] = step(truth[k])
    obs = truth + rng.standard_normal(truth.shape)  # used at steps divisible by `every`
    xa = truth[0] + rng.standard_normal(N)  # background of the first window

    errors = []
    start = time.perf_counter()
    for c in range(cycles):
        t0 = c * every
        tf = t0 + window
        y = obs[tf]
        if lag == 0:
            # Var3D: the Kalman update with B.
            gain = b @ np.linalg.inv(b + np.eye(N))
            xa = xa + gain @ (y - xa)
            analysis_tf = xa
            nxt = xa
            for _ in range(every):
                nxt = step(nxt)
        else:
            x0 = xa.copy()
            w = np.zeros(N)
            for _ in range(iterations):
                xw = x0 + b12 @ w
                big_x = b12.copy()
                for _ in range(window):
                    xw, m = step_tlm(xw)
                    big_x = m @ big_x
                dy = y - xw
                v, s, _ = np.linalg.svd(big_x.T, full_matrices=True)
                cow1 = (v * (np.pad(s ** 2, (0, N - s.size)) + 1.0) ** -1.0) @ v.T
                grad = big_x.T @ dy - w
                dw = cow1 @ grad
                w = w + dw
            analysis_tf = xw + big_x @ dw
            nxt = x0 + b12 @ w
            for _ in range(every):
                nxt = step(nxt)
        if c >= burn_in:
            errors.append(np.sqrt(np.mean((analysis_tf - truth[tf]) ** 2)))
        xa = nxt
    seconds = time.perf_counter() - start
    print("numpy_peer lag=%d cycles=%d rmse_filter=%.4f ms_per_cycle=%.3f"
          % (lag, cycles, float(np.mean(errors)), 1e3 * seconds / cycles))


if __name__ == "__main__":
    main()
