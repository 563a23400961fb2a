#!/usr/bin/env python3
"""A numpy/scipy peer of varflow's 4D-Var cycle at scale (bench/scale_bench.cpp runs it).

Lorenz-96 (F, dt from the command line), every variable observed every OBS_EVERY steps with
R = r I, B = b I, back-to-back windows of W steps: window c starts at t0 = c W and assimilates the
observations at (t0, t0 + W] (cycle 0 also the one at t0), as varflow's default cycling does. The
next background is the analysis forecast to the window end. Everything is matrix-free (np.roll
stencils), so it runs at any n:
  strong       strong-constraint 4D-Var in the whitened control v (x0 = xb + sqrt(b) v) by scipy's
               L-BFGS-B with the adjoint gradient;
  incremental  Gauss-Newton outer loops, each inner system (I + b/r M^T M) dv = -g solved by
               scipy.sparse.linalg.cg on a LinearOperator (one TL and one AD sweep per product).
Both then take the RANK leading eigenpairs of the prior-preconditioned Gauss-Newton Hessian at the
MAP with scipy.sparse.linalg.eigsh (the low-rank Laplace posterior) and report its spread.

The problem (the first background and the observations) is read from the files varflow's bench
wrote, so both solve the same windows. Writes the analyses (cycles x n, float64) to OUT and prints
one line: `scale_peer ms_per_cycle=<t> tl_per_cycle=<a> ad_per_cycle=<b> spread=<s> peak_mb=<m>`
(times are CPU seconds of the cycles alone, file reading excluded; spread is the mean over cycles >= BURN_IN).
Usage: scale_numpy_peer.py METHOD N F DT W OBS_EVERY B R CYCLES BURN_IN RANK GTOL MAX_OUTER
                           INNER_TOL BACKGROUND_FILE OBS_FILE OUT
"""
import resource
import sys
import time

import numpy as np

try:
    import scipy.optimize
    import scipy.sparse.linalg as sla
except ImportError:
    print("scale_peer not run: scipy is missing (python3-scipy)")
    sys.exit(0)


class Lorenz96:
    """RK4 step of Lorenz-96 with its tangent-linear and adjoint at stored stage states."""

    def __init__(self, forcing, dt):
        self.forcing, self.dt = forcing, dt
        self.tl_sweeps = 0
        self.ad_sweeps = 0

    def tendency(self, x):
        return (np.roll(x, -1) - np.roll(x, 2)) * np.roll(x, 1) - x + self.forcing

    @staticmethod
    def tendency_tl(x, dx):
        return (np.roll(dx, -1) - np.roll(dx, 2)) * np.roll(x, 1) + (np.roll(x, -1) - np.roll(x, 2)) * np.roll(dx, 1) - dx

    @staticmethod
    def tendency_ad(x, w):
        u = w * np.roll(x, 1)
        return np.roll(u, 1) - np.roll(u, -2) + np.roll(w * (np.roll(x, -1) - np.roll(x, 2)), -1) - w

    def step(self, x):
        """The next state and the four stage states."""
        dt = self.dt
        k1 = self.tendency(x)
        x2 = x + 0.5 * dt * k1
        k2 = self.tendency(x2)
        x3 = x + 0.5 * dt * k2
        k3 = self.tendency(x3)
        x4 = x + dt * k3
        k4 = self.tendency(x4)
        return x + dt / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4), (x, x2, x3, x4)

    def step_tl(self, stages, dx):
        dt = self.dt
        x1, x2, x3, x4 = stages
        d1 = self.tendency_tl(x1, dx)
        d2 = self.tendency_tl(x2, dx + 0.5 * dt * d1)
        d3 = self.tendency_tl(x3, dx + 0.5 * dt * d2)
        d4 = self.tendency_tl(x4, dx + dt * d3)
        return dx + dt / 6.0 * (d1 + 2.0 * d2 + 2.0 * d3 + d4)

    def step_ad(self, stages, w):
        dt = self.dt
        x1, x2, x3, x4 = stages
        g4 = self.tendency_ad(x4, dt / 6.0 * w)
        g3 = self.tendency_ad(x3, dt / 3.0 * w + dt * g4)
        g2 = self.tendency_ad(x2, dt / 3.0 * w + 0.5 * dt * g3)
        g1 = self.tendency_ad(x1, dt / 6.0 * w + 0.5 * dt * g2)
        return w + g1 + g2 + g3 + g4


