// Would a Gauss-Newton backbone let a background-conditioned predictor pass the gates? The amortized
// analysis of the cycle (validation/amortized-cycling/, design/solvers.md) is refused by adjoint
// calibration: its mean's Jacobian d x_a / d (x_b, y) is 13-21% off the oracle's. The method change
// proposed there is a background-dependent linear backbone, the 4D-Var gain at x_b, with the network
// modelling what remains. This bench measures that backbone alone, before any network: the analysis
// after L Gauss-Newton outer loops from x_b (L = 1: x_b + K(x_b) (y - h(x_b)), the gain at the
// background; the inner loops solved to 1e-10), against the gates' oracle (incremental 4D-Var to
// convergence, exact J, the Laplace posterior), on the problem of validation/amortized-cycling/
// train.yaml: Lorenz-96 n = 40, 8-step window, every point observed at steps 4 and 8, R = I,
// B = 0.4 I about a climatological background carried in y.
//
// Per event and L:
//   - probe error: the adjoint-calibration gate's measure (validation/adjoint_calibration.h), 20
//     random unit probes in the whole of y (background and observations),
//     ||J_L v - J v|| / ||J v||, J_L by central differences of the L-loop analysis (step 1e-4);
//   - agreement: max_i |x_L - x_a|_i / sd_i, the posterior-agreement measure, sd the oracle's
//     Laplace marginal standard deviation;
//   - TL + AD sweeps of the L-loop solve against those of the oracle's solve.
// The row "converged" differences the oracle's own MAP: it checks the differencing (its error
// should be ~1e-6). Not a test: it prints a table and exits 0.
//   varflow_cycled_backbone_bench [--events 10] [--loops 1,2,3] [--seed 1] [--window 8] [--variance 0.4]
// (--window 4 --variance 0.2: DAPPER's Var4D lag-1 window, validation/dapper/.)
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "varflow/amortized/problems.h"
#include "varflow/report/oracles.h"
#include "varflow/validation/adjoint_calibration.h"
#include "varflow/var/incremental_4dvar.h"

using namespace varflow;

