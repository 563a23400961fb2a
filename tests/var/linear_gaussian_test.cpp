// In the linear-Gaussian case every method must reproduce the closed-form BLUE posterior, mean and
// covariance, to relative 1e-8 (Frobenius norms); weak constraint against the BLUE of its augmented
// control (x_0, eta_1, ..., eta_S). The observation sensitivity must equal the BLUE gain and finite
// differences of the analysis.
#include <gtest/gtest.h>

#include "problems.h"
#include "varflow/core/error.h"
#include "varflow/var/laplace.h"
#include "varflow/var/sensitivity.h"
#include "varflow/testing/conformance.h"
#include "varflow/var/incremental_4dvar.h"
#include "varflow/var/strong_4dvar.h"
#include "varflow/var/weak_4dvar.h"
#include "varflow/version.h"

namespace varflow {
namespace {

constexpr std::uint64_t kSeed = 3101;
// The required agreement with the closed form.
constexpr double kBlueTolerance = 1e-8;

struct Case {
  test::LinearGaussianProblem problem;
  test::Blue exact;
};

// n = 8 states, 6 steps, 12 observations at steps 1, 3, 6 (dense H, B, R); optionally two values
// missing in a slot with non-diagonal R.
Case make_case(Rng& rng, bool with_missing) {
  Case c;
  std::vector<std::pair<std::size_t, Index>> missing;
  if (with_missing) missing = {{1, 0}, {1, 3}};
  c.problem = test::linear_gaussian_problem(rng, 8, 6, {1, 3, 6}, {4, 5, 3}, missing);
  const test::StackedLinear s = test::stack_linear(c.problem);
  c.exact = test::blue(s.zb, s.bz, s.g, s.r, s.y);
  return c;
}

void expect_blue(const VarResult& r, const SolverSummary& summary, const test::Blue& exact, const std::string& what) {
  ASSERT_TRUE(summary.converged()) << what << ": " << summary.FullReport();
  ASSERT_TRUE(r.posterior) << what << ": " << summary.posterior_message;
  const double mean_err = test::relative_error(r.analysis, exact.mean);
  const double cov_err = test::relative_error(r.posterior->covariance()->dense(), exact.covariance);
  EXPECT_LT(mean_err, kBlueTolerance) << what;
  EXPECT_LT(cov_err, kBlueTolerance) << what;
  std::cout << "[ measured ] " << what << ": mean rel err " << mean_err << ", covariance rel err " << cov_err
            << ", " << summary.BriefReport() << "\n";
  const Provenance& p = r.posterior->provenance();
  EXPECT_EQ(p.method, summary.method);
  EXPECT_TRUE(p.converged);
  EXPECT_EQ(p.version, VARFLOW_VERSION_STRING);
  EXPECT_EQ(p.iterations, summary.iterations);
  EXPECT_DOUBLE_EQ(p.final_cost, summary.final_cost);
}

class LinearGaussian : public ::testing::TestWithParam<bool> {};

TEST_P(LinearGaussian, StrongFourDVarWithDenseAndLowRankPosteriors) {
  Rng rng = testing::seeded_rng(kSeed);
  const Case c = make_case(rng, GetParam());
  for (PosteriorMethod pm : {PosteriorMethod::kDense, PosteriorMethod::kLowRank}) {
    StrongFourDVar::Options o;
    o.posterior = pm;
    o.low_rank.rank = 8;
    SolverSummary s;
    const VarResult r = StrongFourDVar(o).solve(c.problem.window, &s);
    expect_blue(r, s, c.exact, "strong_4dvar/" + to_string(pm));
    // L-BFGS uses no TL sweep: the dense path takes one per control, the low-rank path one per
    // Lanczos iteration (at most n + 1 here).
    if (pm == PosteriorMethod::kDense) {
      EXPECT_EQ(s.num_tl_sweeps, 8);
    } else {
      EXPECT_LE(s.num_tl_sweeps, 9);
    }
  }
}

TEST_P(LinearGaussian, IncrementalFourDVarWithEveryPosteriorPath) {
  Rng rng = testing::seeded_rng(kSeed + 1);
  const Case c = make_case(rng, GetParam());
  for (PosteriorMethod pm : {PosteriorMethod::kInnerLanczos, PosteriorMethod::kDense, PosteriorMethod::kLowRank}) {
    IncrementalFourDVar::Options o;
    o.posterior = pm;
    o.low_rank.rank = 8;
    o.inner_tolerance = 1e-12;
    SolverSummary s;
    const VarResult r = IncrementalFourDVar(o).solve(c.problem.window, &s);
    expect_blue(r, s, c.exact, "incremental_4dvar/" + to_string(pm));
    // A linear problem needs one Gauss-Newton step.
    EXPECT_EQ(s.outer_iterations, 1);
    // Each inner iteration is one TL and one AD sweep.
    if (pm == PosteriorMethod::kInnerLanczos) {
      EXPECT_EQ(s.num_tl_sweeps, s.iterations);
    }
  }
}

TEST_P(LinearGaussian, ThreeDVarIsTheSingleTimeCase) {
  Rng rng = testing::seeded_rng(kSeed + 2);
  std::vector<std::pair<std::size_t, Index>> missing;
  if (GetParam()) missing = {{0, 2}};
  test::LinearGaussianProblem p = test::linear_gaussian_problem(rng, 8, 0, {0, 0}, {5, 4}, missing);
  p.window.model.reset();  // no model is needed without steps
  const test::StackedLinear st = test::stack_linear(p);
  const test::Blue exact = test::blue(st.zb, st.bz, st.g, st.r, st.y);
  ThreeDVar::Options o;
  o.inner_tolerance = 1e-12;
  SolverSummary s;
  const VarResult r = ThreeDVar(o).solve(p.window, &s);
  expect_blue(r, s, exact, "3dvar");
  EXPECT_EQ(r.final_state.size(), 8);
  // 3D-Var refuses observations at other times.
  p.window.observations[1].step = 1;
  p.window.steps = 1;
  p.window.model = std::make_shared<LinearModel>(p.a);
  EXPECT_THROW(ThreeDVar().solve(p.window), InvalidArgument);
}

TEST_P(LinearGaussian, WeakFourDVarMatchesItsAugmentedClosedForm) {
  Rng rng = testing::seeded_rng(kSeed + 3);
  const Case c = make_case(rng, GetParam());
  const Matrix q = test::random_spd(rng, 8, 0.05);
  for (Index sub : {2, 4}) {
    const test::StackedLinear st = test::stack_linear(c.problem, &q, sub);
    const test::Blue exact = test::blue(st.zb, st.bz, st.g, st.r, st.y);
    for (PosteriorMethod pm : {PosteriorMethod::kInnerLanczos, PosteriorMethod::kDense, PosteriorMethod::kLowRank}) {
      WeakFourDVar::Options o;
      o.subwindow_steps = sub;
      o.posterior = pm;
      o.inner_tolerance = 1e-12;
      o.low_rank.rank = st.zb.size();
      SolverSummary s;
      const VarResult r = WeakFourDVar(std::make_shared<DenseCovariance>(q), o).solve(c.problem.window, &s);
      const std::string what = "weak_4dvar/sub" + std::to_string(sub) + "/" + to_string(pm);
      ASSERT_TRUE(s.converged()) << what << ": " << s.FullReport();
      ASSERT_TRUE(r.control_posterior && r.posterior) << what;
      const double mean_err = test::relative_error(r.control, exact.mean);
      const double cov_err = test::relative_error(r.control_posterior->covariance()->dense(), exact.covariance);
      const double x0_err =
          test::relative_error(r.posterior->covariance()->dense(), exact.covariance.topLeftCorner(8, 8));
      EXPECT_LT(mean_err, kBlueTolerance) << what;
      EXPECT_LT(cov_err, kBlueTolerance) << what;
      EXPECT_LT(x0_err, kBlueTolerance) << what;
      EXPECT_LT(test::relative_error(r.analysis, exact.mean.head(8)), kBlueTolerance) << what;
      std::cout << "[ measured ] " << what << ": control mean rel err " << mean_err << ", covariance " << cov_err
                << ", x0 marginal " << x0_err << "\n";
      // The analysis trajectory includes the analysed forcing.
      const std::vector<Vector> eta = WeakFourDVar::forcing(r, 8);
      ASSERT_EQ(static_cast<Index>(eta.size()), (6 + sub - 1) / sub);
      Vector x = r.analysis;
      for (Index k = 0; k < 6; ++k) x = c.problem.a * x + eta[static_cast<std::size_t>(k / sub)];
      EXPECT_LT((x - r.final_state).norm(), 1e-12 * x.norm());
    }
  }
}

TEST_P(LinearGaussian, LaplacePathsAgreeWithEachOtherAtTheSameLinearization) {
  Rng rng = testing::seeded_rng(kSeed + 4);
  const Case c = make_case(rng, GetParam());
  const FourDVarCost cost(c.problem.window);
  const Linearization lin = cost.linearize(c.exact.mean);
  const Matrix dense = laplace_covariance_dense(lin)->dense();
  LanczosEigenOptions o;
  o.rank = 8;
  const Matrix low = laplace_covariance_low_rank(lin, o)->dense();
  EXPECT_LT(test::relative_error(low, dense), 1e-10);
  EXPECT_LT(test::relative_error(dense, c.exact.covariance), 1e-10);
  // A truncated rank is a different (larger) covariance: the check can fail.
  o.rank = 3;
  const Matrix truncated = laplace_covariance_low_rank(lin, o)->dense();
  EXPECT_GT(test::relative_error(truncated, dense), 1e-3);
  EXPECT_GT((truncated - dense).trace(), 0.0);
}

TEST_P(LinearGaussian, ObservationSensitivityIsTheGainAndMatchesFiniteDifferences) {
  Rng rng = testing::seeded_rng(kSeed + 5);
  const Case c = make_case(rng, GetParam());
  const test::StackedLinear st = test::stack_linear(c.problem);
  IncrementalFourDVar::Options o;
  o.inner_tolerance = 1e-13;
  const IncrementalFourDVar solver(o);
  const VarResult r = solver.solve(c.problem.window);
  ASSERT_TRUE(r.map && r.posterior);
  const ObservationSensitivity sens(*r.map, r.posterior->covariance() == nullptr
                                                ? nullptr
                                                : std::shared_ptr<const Covariance>(r.posterior, r.posterior->covariance()));
  const Index m = c.problem.window.observation_size();
  Vector v = rng.normal_vector(m);
  const Vector jv = sens.apply(v);
  // Against the closed-form gain on the present rows.
  Vector v_present(static_cast<Index>(st.rows.size()));
  for (std::size_t i = 0; i < st.rows.size(); ++i) v_present[static_cast<Index>(i)] = v[st.rows[i]];
  EXPECT_LT(test::relative_error(jv, c.exact.gain * v_present), kBlueTolerance);
  // Against central differences of the solver's analysis, y +- eps v (linear: exact up to the solve).
  const double eps = 1e-2;
  auto analysis = [&](double t) {
    AssimilationWindow w = c.problem.window;
    Index offset = 0;
    for (Observations& obs : w.observations) {
      obs.values += t * v.segment(offset, obs.values.size());
      offset += obs.values.size();
    }
    return solver.solve(w).analysis;
  };
  const Vector fd = (analysis(eps) - analysis(-eps)) / (2.0 * eps);
  const double fd_err = test::relative_error(jv, fd);
  EXPECT_LT(fd_err, 1e-7);
  std::cout << "[ measured ] sensitivity vs finite differences of the analysis: rel err " << fd_err << "\n";
  // The transpose is the adjoint of apply.
  const Vector w = rng.normal_vector(8);
  const Vector jtw = sens.apply_transpose(w);
  EXPECT_NEAR(jv.dot(w), v.dot(jtw), 1e-12 * std::abs(jv.dot(w)));
  if (GetParam()) {
    EXPECT_EQ(jtw[c.problem.window.observation_offset(1)], 0.0);
  }
}

INSTANTIATE_TEST_SUITE_P(Masks, LinearGaussian, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& param_info) {
                           return param_info.param ? std::string("SomeMissing") : std::string("AllPresent");
                         });

}  // namespace
}  // namespace varflow
