// Cost of one oracle Jacobian-vector product J v = d x_MAP / d y v on the Lorenz-96 window of the
// cycle's step 5 (n = 40, F = 8, dt = 0.05, 4 steps, identity observations at steps 0, 2, 4, R = I,
// B = I about an attractor state), side by side in one run:
//   - one incremental 4D-Var solve of the window (default options), for scale;
//   - Gauss-Newton J v (ObservationSensitivity): the dense Gauss-Newton P_a once, then one AD sweep;
//   - exact J v (ExactObservationSensitivity): one AD sweep, then CG on the full Hessian;
//   - central-difference J v: two tight 4D-Var solves at y +- h v.
//   varflow_sensitivity_bench [repeats]     (default 20; times are means over the repeats)
// Not a test: it prints a table and exits 0.
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "varflow/core/stopwatch.h"
#include "varflow/covariance/covariances.h"
#include "varflow/model/lorenz96.h"
#include "varflow/obs/operators.h"
#include "varflow/var/exact_sensitivity.h"
#include "varflow/var/laplace.h"
#include "varflow/var/sensitivity.h"
#include "varflow/var/incremental_4dvar.h"

using namespace varflow;

namespace {

constexpr Index kN = 40;

AssimilationWindow step5_window(Rng& rng) {
  auto model = std::make_shared<Lorenz96>(kN, 8.0, 0.05);
  Vector c = Vector::Constant(kN, 8.0) + 0.01 * rng.normal_vector(kN);
  for (int k = 0; k < 1000; ++k) model->step(c);
  AssimilationWindow w;
  w.model = model;
  w.steps = 4;
  w.background = c;
  w.b = std::make_shared<DiagonalCovariance>(DiagonalCovariance::scaled_identity(kN, 1.0));
  auto op = std::make_shared<IdentityObservation>(kN);
  auto r = std::make_shared<DiagonalCovariance>(DiagonalCovariance::scaled_identity(kN, 1.0));
  Vector x = c + rng.normal_vector(kN);
  for (Index k = 0; k <= 4; ++k) {
    if (k % 2 == 0) {
      Observations o;
      o.step = k;
      o.values = x + rng.normal_vector(kN);
      o.op = op;
      o.r = r;
      w.observations.push_back(o);
    }
    if (k < 4) model->step(x);
  }
  return w;
}

AssimilationWindow shifted(const AssimilationWindow& w, const Vector& dy) {
  AssimilationWindow out = w;
  for (std::size_t s = 0; s < out.observations.size(); ++s) {
    out.observations[s].values += dy.segment(static_cast<Index>(s) * kN, kN);
  }
  return out;
}

GaussNewtonOptions solve_options(bool tight) {
  GaussNewtonOptions o;
  o.posterior = PosteriorMethod::kNone;
  if (tight) {  // central differences divide MAP errors by 2h
    o.max_outer_iterations = 60;
    o.gradient_tolerance = 1e-13;
    o.step_tolerance = 1e-15;
    o.inner_tolerance = 1e-12;
  }
  return o;
}

struct Row {
  double seconds = 0.0;
  double tl = 0.0, ad = 0.0, soa = 0.0, fwd = 0.0, cg = 0.0;
  double error = -1.0;  // relative to the central difference (-1: the reference itself / not applicable)
};

void print(const char* name, const Row& r) {
  std::printf("%-34s %10.1f %6.1f %6.1f %6.1f %6.1f %6.1f ", name, r.seconds * 1e6, r.cg, r.fwd, r.tl, r.ad, r.soa);
  if (r.error >= 0.0) std::printf("%10.2e\n", r.error);
  else std::printf("%10s\n", "-");
}

}  // namespace

