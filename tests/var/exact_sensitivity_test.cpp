// The exact sensitivity d x_MAP / d y (full Hessian, second-order adjoints) against central
// differences of the MAP on the Lorenz-96 window of the cycle's step 5, next to the Gauss-Newton one;
// J^T is the adjoint of J; exactness on a linear problem; negative curvature is reported. The same
// comparison with the stencil emulator (both architectures) as the window's model.
#include <gtest/gtest.h>

#include <Eigen/Eigenvalues>
#include <cmath>
#include <iostream>
#include <string>

#include "problems.h"
#include "varflow/core/error.h"
#include "varflow/emulator/stencil_emulator.h"
#include "varflow/var/exact_sensitivity.h"
#include "varflow/var/laplace.h"
#include "varflow/var/sensitivity.h"
#include "varflow/testing/conformance.h"
#include "varflow/var/incremental_4dvar.h"

namespace varflow {
namespace {

// The step-5 window: Lorenz-96 n = 40, F = 8, dt = 0.05, 4 steps, every point observed (identity) at
// steps 0, 2, 4 with R = I, background c (an attractor state of Lorenz-96), B = I; y simulated from
// c + N(0, I). `model` (n = 40) replaces Lorenz-96 as the window's model and the truth's when given.
struct Step5Window {
  AssimilationWindow window;
  Vector y;  // stacked, 3 x 40
  AssimilationWindow with(const Vector& values) const {
    AssimilationWindow w = window;
    for (std::size_t s = 0; s < w.observations.size(); ++s) {
      w.observations[s].values = values.segment(static_cast<Index>(s) * 40, 40);
    }
    return w;
  }
};

Step5Window step5_window(Rng& rng, std::shared_ptr<const Model> model = nullptr) {
  const Index n = 40;
  const auto physics = std::make_shared<Lorenz96>(n, 8.0, 0.05);
  if (!model) model = physics;
  const Vector c = test::attractor_state(*physics, Vector::Constant(n, 8.0), rng, 1000);
  Step5Window p;
  p.window.model = model;
  p.window.steps = 4;
  p.window.background = c;
  p.window.b = std::make_shared<DiagonalCovariance>(DiagonalCovariance::scaled_identity(n, 1.0));
  auto op = std::make_shared<IdentityObservation>(n);
  auto r = std::make_shared<DiagonalCovariance>(DiagonalCovariance::scaled_identity(n, 1.0));
  Vector x = c + rng.normal_vector(n);
  p.y.resize(3 * n);
  for (Index k = 0; k <= 4; ++k) {
    if (k % 2 == 0) {
      Observations o;
      o.step = k;
      o.values = x + rng.normal_vector(n);
      o.op = op;
      o.r = r;
      p.y.segment((k / 2) * n, n) = o.values;
      p.window.observations.push_back(o);
    }
    if (k < 4) model->step(x);
  }
  return p;
}

// A tight MAP: Gauss-Newton to a relative gradient of 1e-13 (the central differences divide MAP
// errors by 2h).
VarResult tight_map(const AssimilationWindow& w) {
  GaussNewtonOptions o;
  o.max_outer_iterations = 60;
  o.gradient_tolerance = 1e-13;
  o.step_tolerance = 1e-15;
  o.inner_tolerance = 1e-12;
  o.posterior = PosteriorMethod::kNone;
  SolverSummary summary;
  VarResult r = IncrementalFourDVar(o).solve(w, &summary);
  EXPECT_TRUE(summary.converged()) << summary.BriefReport();
  return r;
}

// Exact and Gauss-Newton J v at the MAP r of window p against central differences of the MAP along
// the unit vector v (steps h = 2e-3 and, to bound their truncation error, 1e-2), as relative errors.
struct SensitivityComparison {
  ExactSensitivityResult exact;
  double exact_error = 0.0, gauss_newton_error = 0.0, fd_spread = 0.0;
};
SensitivityComparison compare_with_central_differences(const Step5Window& p, const VarResult& r, const Vector& v) {
  const ExactObservationSensitivity exact(*r.map);
  const ObservationSensitivity gauss_newton(*r.map, laplace_covariance_dense(*r.map));
  SensitivityComparison c;
  c.exact = exact.apply_with_info(v);
  const Vector jg = gauss_newton.apply(v);
  Vector fd[2];
  const double hs[2] = {1e-2, 2e-3};
  for (int i = 0; i < 2; ++i) {
    const double h = hs[i];
    fd[i] = (tight_map(p.with(p.y + h * v)).analysis - tight_map(p.with(p.y - h * v)).analysis) / (2.0 * h);
  }
  c.exact_error = (c.exact.value - fd[1]).norm() / fd[1].norm();
  c.gauss_newton_error = (jg - fd[1]).norm() / fd[1].norm();
  c.fd_spread = (fd[0] - fd[1]).norm() / fd[1].norm();
  std::cout << "exact J v vs central differences of the MAP " << c.exact_error << " (CG " << c.exact.cg_iterations
            << " iterations, residual " << c.exact.relative_residual << "); Gauss-Newton J v " << c.gauss_newton_error
            << "; central differences h = 1e-2 vs 2e-3 " << c.fd_spread << "\n";
  return c;
}

// `trials` random unit directions v: every exact J v within the acceptance bound 5e-3 of central
// differences of the MAP, in fact to their precision (MAP to relative gradient 1e-13, truncation
// ~1e-8), and CG converged. Returns the worst exact error and the smallest Gauss-Newton one.
struct TrialErrors {
  double worst_exact = 0.0, best_gauss_newton = 1e300;
};
TrialErrors expect_exact_on_random_directions(const Step5Window& p, const VarResult& r, int trials, Rng& rng,
                                              const std::string& what) {
  TrialErrors e;
  for (int trial = 0; trial < trials; ++trial) {
    const Vector v = rng.normal_vector(p.y.size()).normalized();
    const SensitivityComparison c = compare_with_central_differences(p, r, v);
    EXPECT_LT(c.exact_error, 5e-3) << what;  // the acceptance bound
    EXPECT_LT(c.exact_error, 1e-7) << what;
    e.worst_exact = std::max(e.worst_exact, c.exact_error);
    e.best_gauss_newton = std::min(e.best_gauss_newton, c.gauss_newton_error);
    EXPECT_LE(c.exact.relative_residual, 1e-10) << what;
  }
  std::cout << what << ": worst exact error " << e.worst_exact << ", smallest Gauss-Newton error "
            << e.best_gauss_newton << "\n";
  return e;
}

TEST(ExactObservationSensitivity, MatchesCentralDifferencesOfTheMapOnTheStep5Window) {
  Rng rng = testing::seeded_rng(5101);
  const Step5Window p = step5_window(rng);
  const VarResult r = tight_map(p.window);
  ASSERT_TRUE(r.map);
  const TrialErrors e = expect_exact_on_random_directions(p, r, 4, rng, "lorenz96");
  // Gauss-Newton omits the second-order terms: a percent-level error, far above the exact one.
  EXPECT_GT(e.best_gauss_newton, 1e-2);
  EXPECT_GT(e.best_gauss_newton, 10.0 * e.worst_exact);
}

// A small stencil emulator of the step-5 Lorenz-96 (n = 40), trained briefly on its pairs.
std::shared_ptr<const Model> trained_emulator(const std::string& architecture, Rng& rng) {
  const Lorenz96 physics(40, 8.0, 0.05);
  const auto pairs = emulator::simulate_pairs(physics, Vector::Constant(40, 8.0), 600, 500, 3, rng);
  emulator::StencilEmulatorConfig c;
  c.grid = 40;
  c.radius = 3;
  c.hidden = 12;
  c.layers = 1;
  c.architecture = architecture;
  auto e = std::make_shared<emulator::StencilEmulator>(c);
  e->initialize(rng);
  const nn::TrainingOptions t = emulator::fixed_budget_training(30, 1e-2);
  const nn::TrainingSummary summary = emulator::train_emulator(*e, pairs, t, rng);
  std::cout << e->name() << ": " << summary.epochs_run << " epochs\n";
  return e;
}

// The emulator's second-order adjoint makes the full-Hessian sensitivity exact for its 4D-Var too.
TEST(ExactObservationSensitivity, MatchesCentralDifferencesOfTheMapWithTheStencilEmulator) {
  for (const char* architecture : {"polynomial", "mlp"}) {
    Rng rng = testing::seeded_rng(5106);
    const auto model = trained_emulator(architecture, rng);
    ASSERT_TRUE(model->has_second_order()) << model->name();
    const Step5Window p = step5_window(rng, model);
    const VarResult r = tight_map(p.window);
    ASSERT_TRUE(r.map);
    const TrialErrors e = expect_exact_on_random_directions(p, r, 2, rng, architecture);
    // The second-order terms are what separates the two.
    EXPECT_GT(e.best_gauss_newton, 10.0 * e.worst_exact) << architecture;
  }
}

TEST(ExactObservationSensitivity, TransposeIsTheAdjoint) {
  Rng rng = testing::seeded_rng(5102);
  const Step5Window p = step5_window(rng);
  const VarResult r = tight_map(p.window);
  const ExactObservationSensitivity exact(*r.map);
  for (int trial = 0; trial < 3; ++trial) {
    const Vector v = rng.normal_vector(p.y.size()), w = rng.normal_vector(40);
    const Vector jv = exact.apply(v), jtw = exact.apply_transpose(w);
    // CG to relative residual 1e-10 on both sides.
    EXPECT_NEAR(w.dot(jv), jtw.dot(v), 1e-8 * w.norm() * jv.norm());
  }
}

TEST(ExactObservationSensitivity, EqualsTheBlueGainOnALinearProblem) {
  Rng rng = testing::seeded_rng(5103);
  const test::LinearGaussianProblem p = test::linear_gaussian_problem(rng, 6, 4, {0, 2, 4}, {3, 6, 2}, {{1, 2}});
  const FourDVarCost cost(p.window);
  const Linearization lin = cost.linearize(p.window.background);  // any point: the problem is quadratic
  const ExactObservationSensitivity exact(lin);
  const ObservationSensitivity gn(lin, laplace_covariance_dense(lin));
  for (int trial = 0; trial < 3; ++trial) {
    const Vector v = rng.normal_vector(cost.observation_size());
    const Vector a = exact.apply(v), b = gn.apply(v);
    EXPECT_LT((a - b).norm(), 1e-9 * b.norm());
  }
}

TEST(ExactObservationSensitivity, NegativeCurvatureIsANumericalError) {
  // Far from the MAP with precise observations (R = 0.01 I) the departures weight large second-order
  // terms and the full Hessian is indefinite: the solve must refuse, not return garbage.
  Rng rng = testing::seeded_rng(5104);
  Step5Window p = step5_window(rng);
  auto r = std::make_shared<DiagonalCovariance>(DiagonalCovariance::scaled_identity(40, 0.01));
  for (Observations& o : p.window.observations) o.r = r;
  const FourDVarCost cost(p.window);
  const Linearization lin = cost.linearize(p.window.background + 3.0 * rng.normal_vector(40));
  Matrix a(40, 40);
  for (Index j = 0; j < 40; ++j) a.col(j) = lin.preconditioned_full_hessian_multiply(Vector::Unit(40, j));
  const Eigen::SelfAdjointEigenSolver<Matrix> eig(0.5 * (a + a.transpose()));
  std::cout << "smallest eigenvalue of the preconditioned full Hessian: " << eig.eigenvalues()[0] << "\n";
  ASSERT_LT(eig.eigenvalues()[0], 0.0);
  const ExactObservationSensitivity exact(lin);
  // A right-hand side along the most negative direction (B = I: control = preconditioned control)
  // meets it in the first CG step.
  try {
    exact.solve(eig.eigenvectors().col(0));
    ADD_FAILURE() << "expected NumericalError";
  } catch (const NumericalError& e) {
    EXPECT_NE(std::string(e.what()).find("not positive definite"), std::string::npos) << e.what();
  }
}

TEST(ExactObservationSensitivity, RejectsInvalidOptionsAndSizes) {
  Rng rng = testing::seeded_rng(5105);
  const Step5Window p = step5_window(rng);
  const Linearization lin = FourDVarCost(p.window).linearize(p.window.background);
  ExactSensitivityOptions o;
  o.relative_tolerance = 0.0;
  try {
    ExactObservationSensitivity bad(lin, o);
    ADD_FAILURE() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("relative_tolerance = 0"), std::string::npos) << e.what();
  }
  const ExactObservationSensitivity exact(lin);
  EXPECT_THROW(exact.apply(Vector::Zero(5)), InvalidArgument);
  EXPECT_THROW(exact.apply_transpose(Vector::Zero(5)), InvalidArgument);
}

}  // namespace
}  // namespace varflow
