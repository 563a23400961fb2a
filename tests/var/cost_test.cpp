// The 4D-Var cost: gradient against finite differences, TL/AD of the window (strong and weak
// constraint) through the linearisation checks, the masking rule, window validation, work counts.
#include <gtest/gtest.h>

#include <cmath>

#include "problems.h"
#include "varflow/core/error.h"
#include "varflow/testing/conformance.h"
#include "varflow/validation/linearization_checks.h"
#include "varflow/var/cost.h"

namespace varflow {
namespace {

constexpr std::uint64_t kSeed = 1101;

// A Lorenz-96 window with a nonlinear (arctan) slot besides the subset slots.
AssimilationWindow lorenz96_window(Rng& rng) {
  auto model = std::make_shared<Lorenz96>(40, 8.0, 0.05);
  const Vector truth = test::attractor_state(*model, Vector::Constant(40, 8.0), rng, 500);
  AssimilationWindow w = test::twin_window(model, truth, rng, 10, 2, 2, 0.5, 1.0);
  Observations o;
  o.step = 5;
  o.op = std::make_shared<ArctanObservation>(40, std::vector<Index>{1, 7, 13, 29}, 4.0);
  o.values = 2.0 * rng.normal_vector(4);
  o.r = std::make_shared<DenseCovariance>(test::random_spd(rng, 4, 0.3));
  w.observations.push_back(o);
  return w;
}

AssimilationWindow lorenz63_window(Rng& rng) {
  auto model = std::make_shared<Lorenz63>(0.01);
  const Vector truth = test::attractor_state(*model, Vector::Constant(3, 1.0), rng, 1000);
  return test::twin_window(model, truth, rng, 40, 8, 1, 1.0, 1.0);
}

// Central difference of J along dz against <grad, dz>.
double gradient_error(const FourDVarCost& cost, const Vector& z, const Vector& dz, double eps) {
  Vector g;
  cost.evaluate(z, &g);
  const double fd = (cost.evaluate(z + eps * dz) - cost.evaluate(z - eps * dz)) / (2.0 * eps);
  const double an = g.dot(dz);
  return std::abs(fd - an) / std::max(std::abs(an), 1e-300);
}

// The nonlinear map z -> (H_s(x_{k(s)}))_s (0 at masked entries) of a cost.
VectorMap observed_map(const FourDVarCost& cost) {
  const Vector y = cost.window().stacked_values();
  const Mask mask = cost.window().stacked_mask();
  return [&cost, y, mask](const Vector& z) {
    Vector d;
    try {
      d = cost.linearize(z).departures();
    } catch (const NumericalError&) {  // a blown-up trajectory for the largest Taylor steps
      return Vector(Vector::Constant(y.size(), std::numeric_limits<double>::quiet_NaN()));
    }
    Vector out(d.size());
    for (Index i = 0; i < d.size(); ++i) out[i] = mask[i] ? y[i] - d[i] : 0.0;
    return out;
  };
}

LinearizationReport check_window_linearization(const FourDVarCost& cost, const Vector& z, Rng& rng) {
  const Linearization lin = cost.linearize(z);
  LinearizedMap map;
  map.nonlinear = observed_map(cost);
  map.tangent = [&lin](const Vector& dz) { return lin.tangent(dz); };
  map.adjoint = [&lin](const Vector& w) { return lin.adjoint(w); };
  map.input_size = cost.control_size();
  map.output_size = cost.observation_size();
  return check_linearization(map, z, rng);
}

TEST(FourDVarCost, StrongGradientMatchesFiniteDifferences) {
  Rng rng = testing::seeded_rng(kSeed);
  for (const AssimilationWindow& w : {lorenz96_window(rng), lorenz63_window(rng)}) {
    const FourDVarCost cost(w);
    const Vector z = w.background + 0.3 * rng.normal_vector(w.state_size());
    const Vector dz = rng.normal_vector(w.state_size());
    // Central differences: truncation O(eps^2), round-off O(1e-16 J / eps); eps = 1e-5 gives ~1e-8.
    EXPECT_LT(gradient_error(cost, z, dz, 1e-5), 1e-6) << w.model->name();
  }
}

TEST(FourDVarCost, WeakGradientMatchesFiniteDifferences) {
  Rng rng = testing::seeded_rng(kSeed + 1);
  for (const AssimilationWindow& w : {lorenz96_window(rng), lorenz63_window(rng)}) {
    const Index n = w.state_size();
    auto q = std::make_shared<DenseCovariance>(test::random_spd(rng, n, 0.05));
    for (Index sub : {1, 3, 100}) {
      const FourDVarCost cost(w, q, sub);
      EXPECT_EQ(cost.num_subwindows(), (w.steps + sub - 1) / sub);
      EXPECT_EQ(cost.control_size(), n * (1 + cost.num_subwindows()));
      Vector z = cost.control_background() + 0.1 * rng.normal_vector(cost.control_size());
      const Vector dz = rng.normal_vector(cost.control_size());
      EXPECT_LT(gradient_error(cost, z, dz, 1e-5), 1e-6) << w.model->name() << " sub-window " << sub;
      // The forcing part of the gradient alone (x_0 fixed) exercises the forcing adjoint.
      Vector dz_eta = dz;
      dz_eta.head(n).setZero();
      EXPECT_LT(gradient_error(cost, z, dz_eta, 1e-5), 1e-6) << w.model->name() << " sub-window " << sub;
    }
  }
}

TEST(FourDVarCost, StrongWindowTangentAndAdjointPassTheLinearizationChecks) {
  Rng rng = testing::seeded_rng(kSeed + 2);
  for (const AssimilationWindow& w : {lorenz96_window(rng), lorenz63_window(rng)}) {
    const FourDVarCost cost(w);
    const LinearizationReport report = check_window_linearization(cost, w.background, rng);
    EXPECT_TRUE(report.passed()) << w.model->name() << "\n"
                                 << report.dot_product.report() << "\n"
                                 << report.taylor.report() << "\n"
                                 << report.linearity.report();
  }
}

TEST(FourDVarCost, WeakWindowTangentAndAdjointPassTheLinearizationChecks) {
  Rng rng = testing::seeded_rng(kSeed + 3);
  for (const AssimilationWindow& w : {lorenz96_window(rng), lorenz63_window(rng)}) {
    auto q = std::make_shared<DiagonalCovariance>(DiagonalCovariance::scaled_identity(w.state_size(), 0.01));
    const FourDVarCost cost(w, q, 2);
    const Vector z = cost.control_background() + 0.05 * rng.normal_vector(cost.control_size());
    const LinearizationReport report = check_window_linearization(cost, z, rng);
    EXPECT_TRUE(report.passed()) << w.model->name() << "\n"
                                 << report.dot_product.report() << "\n"
                                 << report.taylor.report() << "\n"
                                 << report.linearity.report();
  }
}

TEST(FourDVarCost, AdjointFaultIsDetected) {
  // The dot-product check on the window would catch a forcing adjoint added one step late: emulate
  // by pairing the weak tangent with the strong adjoint padded with zeros.
  Rng rng = testing::seeded_rng(kSeed + 4);
  const AssimilationWindow w = lorenz63_window(rng);
  auto q = std::make_shared<DiagonalCovariance>(DiagonalCovariance::scaled_identity(3, 0.01));
  const FourDVarCost weak(w, q, 4);
  const FourDVarCost strong(w);
  const Linearization lw = weak.linearize(weak.control_background());
  const Linearization ls = strong.linearize(w.background);
  const VectorMap tangent = [&lw](const Vector& dz) { return lw.tangent(dz); };
  const VectorMap wrong_adjoint = [&ls, &weak](const Vector& y) {
    Vector out = Vector::Zero(weak.control_size());
    out.head(3) = ls.adjoint(y);
    return out;
  };
  const DotProductResult r =
      dot_product_test(tangent, wrong_adjoint, rng.normal_vector(weak.control_size()), rng.normal_vector(weak.observation_size()));
  EXPECT_FALSE(r.passed) << r.report();
}

TEST(FourDVarCost, MaskedValuesUseTheSubBlockOfR) {
  Rng rng = testing::seeded_rng(kSeed + 5);
  // One slot with a non-diagonal R and two missing values (NaN): the slot's term must be
  // 1/2 d_p^T (R_pp)^-1 d_p on the present values p.
  test::LinearGaussianProblem p = test::linear_gaussian_problem(rng, 5, 3, {1, 3}, {6, 4}, {{0, 1}, {0, 4}});
  const FourDVarCost cost(p.window);
  const Vector z = p.window.background + rng.normal_vector(5);
  const CostTerms t = cost.terms(z);
  const Matrix a3 = p.a * p.a * p.a;
  const std::vector<Index> present{0, 2, 3, 5};
  const Vector hx = p.h[0] * (p.a * z);
  Vector d(4);
  Matrix rpp(4, 4);
  for (Index i = 0; i < 4; ++i) {
    d[i] = p.window.observations[0].values[present[static_cast<std::size_t>(i)]] - hx[present[static_cast<std::size_t>(i)]];
    for (Index j = 0; j < 4; ++j) rpp(i, j) = p.r[0](present[static_cast<std::size_t>(i)], present[static_cast<std::size_t>(j)]);
  }
  const double expected0 = 0.5 * d.dot(rpp.llt().solve(d));
  EXPECT_NEAR(t.per_slot[0], expected0, 1e-12 * expected0);
  // Dropping the masked rows of a non-diagonal R would be wrong: make sure the sub-block differs
  // from using the inverse of the full R restricted to p.
  const Matrix rinv = p.r[0].inverse();
  Matrix rinv_pp(4, 4);
  for (Index i = 0; i < 4; ++i)
    for (Index j = 0; j < 4; ++j) rinv_pp(i, j) = rinv(present[static_cast<std::size_t>(i)], present[static_cast<std::size_t>(j)]);
  EXPECT_GT(std::abs(0.5 * d.dot(rinv_pp * d) - expected0), 1e-6 * expected0);
  // The fully present slot uses R itself.
  const Vector d1 = p.window.observations[1].values - p.h[1] * (a3 * z);
  const double expected1 = 0.5 * d1.dot(p.r[1].llt().solve(d1));
  EXPECT_NEAR(t.per_slot[1], expected1, 1e-12 * expected1);
  // Gradient, whitening and outputs respect the mask.
  EXPECT_LT(gradient_error(cost, z, rng.normal_vector(5), 1e-5), 1e-7);
  const Linearization lin = cost.linearize(z);
  EXPECT_NEAR(lin.whiten(lin.departures()).squaredNorm(), 2.0 * t.observation, 1e-12 * t.observation);
  const Vector dy = lin.tangent(rng.normal_vector(5));
  EXPECT_EQ(dy[1], 0.0);
  EXPECT_EQ(dy[4], 0.0);
  EXPECT_EQ(lin.departures()[1], 0.0);
  // The adjoint ignores whatever sits at masked entries.
  Vector w = rng.normal_vector(cost.observation_size());
  const Vector a1 = lin.adjoint(w);
  w[1] = std::numeric_limits<double>::quiet_NaN();
  w[4] = 1e6;
  EXPECT_LT((lin.adjoint(w) - a1).norm(), 1e-14 * a1.norm());
}

// ---- full Hessian ---------------------------------------------------------------------------------

// The Lorenz-96 window with two values of the arctan slot (dense R) masked: exercises R_pp.
AssimilationWindow masked_lorenz96_window(Rng& rng) {
  AssimilationWindow w = lorenz96_window(rng);
  Observations& o = w.observations.back();
  o.mask = Mask::Constant(o.values.size(), true);
  o.mask[1] = false;
  o.values[1] = std::numeric_limits<double>::quiet_NaN();
  Observations& first = w.observations.front();
  first.mask = Mask::Constant(first.values.size(), true);
  first.mask[3] = false;
  return w;
}

// ||(grad(z + h dz) - grad(z - h dz)) / 2h - H dz|| / ||H dz||.
double hessian_error(const FourDVarCost& cost, const Vector& z, const Vector& dz, double h) {
  Vector gp, gm;
  cost.evaluate(z + h * dz, &gp);
  cost.evaluate(z - h * dz, &gm);
  const Vector hdz = cost.linearize(z).full_hessian_multiply(dz);
  return ((gp - gm) / (2.0 * h) - hdz).norm() / hdz.norm();
}

TEST(FourDVarCost, FullHessianMatchesFiniteDifferencesOfTheGradient) {
  Rng rng = testing::seeded_rng(kSeed + 10);
  for (const AssimilationWindow& w : {lorenz96_window(rng), masked_lorenz96_window(rng), lorenz63_window(rng)}) {
    const Index n = w.state_size();
    const FourDVarCost strong(w);
    auto q = std::make_shared<DenseCovariance>(test::random_spd(rng, n, 0.05));
    const FourDVarCost weak(w, q, 3);
    for (const FourDVarCost* cost : {&strong, &weak}) {
      const Vector z = cost->control_background() + 0.3 * rng.normal_vector(cost->control_size());
      const Vector dz = rng.normal_vector(cost->control_size());
      // Central differences: truncation O(h^2), round-off O(1e-16 ||grad|| / h); h = 1e-4 gives ~1e-8.
      const double e = hessian_error(*cost, z, dz, 1e-4);
      EXPECT_LT(e, 1e-6) << w.model->name() << (cost->weak_constraint() ? " weak" : " strong");
      // The Gauss-Newton Hessian misses the second-order terms: measurably off here.
      Vector gp, gm;
      cost->evaluate(z + 1e-4 * dz, &gp);
      cost->evaluate(z - 1e-4 * dz, &gm);
      const Linearization lin = cost->linearize(z);
      const Vector gn = cost->prior().inverse_multiply(dz) + lin.observation_hessian_multiply(dz);
      EXPECT_GT(((gp - gm) / 2e-4 - gn).norm() / gn.norm(), 1e-4) << w.model->name();
    }
  }
}

TEST(FourDVarCost, FullHessianIsSymmetricAndItsPreconditionedFormConsistent) {
  Rng rng = testing::seeded_rng(kSeed + 11);
  for (const AssimilationWindow& w : {lorenz96_window(rng), masked_lorenz96_window(rng), lorenz63_window(rng)}) {
    auto q = std::make_shared<DiagonalCovariance>(DiagonalCovariance::scaled_identity(w.state_size(), 0.01));
    const FourDVarCost strong(w), weak(w, q, 2);
    for (const FourDVarCost* cost : {&strong, &weak}) {
      const Vector z = cost->control_background() + 0.3 * rng.normal_vector(cost->control_size());
      const Linearization lin = cost->linearize(z);
      const Vector u = rng.normal_vector(cost->control_size()), v = rng.normal_vector(cost->control_size());
      const Vector hu = lin.full_hessian_multiply(u), hv = lin.full_hessian_multiply(v);
      const double lhs = hu.dot(v), rhs = u.dot(hv);
      EXPECT_LT(std::abs(lhs - rhs), 1e-12 * std::max(hu.norm() * v.norm(), hv.norm() * u.norm()))
          << w.model->name() << ": <H u, v> = " << lhs << ", <u, H v> = " << rhs;
      // I + L^T (G - S) L = L^T H L.
      const Covariance& l = cost->prior();
      const Vector pre = lin.preconditioned_full_hessian_multiply(u);
      const Vector direct = l.sqrt_transpose_multiply(lin.full_hessian_multiply(l.sqrt_multiply(u)));
      EXPECT_LT((pre - direct).norm(), 1e-10 * direct.norm()) << w.model->name();
    }
  }
}

TEST(FourDVarCost, FullHessianOfALinearProblemIsTheGaussNewtonHessian) {
  Rng rng = testing::seeded_rng(kSeed + 12);
  const test::LinearGaussianProblem p = test::linear_gaussian_problem(rng, 6, 4, {0, 2, 4}, {3, 6, 2}, {{1, 2}});
  const FourDVarCost cost(p.window);
  const Linearization lin = cost.linearize(p.window.background + rng.normal_vector(6));
  const Vector dz = rng.normal_vector(6);
  const Vector gn = cost.prior().inverse_multiply(dz) + lin.observation_hessian_multiply(dz);
  EXPECT_LT((lin.full_hessian_multiply(dz) - gn).norm(), 1e-12 * gn.norm());
}

TEST(FourDVarCost, FullHessianWorkAndMissingSecondOrderAdjoint) {
  Rng rng = testing::seeded_rng(kSeed + 13);
  const AssimilationWindow w = lorenz63_window(rng);
  const FourDVarCost cost(w);
  const Linearization lin = cost.linearize(w.background);
  cost.reset_counts();
  ASSERT_TRUE(lin.has_second_order());
  lin.full_hessian_multiply(rng.normal_vector(3));
  lin.full_hessian_multiply(rng.normal_vector(3));
  const SweepCounts c = cost.counts();
  EXPECT_EQ(c.forward_runs, 0);
  EXPECT_EQ(c.tl_sweeps, 2);
  EXPECT_EQ(c.ad_sweeps, 1);  // the adjoint trajectory of the departures, once
  EXPECT_EQ(c.soa_sweeps, 2);

  // A model without a second-order adjoint: a clear refusal naming it.
  class FirstOrderLorenz63 final : public Model {
   public:
    Index state_size() const override { return 3; }
    std::string name() const override { return "first_order_lorenz63"; }

   protected:
    void do_step(Vector& x) const override { inner_.step(x); }
    void do_step_tangent(const Vector& x, Vector& dx) const override { inner_.step_tangent(x, dx); }
    void do_step_adjoint(const Vector& x, Vector& ax) const override { inner_.step_adjoint(x, ax); }

   private:
    Lorenz63 inner_{0.01};
  };
  AssimilationWindow w1 = w;
  w1.model = std::make_shared<FirstOrderLorenz63>();
  const Linearization lin1 = FourDVarCost(w1).linearize(w1.background);
  EXPECT_FALSE(lin1.has_second_order());
  try {
    lin1.full_hessian_multiply(Vector::Ones(3));
    ADD_FAILURE() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("first_order_lorenz63"), std::string::npos) << e.what();
  }
}

TEST(FourDVarCost, WorkIsCountedInSweeps) {
  Rng rng = testing::seeded_rng(kSeed + 6);
  const AssimilationWindow w = lorenz63_window(rng);
  const FourDVarCost cost(w);
  Vector g;
  cost.evaluate(w.background, &g);
  SweepCounts c = cost.counts();
  EXPECT_EQ(c.forward_runs, 1);
  EXPECT_EQ(c.tl_sweeps, 0);
  EXPECT_EQ(c.ad_sweeps, 1);
  const Linearization lin = cost.linearize(w.background);
  lin.preconditioned_hessian_multiply(rng.normal_vector(3));
  c = cost.counts();
  EXPECT_EQ(c.forward_runs, 2);
  EXPECT_EQ(c.tl_sweeps, 1);
  EXPECT_EQ(c.ad_sweeps, 2);
  cost.reset_counts();
  EXPECT_EQ(cost.counts().forward_runs, 0);
}

TEST(FourDVarCost, TrajectoryBlowUpIsANumericalError) {
  AssimilationWindow w;
  w.model = std::make_shared<LinearModel>(Matrix(Matrix::Identity(2, 2) * 1e200));
  w.steps = 3;
  w.background = Vector::Constant(2, 1e200);
  w.b = std::make_shared<DiagonalCovariance>(Vector::Ones(2));
  const FourDVarCost cost(w);
  EXPECT_THROW(cost.evaluate(w.background), NumericalError);
}

void expect_invalid(const AssimilationWindow& w, const std::string& fragment) {
  try {
    w.validate();
    ADD_FAILURE() << "no exception; expected one mentioning " << fragment;
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(AssimilationWindow, ValidationNamesTheField) {
  Rng rng = testing::seeded_rng(kSeed + 7);
  const AssimilationWindow good = test::linear_gaussian_problem(rng, 4, 3, {0, 3}, {2, 2}).window;
  EXPECT_NO_THROW(good.validate());
  EXPECT_EQ(good.observation_size(), 4);
  EXPECT_EQ(good.observation_offset(1), 2);
  AssimilationWindow w = good;
  w.observations[1].step = 4;
  expect_invalid(w, "observations[1].step = 4");
  w = good;
  w.b.reset();
  expect_invalid(w, "b");
  w = good;
  w.background = Vector::Zero(5);
  expect_invalid(w, "b (background-error covariance) has size 4, expected 5");
  w = good;
  w.model.reset();
  expect_invalid(w, "model is null but steps = 3");
  w = good;
  w.steps = -1;
  expect_invalid(w, "steps = -1");
  w = good;
  w.observations[0].values[0] = std::nan("");
  expect_invalid(w, "observations[0]");
  w = good;
  w.background[2] = INFINITY;
  expect_invalid(w, "background[2]");
  EXPECT_THROW(FourDVarCost(good, nullptr, 1), InvalidArgument);
  EXPECT_THROW(FourDVarCost(good, std::make_shared<DiagonalCovariance>(Vector::Ones(4)), 0), InvalidArgument);
}

}  // namespace
}  // namespace varflow