class Window:
    """One strong-constraint window: trajectory from x0, observation steps and values."""

    def __init__(self, model, steps, obs_steps, obs_values, b, r):
        self.model, self.steps = model, steps
        self.obs = dict(zip(obs_steps, obs_values))
        self.sb, self.r = np.sqrt(b), r

    def run(self, x0):
        """Trajectory (stage states per step) and the state at every step."""
        states, stages = [x0], []
        x = x0
        for _ in range(self.steps):
            x, s = self.model.step(x)
            states.append(x)
            stages.append(s)
        return states, stages

    def tl(self, stages, dx0):
        """The tangent of the observed states, {step: dx}."""
        self.model.tl_sweeps += 1
        out = {}
        dx = dx0
        if 0 in self.obs:
            out[0] = dx
        for k in range(self.steps):
            dx = self.model.step_tl(stages[k], dx)
            if k + 1 in self.obs:
                out[k + 1] = dx
        return out

    def ad(self, stages, forcing):
        """Adjoint of tl: {step: w} -> dx0."""
        self.model.ad_sweeps += 1
        n = stages[0][0].size if stages else next(iter(forcing.values())).size
        w = np.zeros(n)
        for k in range(self.steps, 0, -1):
            if k in forcing:
                w = w + forcing[k]
            w = self.model.step_ad(stages[k - 1], w)
        if 0 in forcing:
            w = w + forcing[0]
        return w

    def residuals(self, states):
        return {t: (states[t] - y) / self.r for t, y in self.obs.items()}

    def cost_gradient(self, xb, v):
        """J(v) and dJ/dv (one forward run and one AD sweep)."""
        states, stages = self.run(xb + self.sb * v)
        res = self.residuals(states)
        cost = 0.5 * v @ v + 0.5 * sum(d @ d * self.r for d in res.values())
        return cost, v + self.sb * self.ad(stages, res), states, stages

    def hessian(self, stages):
        """The whitened Gauss-Newton data term dv -> b/r M^T M dv as a LinearOperator."""
        n = stages[0][0].size

        def matvec(dv):
            dv = np.ravel(dv)
            forcing = {t: d / self.r for t, d in self.tl(stages, self.sb * dv).items()}
            return self.sb * self.ad(stages, forcing)

        return sla.LinearOperator((n, n), matvec=matvec, dtype=np.float64)


def strong(window, xb, gtol, max_outer, inner_tol):
    del max_outer, inner_tol
    n = xb.size
    g0 = np.linalg.norm(window.cost_gradient(xb, np.zeros(n))[1])

    def fun(v):
        cost, grad, _, _ = window.cost_gradient(xb, v)
        return cost, grad

    # L-BFGS-B stops on the largest gradient component: gtol ||g0|| / sqrt(n) on it bounds the
    # Euclidean norm by gtol ||g0||, varflow's test.
    res = scipy.optimize.minimize(fun, np.zeros(n), jac=True, method="L-BFGS-B",
                                  options={"gtol": gtol * g0 / np.sqrt(n), "ftol": 1e-15, "maxiter": 2000,
                                           "maxcor": 20})
    return res.x


def incremental(window, xb, gtol, max_outer, inner_tol):
    n = xb.size
    v = np.zeros(n)
    g0 = None
    for _ in range(max_outer):
        _, g, _, stages = window.cost_gradient(xb, v)
        if g0 is None:
            g0 = np.linalg.norm(g)
        if np.linalg.norm(g) <= gtol * g0:
            break
        data = window.hessian(stages)
        op = sla.LinearOperator((n, n), matvec=lambda dv: np.ravel(dv) + data.matvec(dv), dtype=np.float64)
        dv, _ = sla.cg(op, -g, tol=inner_tol, maxiter=200)
        v = v + dv
    return v


def main():
    if len(sys.argv) != 18:
        sys.exit(__doc__)
    method = sys.argv[1]
    n, forcing, dt, w, every = int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
    b, r, cycles, burn_in, rank = float(sys.argv[7]), float(sys.argv[8]), int(sys.argv[9]), int(sys.argv[10]), int(sys.argv[11])
    gtol, max_outer, inner_tol = float(sys.argv[12]), int(sys.argv[13]), float(sys.argv[14])
    background_file, obs_file, out_file = sys.argv[15:18]
    solvers = {"strong": strong, "incremental": incremental}
    if method not in solvers:
        sys.exit("scale_numpy_peer.py: METHOD = '%s' is not one of: strong, incremental" % method)
    model = Lorenz96(forcing, dt)
    xb = np.fromfile(background_file, dtype=np.float64)
    obs = np.fromfile(obs_file, dtype=np.float64).reshape(-1, n)  # row k: the observation at step k * every
    if xb.size != n:
        sys.exit("scale_numpy_peer.py: %s holds %d values, not n = %d" % (background_file, xb.size, n))

    analyses = np.empty((cycles, n))
    spreads = []
    start = time.process_time()
    for c in range(cycles):
        t0 = c * w
        steps = [t for t in range(t0, t0 + w + 1) if t % every == 0 and (t > t0 or c == 0)]
        window = Window(model, w, [t - t0 for t in steps], [obs[t // every] for t in steps], b, r)
        v = solvers[method](window, xb, gtol, max_outer, inner_tol)
        x0 = xb + window.sb * v
        states, stages = window.run(x0)
        # The low-rank Laplace posterior at the MAP: P = b (I - V diag(l / (1 + l)) V^T).
        lam, vec = sla.eigsh(window.hessian(stages), k=min(rank, n - 1), which="LM", tol=1e-10)
        lam = np.maximum(lam, 0.0)
        variance = b * (1.0 - (vec ** 2) @ (lam / (1.0 + lam)))
        if c >= burn_in:
            spreads.append(np.sqrt(np.mean(variance)))
        analyses[c] = x0
        xb = states[-1]
    seconds = time.process_time() - start
    analyses.tofile(out_file)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print("scale_peer ms_per_cycle=%.3f tl_per_cycle=%.1f ad_per_cycle=%.1f spread=%.4f peak_mb=%.1f"
          % (1e3 * seconds / cycles, model.tl_sweeps / cycles, model.ad_sweeps / cycles, float(np.mean(spreads)),
             peak_mb))


if __name__ == "__main__":
    main()
