"""Plain numpy RK4 of Lorenz-96 (np.roll for the periodic neighbours), the peer of
varflow_model_kernel_bench. Usage: model_kernel_numpy_peer.py n [n ...]. For each n prints one line
`n=<n> ns_per_var=<best ns per variable per forward step>`, the best of 5 timed runs of at least
0.1 s of thread CPU time (time.thread_time) each, from a state spun up from F + small noise."""
import sys
import time

import numpy as np

F, DT = 8.0, 0.05


def tendency(x):
    return (np.roll(x, -1) - np.roll(x, 2)) * np.roll(x, 1) - x + F


def step(x):
    k1 = tendency(x)
    k2 = tendency(x + 0.5 * DT * k1)
    k3 = tendency(x + 0.5 * DT * k2)
    k4 = tendency(x + DT * k3)
    return x + (DT / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


def main():
    rng = np.random.default_rng(1)
    for n in (int(a) for a in sys.argv[1:]):
        x = F + 0.01 * rng.standard_normal(n)
        for _ in range(20):
            x = step(x)
        steps = max(1, int(2e6 // n))
        best = float("inf")
        for _ in range(5):
            done, start = 0, time.thread_time()
            while True:
                for _ in range(steps):
                    x = step(x)
                done += steps
                elapsed = time.thread_time() - start
                if elapsed >= 0.1:
                    break
            best = min(best, elapsed / done / n * 1e9)
        print(f"n={n} ns_per_var={best:.3f}", flush=True)


if __name__ == "__main__":
    main()
