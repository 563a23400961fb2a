// Cost of the variational solvers in the default cycling experiment (Lorenz-96, n = 40), per cycle
// and per tangent-linear / adjoint sweep, side by side in one run:
//   varflow_solver_bench [cycles]        (default 40 cycles, burn-in 10)
// Not a test: it prints a table and exits 0.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "varflow/covariance/covariances.h"
#include "varflow/experiment/twin_experiment.h"
#include "varflow/obs/operators.h"
#include "varflow/var/cost.h"

using namespace varflow;

namespace {

using Clock = std::chrono::steady_clock;

// Seconds per TL sweep and per AD sweep over one default window, averaged over `repeats` sweeps.
void sweep_cost(const TwinExperimentConfig& c, int repeats, double* tl_seconds, double* ad_seconds) {
  const Index n = c.model->state_size();
  Vector x = c.truth_start;
  for (Index k = 0; k < c.spin_up_steps; ++k) c.model->step(x);
  AssimilationWindow w;
  w.model = c.model;
  w.steps = c.window_steps;
  w.background = x;
  w.b = std::make_shared<DiagonalCovariance>(DiagonalCovariance::scaled_identity(n, c.b_variance));
  auto op = std::make_shared<IdentityObservation>(n);
  auto r = std::make_shared<DiagonalCovariance>(DiagonalCovariance::scaled_identity(n, c.obs_error_variance));
  for (Index s = 0; s < c.window_steps; s += c.obs_every_steps) {
    Observations o;
    o.step = s;
    o.values = Vector::Zero(n);
    o.op = op;
    o.r = r;
    w.observations.push_back(o);
  }
  const FourDVarCost cost(w);
  const Linearization lin = cost.linearize(x);
  Rng rng(1);
  const Vector dz = rng.normal_vector(n);
  const Vector dy = rng.normal_vector(cost.observation_size());
  double sink = 0.0;
  for (int i = 0; i < repeats / 4; ++i) sink += lin.tangent(dz)[0] + lin.adjoint(dy)[0];  // warm-up
  auto t0 = Clock::now();
  for (int i = 0; i < repeats; ++i) sink += lin.tangent(dz)[0];
  auto t1 = Clock::now();
  for (int i = 0; i < repeats; ++i) sink += lin.adjoint(dy)[0];
  auto t2 = Clock::now();
  *tl_seconds = std::chrono::duration<double>(t1 - t0).count() / repeats;
  *ad_seconds = std::chrono::duration<double>(t2 - t1).count() / repeats;
  if (sink == 42.0) std::cout << "";  // keep the sweeps
}

}  // namespace

int main(int argc, char** argv) {
  const Index cycles = argc > 1 ? std::atol(argv[1]) : 40;
  if (cycles < 2) {
    std::cerr << "usage: varflow_solver_bench [cycles >= 2]\n";
    return 2;
  }
  const TwinExperimentConfig base = default_twin_experiment_config();
  double tl = 0.0, ad = 0.0;
  sweep_cost(base, 2000, &tl, &ad);
  std::printf("Lorenz-96 n=40, window %ld steps, obs every %ld steps, R = I, B = %.2g I; %ld cycles (burn-in %ld)\n",
              static_cast<long>(base.window_steps), static_cast<long>(base.obs_every_steps), base.b_variance,
              static_cast<long>(cycles), static_cast<long>(cycles / 4));
  std::printf("one TL sweep %.2f us, one AD sweep %.2f us (8-step window)\n\n", tl * 1e6, ad * 1e6);
  std::printf("%-18s %8s %8s %10s %9s %9s %9s %12s %10s\n", "method", "a_rmse", "spread", "ms/cycle", "TL/cycle",
              "AD/cycle", "fwd/cycle", "cycle/sweep", "overhead");
  for (VarMethod m : {VarMethod::kIncremental4DVar, VarMethod::kStrong4DVar, VarMethod::kWeak4DVar, VarMethod::k3DVar}) {
    TwinExperimentConfig c = base;
    c.method = m;
    c.cycles = cycles;
    c.burn_in = cycles / 4;
    if (m == VarMethod::k3DVar) {  // one observation time per window: twice the cycles for the same span
      c.window_steps = 0;
      c.shift_steps = c.obs_every_steps;
      c.cycles = 2 * cycles;
      c.burn_in = cycles / 2;
    }
    const TwinExperimentResult r = run_twin_experiment(c);
    double fwd = 0.0;
    for (Index i = r.burn_in; i < static_cast<Index>(r.cycles.size()); ++i) {
      fwd += static_cast<double>(r.cycles[static_cast<std::size_t>(i)].num_forward_runs);
    }
    fwd /= static_cast<double>(r.cycles.size() - static_cast<std::size_t>(r.burn_in));
    // A 3D-Var cycle spans one observation interval (4 steps): scale the 8-step sweep cost as before.
    const double scale = static_cast<double>(c.shift()) / static_cast<double>(base.window_steps);
    const double pair = (tl + ad) * scale;
    // cycle/sweep: the cycle's wall time in units of one TL + AD pair; overhead: that over the counted
    // pairs (1 = all time in the sweeps; forward runs, Ceres or Krylov work and the posterior add to it).
    const double equivalents = r.mean_seconds / pair;
    const double counted = 0.5 * (r.mean_tl_sweeps + r.mean_ad_sweeps);
    std::printf("%-18s %8.3f %8.3f %10.3f %9.1f %9.1f %9.1f %12.1f %10.2f\n", to_string(m).c_str(), r.mean_analysis_rmse,
                r.mean_spread, r.mean_seconds * 1e3, r.mean_tl_sweeps, r.mean_ad_sweeps, fwd, equivalents,
                counted > 0.0 ? equivalents / counted : 0.0);
  }
  return 0;
}
