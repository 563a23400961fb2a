// Cost of one oracle Jacobian-vector product J v = d x_MAP / d y v on the Lorenz-96 window of the
// cycle's step 5 (n = 40, F = 8, dt = 0.05, 4 steps, identity observations at steps 0, 2, 4, R = I,
// B = I about an attractor state), side by side in one run:
//   - one incremental 4D-Var solve of the window (default options), for scale;
//   - Gauss-Newton J v (ObservationSensitivity): the dense Gauss-Newton P_a once, then one AD sweep;
//   - exact J v (ExactObservationSensitivity): one AD sweep, then CG on the full Hessian;
//   - central-difference J v: two tight 4D-Var solves at y +- h v.
// Then the stencil emulator of the cycle's step 3 (cycle::SixStepConfig's emulator: n = 40, r = 6,
// 16 channels, 1 hidden layer; the polynomial network trained on `emulator_pairs` Lorenz-96 pairs
// `stride` 5 apart for `emulator_epochs` epochs, the cycle's 150 by default; the mlp one untrained):
//   - the cost of one step, TL, AD and second-order adjoint (SOA) step, next to Lorenz-96's;
//   - the time to label `label_pairs` pairs of the step-5 problem (cycle::PredictorStepOptions::
//     default_problem(), 2 probes each) with the emulator's 4D-Var: exact J (its SOA) against central
//     differences of the MAP (the same emulator behind a model that declares no SOA: the path
//     WindowProblem::label_pair takes without one), and the largest relative difference of their J.
//   varflow_sensitivity_bench [repeats] [label_pairs] [emulator_pairs] [emulator_epochs]
//   (defaults 20, 100, 6000, 150; times are means over the repeats). Run with OMP_NUM_THREADS=1 for
//   single-thread times.
// Not a test: it prints tables and exits 0.
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "varflow/amortized/problems.h"
#include "varflow/core/stopwatch.h"
#include "varflow/covariance/covariances.h"
#include "varflow/cycle/predictor_step.h"
#include "varflow/emulator/stencil_emulator.h"
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

// A model forwarding step, TL and AD to another and declaring no second-order adjoint.
class WithoutSecondOrder final : public Model {
 public:
  explicit WithoutSecondOrder(std::shared_ptr<const Model> model) : model_(std::move(model)) {}
  Index state_size() const override { return model_->state_size(); }
  std::string name() const override { return model_->name() + " without SOA"; }

 protected:
  void do_step(Vector& x) const override { model_->step(x); }
  void do_step_tangent(const Vector& x, Vector& dx) const override { model_->step_tangent(x, dx); }
  void do_step_adjoint(const Vector& x, Vector& ax) const override { model_->step_adjoint(x, ax); }

 private:
  std::shared_ptr<const Model> model_;
};

// Mean microseconds of one step, TL, AD and SOA step of `model` at x (`calls` of each).
void time_steps(const Model& model, const Vector& x, Rng& rng, int calls) {
  const Index n = model.state_size();
  const Vector dx0 = rng.normal_vector(n), ax0 = rng.normal_vector(n);
  double sink = 0.0;
  Vector y, out;
  auto mean_us = [&](auto&& call) {
    call();  // warm-up
    Stopwatch clock;
    for (int i = 0; i < calls; ++i) call();
    return 1e6 * clock.seconds() / calls;
  };
  const double step = mean_us([&] { y = x; model.step(y); sink += y[0]; });
  const double tl = mean_us([&] { y = dx0; model.step_tangent(x, y); sink += y[0]; });
  const double ad = mean_us([&] { y = ax0; model.step_adjoint(x, y); sink += y[0]; });
  const double soa = mean_us([&] { model.step_second_order_adjoint(x, dx0, ax0, out); sink += out[0]; });
  std::printf("%-70s %8.1f %8.1f %8.1f %8.1f %8.2f\n", model.name().c_str(), step, tl, ad, soa, soa / ad);
  if (sink == 42.0) std::printf(" ");  // keep the calls
}

// Labels `pairs` simulated pairs of `problem` (2 probes each); returns the seconds and the labels.
double label_seconds(const amortized::WindowProblem& problem, const amortized::Dataset& data, Index pairs,
                     amortized::Dataset& labelled) {
  labelled = data;
  Rng probe_rng(77);  // the same probe directions for every model
  Stopwatch clock;
  problem.label(labelled, pairs, 2, probe_rng);
  return clock.seconds();
}