namespace {

// The cycled problem: `window` steps, every point observed every 4 steps from step 4, R = I,
// B = variance I about the background.
amortized::WindowProblemOptions cycled_problem(Index window, double variance) {
  amortized::WindowProblemOptions o;
  o.window = window;
  o.obs_every = 4;
  o.obs_first = 4;
  o.obs_stride = 1;
  o.missing = 0.0;
  o.obs_noise = 1.0;
  o.prior = amortized::WindowPrior::kBackground;
  o.prior_sd = std::sqrt(variance);
  return o;
}

struct Backbone {
  Vector analysis;
  Index sweeps = 0;  // TL + AD
};

// The analysis after `loops` Gauss-Newton outer loops from the background (0: to convergence).
Backbone gauss_newton(const amortized::WindowProblem& problem, const Vector& y, int loops) {
  GaussNewtonOptions o;
  o.posterior = PosteriorMethod::kNone;
  if (loops > 0) {
    o.max_outer_iterations = loops;
  } else {  // central differences divide the MAP's error by 2h
    o.max_outer_iterations = 60;
    o.gradient_tolerance = 1e-13;
    o.step_tolerance = 1e-15;
    o.inner_tolerance = 1e-12;
  }
  SolverSummary summary;
  const VarResult r = IncrementalFourDVar(o).solve(problem.window(y), &summary);
  return {r.analysis, summary.num_tl_sweeps + summary.num_ad_sweeps};
}

// d analysis / d y by central differences in every entry of y.
Matrix differenced_jacobian(const amortized::WindowProblem& problem, const Vector& y, int loops, double h) {
  Matrix j(problem.shape().state_size, y.size());
  Vector yp = y;
  for (Index k = 0; k < y.size(); ++k) {
    yp[k] = y[k] + h;
    const Vector plus = gauss_newton(problem, yp, loops).analysis;
    yp[k] = y[k] - h;
    const Vector minus = gauss_newton(problem, yp, loops).analysis;
    yp[k] = y[k];
    j.col(k) = (plus - minus) / (2.0 * h);
  }
  return j;
}

JacobianOperator dense(const Matrix& j) {
  return {[j](const Vector& v) -> Vector { return j * v; }, [j](const Vector& w) -> Vector { return j.transpose() * w; },
          j.cols(), j.rows()};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"A Gauss-Newton backbone for the cycled amortized analysis: the analysis after L outer loops from the "
               "background, against the gates' 4D-Var oracle (Jacobian probe error, agreement, sweeps)"};
  int events = 10;
  std::vector<int> loops{1, 2, 3};
  std::uint64_t seed = 1;
  app.add_option("--events", events, "events drawn from the cycled problem")->check(CLI::Range(1, 10000));
  app.add_option("--loops", loops, "outer-loop counts L, comma separated (0: to convergence)")
      ->delimiter(',')
      ->check(CLI::Range(0, 100));
  app.add_option("--seed", seed, "seed of the events and probes");
  Index window = 8;
  double variance = 0.4;
  app.add_option("--window", window, "window steps (observations every 4 steps from step 4)")
      ->check(CLI::Range(4, 400));
  app.add_option("--variance", variance, "B = variance I")->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);

  const amortized::WindowProblemOptions o = cycled_problem(window, variance);
  const amortized::WindowProblem problem(o);
  report::ValidationOptions v;
  v.window_problem = o;
  v.window_jacobian = report::OracleJacobian::kExact;
  auto oracle = report::make_oracle("lorenz96", problem.shape(), v);
  std::printf("%s\nseed %llu, %d events, 20 probes each; gates: probe error <= 0.05, rho <= 0.10, agreement <= 1\n\n",
              problem.describe().c_str(), static_cast<unsigned long long>(seed), events);

  Rng rng(seed);
  const amortized::Dataset data = problem.simulate(events, rng);
  struct Stats {
    std::vector<double> probe_max, probe_mean, rho, agreement, sweeps;
  };
  std::vector<Stats> stats(loops.size());
  std::vector<double> oracle_sweeps;
  for (int e = 0; e < events; ++e) {
    const Vector y = data.y.col(e);
    const auto posterior = oracle->posterior(y);
    const Vector xa = posterior->mean(), sd = posterior->marginal_std();
    const JacobianOperator exact = oracle->jacobian(y);
    oracle_sweeps.push_back(static_cast<double>(gauss_newton(problem, y, 20).sweeps));
    for (std::size_t l = 0; l < loops.size(); ++l) {
      const Backbone b = gauss_newton(problem, y, loops[l]);
      const Matrix j = differenced_jacobian(problem, y, loops[l], 1e-4);
      Rng probe_rng(seed * 1000 + static_cast<std::uint64_t>(e));
      const JacobianProbeResult p = probe_jacobian({"backbone", dense(j), exact}, probe_rng);
      stats[l].probe_max.push_back(p.max_probe_error);
      stats[l].probe_mean.push_back(p.mean_probe_error);
      stats[l].rho.push_back(p.relative_operator_norm_difference);
      stats[l].agreement.push_back(((b.analysis - xa).cwiseAbs().array() / sd.array()).maxCoeff());
      stats[l].sweeps.push_back(static_cast<double>(b.sweeps));
    }
    std::fprintf(stderr, "event %d of %d\n", e + 1, events);
  }
  auto mean = [](const std::vector<double>& x) {
    double s = 0.0;
    for (double value : x) s += value;
    return s / static_cast<double>(x.size());
  };
  auto max = [](const std::vector<double>& x) { return *std::max_element(x.begin(), x.end()); };
  std::printf("%-12s %16s %16s %16s %18s %14s\n", "outer loops", "probe max: mean", "probe max: worst",
              "rho: mean/worst", "agreement: mean/worst", "sweeps (TL+AD)");
  for (std::size_t l = 0; l < loops.size(); ++l) {
    const Stats& s = stats[l];
    char name[32];
    if (loops[l] == 0) std::snprintf(name, sizeof name, "converged");
    else std::snprintf(name, sizeof name, "%d", loops[l]);
    std::printf("%-12s %16.4f %16.4f %8.4f/%-7.4f %9.3f/%-8.3f %14.1f\n", name, mean(s.probe_max), max(s.probe_max),
                mean(s.rho), max(s.rho), mean(s.agreement), max(s.agreement), mean(s.sweeps));
  }
  std::printf("%-12s %16s %16s %16s %18s %14.1f\n", "oracle (20)", "-", "-", "-", "-", mean(oracle_sweeps));
  return 0;
}