int main(int argc, char** argv) {
  const int repeats = argc > 1 ? std::atoi(argv[1]) : 20;
  if (repeats < 1) {
    std::cerr << "usage: varflow_sensitivity_bench [repeats >= 1]\n";
    return 2;
  }
  Rng rng(20241201);
  const AssimilationWindow w = step5_window(rng);
  const Index m = w.observation_size();
  const double h = 1e-3;
  const double per = 1.0 / repeats;
  auto counted = [](const SweepCounts& c, Row& row, double scale) {
    row.fwd += scale * static_cast<double>(c.forward_runs);
    row.tl += scale * static_cast<double>(c.tl_sweeps);
    row.ad += scale * static_cast<double>(c.ad_sweeps);
    row.soa += scale * static_cast<double>(c.soa_sweeps);
  };

  // One 4D-Var solve (default options, no posterior).
  Row solve;
  for (int i = 0; i < repeats; ++i) {
    SolverSummary s;
    Stopwatch clock;
    IncrementalFourDVar(solve_options(false)).solve(w, &s);
    solve.seconds += per * clock.seconds();
    solve.fwd += per * static_cast<double>(s.num_forward_runs);
    solve.tl += per * static_cast<double>(s.num_tl_sweeps);
    solve.ad += per * static_cast<double>(s.num_ad_sweeps);
  }
  const VarResult map = IncrementalFourDVar(solve_options(true)).solve(w);
  const Linearization& lin = *map.map;
  const FourDVarCost& cost = lin.cost_function();

  // One sweep of each kind at the MAP, for scale.
  double tl_us = 0.0, ad_us = 0.0, hess_us = 0.0;
  {
    const Vector dz = rng.normal_vector(kN), dy = rng.normal_vector(m);
    double sink = lin.full_hessian_multiply(dz)[0];  // warm-up (and the one-off departure adjoint)
    const int sweeps = 50 * repeats;
    Stopwatch t0;
    for (int i = 0; i < sweeps; ++i) sink += lin.tangent(dz)[0];
    tl_us = 1e6 * t0.seconds() / sweeps;
    Stopwatch t1;
    for (int i = 0; i < sweeps; ++i) sink += lin.adjoint(dy)[0];
    ad_us = 1e6 * t1.seconds() / sweeps;
    Stopwatch t2;
    for (int i = 0; i < sweeps; ++i) sink += lin.full_hessian_multiply(dz)[0];
    hess_us = 1e6 * t2.seconds() / sweeps;
    if (sink == 42.0) std::printf(" ");  // keep the sweeps
  }

  Row gn_setup, gn, exact, fd;
  for (int i = 0; i < repeats; ++i) {
    const Vector v = rng.normal_vector(m).normalized();
    // Central differences of the MAP (2 tight solves).
    Row fd_i;
    Vector reference;
    {
      SolverSummary sp, sm;
      Stopwatch clock;
      const Vector plus = IncrementalFourDVar(solve_options(true)).solve(shifted(w, h * v), &sp).analysis;
      const Vector minus = IncrementalFourDVar(solve_options(true)).solve(shifted(w, -h * v), &sm).analysis;
      reference = (plus - minus) / (2.0 * h);
      fd.seconds += per * clock.seconds();
      fd.fwd += per * static_cast<double>(sp.num_forward_runs + sm.num_forward_runs);
      fd.tl += per * static_cast<double>(sp.num_tl_sweeps + sm.num_tl_sweeps);
      fd.ad += per * static_cast<double>(sp.num_ad_sweeps + sm.num_ad_sweeps);
    }
    // Gauss-Newton: P_a (dense, control_size TL sweeps) once, then one AD sweep per J v.
    cost.reset_counts();
    Stopwatch clock_setup;
    const ObservationSensitivity gauss_newton(lin, laplace_covariance_dense(lin));
    gn_setup.seconds += per * clock_setup.seconds();
    counted(cost.counts(), gn_setup, per);
    cost.reset_counts();
    Stopwatch clock_gn;
    const Vector jg = gauss_newton.apply(v);
    gn.seconds += per * clock_gn.seconds();
    counted(cost.counts(), gn, per);
    gn.error = std::max(gn.error, (jg - reference).norm() / reference.norm());
    // Exact: a fresh sensitivity object on a fresh copy of the linearisation, so that the one-off AD
    // sweep of the departures is counted in every J v.
    const Linearization fresh = cost.linearize(lin.control());
    cost.reset_counts();
    Stopwatch clock_ex;
    const ExactObservationSensitivity sensitivity(fresh);
    const ExactSensitivityResult e = sensitivity.apply_with_info(v);
    exact.seconds += per * clock_ex.seconds();
    counted(cost.counts(), exact, per);
    exact.cg += per * e.cg_iterations;
    exact.error = std::max(exact.error, (e.value - reference).norm() / reference.norm());
  }
  std::printf("Lorenz-96 n = 40, F = 8, dt = 0.05, window 4 steps, identity obs at steps 0, 2, 4, R = I, B = I\n");
  std::printf("means over %d random unit v; error = max over v of ||J v - CD|| / ||CD||, CD = central differences "
              "of the MAP (h = %g, two tight solves)\n\n", repeats, h);
  std::printf("one TL sweep %.1f us, one AD sweep %.1f us, one full Hessian product (TL + SOA sweep) %.1f us\n\n",
              tl_us, ad_us, hess_us);
  std::printf("%-34s %10s %6s %6s %6s %6s %6s %10s\n", "operation", "us", "CG", "fwd", "TL", "AD", "SOA", "error");
  print("4D-Var solve (default options)", solve);
  print("central-difference J v (2 solves)", fd);
  print("Gauss-Newton P_a (dense, once)", gn_setup);
  print("Gauss-Newton J v (given P_a)", gn);
  print("exact J v (full Hessian, CG)", exact);
  return 0;
}