void emulator_section(int repeats, Index label_pairs, Index emulator_pairs, Index emulator_epochs) {
  Rng rng(20261203);
  const auto physics = std::make_shared<Lorenz96>(kN, 8.0, 0.05);
  emulator::StencilEmulatorConfig c;  // the cycle's step-3 emulator
  c.grid = kN;
  c.radius = 6;
  c.hidden = 16;
  c.layers = 1;
  auto polynomial = std::make_shared<emulator::StencilEmulator>(c);
  polynomial->initialize(rng);
  const auto pairs = emulator::simulate_pairs(*physics, Vector::Constant(kN, 8.0), emulator_pairs, 1000, 5, rng);
  const nn::TrainingOptions t = emulator::fixed_budget_training(emulator_epochs, 1e-2);
  Stopwatch train_clock;
  const nn::TrainingSummary summary = emulator::train_emulator(*polynomial, pairs, t, rng);
  std::printf("\n%s trained on %ld pairs, %ld epochs, %.1f s (final validation loss %.3g)\n",
              polynomial->name().c_str(), static_cast<long>(emulator_pairs), static_cast<long>(summary.epochs_run),
              train_clock.seconds(), summary.validation_loss.empty() ? -1.0 : summary.validation_loss.back());
  c.architecture = "mlp";
  auto mlp = std::make_shared<emulator::StencilEmulator>(c);
  mlp->initialize(rng);
  mlp->set_normalization(polynomial->x_mean(), polynomial->x_std(), polynomial->increment_std());

  const Vector x = pairs.states.col(0);
  std::printf("\none model step at an attractor state, mean us over %d calls\n", 200 * repeats);
  std::printf("%-70s %8s %8s %8s %8s %8s\n", "model", "step", "TL", "AD", "SOA", "SOA/AD");
  for (const Model* m : {static_cast<const Model*>(physics.get()), static_cast<const Model*>(polynomial.get()),
                         static_cast<const Model*>(mlp.get())}) {
    time_steps(*m, x, rng, 200 * repeats);
  }

  const amortized::WindowProblemOptions options = cycle::PredictorStepOptions::default_problem();
  const amortized::WindowProblem exact_problem(options, polynomial);
  const amortized::WindowProblem fd_problem(options, std::make_shared<WithoutSecondOrder>(polynomial));
  Rng data_rng(5);
  const amortized::Dataset data = exact_problem.simulate(label_pairs, data_rng);
  amortized::Dataset exact_labels, fd_labels;
  const double fd_s = label_seconds(fd_problem, data, label_pairs, fd_labels);
  const double exact_s = label_seconds(exact_problem, data, label_pairs, exact_labels);
  double worst = 0.0;
  for (Index j = 0; j < exact_labels.labels.dx.cols(); ++j) {
    const Vector a = exact_labels.labels.dx.col(j), b = fd_labels.labels.dx.col(j);
    worst = std::max(worst, (a - b).norm() / b.norm());
  }
  std::printf("\nlabelling %ld pairs of the step-5 problem (MAP + J on 2 probes each) with the emulator's 4D-Var\n",
              static_cast<long>(label_pairs));
  std::printf("  central differences of the MAP (no SOA): %.2f s\n", fd_s);
  std::printf("  exact J (full Hessian, emulator SOA):    %.2f s  (%.1fx faster)\n", exact_s, fd_s / exact_s);
  std::printf("  largest ||J_exact v - J_cd v|| / ||J_cd v|| over the %ld probes: %.2e\n",
              static_cast<long>(exact_labels.labels.dx.cols()), worst);
}

}  // namespace

int main(int argc, char** argv) {
  const int repeats = argc > 1 ? std::atoi(argv[1]) : 20;
  const Index label_pairs = argc > 2 ? std::atol(argv[2]) : 100;
  const Index emulator_pairs = argc > 3 ? std::atol(argv[3]) : 6000;
  const Index emulator_epochs = argc > 4 ? std::atol(argv[4]) : 150;
  if (repeats < 1 || label_pairs < 1 || emulator_pairs < 2 || emulator_epochs < 1) {
    std::cerr << "usage: varflow_sensitivity_bench [repeats >= 1] [label_pairs >= 1] [emulator_pairs >= 2] "
                 "[emulator_epochs >= 1]\n";
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
  emulator_section(repeats, label_pairs, emulator_pairs, emulator_epochs);
  return 0;
}
