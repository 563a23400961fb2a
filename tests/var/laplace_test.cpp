// The Laplace posterior paths on a nonlinear window, and the new covariance operators through the
// covariance conformance suite.
#include <gtest/gtest.h>

#include "problems.h"
#include "varflow/core/error.h"
#include "varflow/var/laplace.h"
#include "varflow/model/linear_model.h"
#include "varflow/obs/operators.h"
#include "varflow/covariance/covariances.h"
#include <Eigen/Eigenvalues>
#include "varflow/var/sensitivity.h"
#include "varflow/testing/conformance.h"
#include "varflow/var/block_diagonal_covariance.h"
#include "varflow/var/incremental_4dvar.h"
#include "varflow/var/weak_4dvar.h"

namespace varflow {
namespace {

constexpr std::uint64_t kSeed = 5101;

AssimilationWindow lorenz96_window(Rng& rng, Index obs_stride) {
  auto m = std::make_shared<Lorenz96>(40, 8.0, 0.05);
  const Vector t = test::attractor_state(*m, Vector::Constant(40, 8.0), rng, 500);
  AssimilationWindow w = test::twin_window(m, t, rng, 8, 4, obs_stride, 0.5, 1.0);
  w.b = std::make_shared<PeriodicGaussianCovariance>(40, 0.25, 2.0, 1.0, 0.01);
  return w;
}

TEST(Laplace, DenseLowRankAndInnerLanczosAgreeAtTheMapOfANonlinearWindow) {
  Rng rng = testing::seeded_rng(kSeed);
  const AssimilationWindow w = lorenz96_window(rng, 1);
  IncrementalFourDVar::Options o;
  o.gradient_tolerance = 1e-12;
  o.inner_tolerance = 1e-12;
  o.max_inner_iterations = 400;
  SolverSummary s;
  const VarResult r = IncrementalFourDVar(o).solve(w, &s);
  ASSERT_TRUE(s.converged()) << s.FullReport();
  ASSERT_TRUE(r.map && r.posterior);
  const Matrix dense = laplace_covariance_dense(*r.map)->dense();
  LanczosEigenOptions lo;
  lo.rank = 40;
  LanczosEigenResult spectrum;
  const Matrix low = laplace_covariance_low_rank(*r.map, lo, &spectrum)->dense();
  const Matrix inner = r.posterior->covariance()->dense();
  const double low_err = test::relative_error(low, dense);
  // The inner Lanczos posterior covers only the Krylov space of the last inner solve (and that
  // outer loop's linearisation point): eigenpairs of L^T G L that CG did not need are left at the
  // prior. Its error is bounded by the neglected eigenvalues, l / (1 + l) < l_max,missed.
  const double inner_err = test::relative_error(inner, dense);
  std::cout << "[ measured ] eigenvalues of L^T G L: " << spectrum.values.maxCoeff() << " .. "
            << spectrum.values.minCoeff() << ", " << (spectrum.values.array() > 1e-2).count() << " above 1e-2\n";
  std::cout << "[ measured ] Lorenz-96 Laplace: low-rank vs dense " << low_err << ", inner Lanczos vs dense "
            << inner_err << " (posterior rank " << s.posterior_rank << ")\n";
  EXPECT_LT(low_err, 1e-9);
  EXPECT_LT(inner_err, 1e-2);
  // Extending the last inner Lanczos process to the full control size gives the exact Gauss-Newton
  // posterior at that outer loop's linearisation, which differs from the MAP by the converged last
  // increment only.
  o.posterior_lanczos_vectors = 40;
  SolverSummary se;
  const VarResult extended = IncrementalFourDVar(o).solve(w, &se);
  ASSERT_TRUE(se.converged() && extended.posterior) << se.FullReport();
  const double extended_err = test::relative_error(extended.posterior->covariance()->dense(), dense);
  std::cout << "[ measured ] extended inner Lanczos (40 vectors) vs dense " << extended_err << "; extra sweeps TL "
            << se.num_tl_sweeps - s.num_tl_sweeps << "\n";
  EXPECT_LT(extended_err, 1e-6);
  EXPECT_EQ(se.posterior_rank, 40);
  // The posterior is tighter than the prior and its marginal std comes from the operator.
  const Vector prior_std = w.b->dense().diagonal().cwiseSqrt();
  EXPECT_TRUE((r.posterior->marginal_std().array() < prior_std.array()).all());
  EXPECT_LT((r.posterior->marginal_std() - inner.diagonal().cwiseSqrt()).norm(),
            1e-12 * inner.diagonal().cwiseSqrt().norm());
}

TEST(Laplace, LowRankWithFewerObservationsThanStatesIsExactAtTheRankOfTheHessian) {
  Rng rng = testing::seeded_rng(kSeed + 1);
  // 10 observed variables at 2 times: rank(G) <= 20 < 40.
  const AssimilationWindow w = lorenz96_window(rng, 4);
  const FourDVarCost cost(w);
  const Linearization lin = cost.linearize(w.background);
  const Matrix dense = laplace_covariance_dense(lin)->dense();
  LanczosEigenOptions lo;
  lo.rank = 20;
  LanczosEigenResult info;
  const auto low = laplace_covariance_low_rank(lin, lo, &info);
  EXPECT_TRUE(info.converged) << info.message;
  EXPECT_LT(test::relative_error(low->dense(), dense), 1e-9);
  lo.rank = 5;
  EXPECT_GT(test::relative_error(laplace_covariance_low_rank(lin, lo)->dense(), dense), 1e-4);
}

TEST(Laplace, RitzValuesBelowZeroAreANumericalError) {
  auto prior = std::make_shared<DiagonalCovariance>(Vector::Ones(2));
  EXPECT_THROW(laplace_covariance_from_ritz(prior, Vector::Constant(1, -0.5), Matrix::Identity(2, 1)), NumericalError);
  EXPECT_THROW(LowRankUpdateCovariance(prior, Matrix::Ones(2, 1), Vector::Ones(1)), InvalidArgument);  // not orthonormal
  EXPECT_THROW(LowRankUpdateCovariance(prior, Matrix::Identity(2, 1), Vector::Constant(1, -1.0)), InvalidArgument);
}

TEST(Laplace, LowRankLogDeterminantAndInverseAreConsistentWithDense) {
  Rng rng = testing::seeded_rng(kSeed + 2);
  const Index n = 12;
  auto prior = std::make_shared<DenseCovariance>(test::random_spd(rng, n, 2.0));
  const Eigen::HouseholderQR<Matrix> qr(test::random_matrix(rng, n, 4));
  const Matrix v = qr.householderQ() * Matrix::Identity(n, 4);
  Vector lambda(4);
  lambda << 50.0, 3.0, 0.5, 0.01;
  const LowRankUpdateCovariance c(prior, v, lambda);
  const Matrix l = prior->dense().llt().matrixL();
  const Matrix expected = l * (Matrix::Identity(n, n) - v * (lambda.array() / (1.0 + lambda.array())).matrix().asDiagonal() * v.transpose()) * l.transpose();
  EXPECT_LT(test::relative_error(c.dense(), expected), 1e-13);
  EXPECT_NEAR(c.log_determinant(), std::log(expected.determinant()), 1e-10);
}

// B = xB I, H = I, R = I: L^T G L = xB I has one eigenvalue of multiplicity n, so one Krylov space
// is invariant after a single vector. The posterior is xB / (1 + xB) I exactly; a Lanczos posterior
// that stops at that breakdown updates one direction and leaves n - 1 at the prior xB.
TEST(Laplace, DegenerateSpectrumPosteriorIsExactOrReportsItsPriorOnlyDirections) {
  const Index n = 40;
  const double xb = 0.4;
  Rng rng = testing::seeded_rng(kSeed + 3);
  AssimilationWindow w;
  w.background = rng.normal_vector(n);
  w.b = std::make_shared<DiagonalCovariance>(DiagonalCovariance::scaled_identity(n, xb));
  w.model = std::make_shared<LinearModel>(Matrix(Matrix::Identity(n, n)));
  w.steps = 0;
  Observations o;
  o.step = 0;
  o.values = rng.normal_vector(n);
  o.op = std::make_shared<IdentityObservation>(n);
  o.r = std::make_shared<DiagonalCovariance>(Vector::Ones(n));
  w.observations.push_back(o);
  const double exact_std = std::sqrt(xb / (1.0 + xb));
  const Vector exact_mean = (w.background + xb * o.values) / (1.0 + xb);
  auto expect_exact = [&](const char* what, const VarResult& r, const SolverSummary& s) {
    ASSERT_TRUE(r.posterior) << what << ": " << s.FullReport();
    const Vector sd = r.posterior->marginal_std();
    EXPECT_LT((sd.array() - exact_std).abs().maxCoeff(), 1e-12 * exact_std) << what << ": " << sd.transpose();
    EXPECT_LT((r.analysis - exact_mean).norm(), 1e-10 * exact_mean.norm()) << what;
    EXPECT_EQ(s.posterior_rank, n) << what;
    EXPECT_EQ(r.posterior->provenance().prior_only_directions, 0) << what;
    EXPECT_EQ(r.posterior->provenance().updated_directions, n) << what;
  };
  IncrementalFourDVar::Options o_inner;
  o_inner.posterior_lanczos_vectors = n;  // the full rank: restarts after each breakdown reach it
  for (bool three_d : {false, true}) {
    SolverSummary s;
    const VarResult r = three_d ? ThreeDVar(o_inner).solve(w, &s) : IncrementalFourDVar(o_inner).solve(w, &s);
    expect_exact(three_d ? "3dvar, inner Lanczos extended" : "incremental, inner Lanczos extended", r, s);
  }
  IncrementalFourDVar::Options o_low;
  o_low.posterior = PosteriorMethod::kLowRank;
  o_low.low_rank.rank = n;
  SolverSummary s_low;
  expect_exact("low rank, rank n", IncrementalFourDVar(o_low).solve(w, &s_low), s_low);
  IncrementalFourDVar::Options o_dense;
  o_dense.posterior = PosteriorMethod::kDense;
  SolverSummary s_dense;
  expect_exact("dense", IncrementalFourDVar(o_dense).solve(w, &s_dense), s_dense);

  // The inner Krylov space alone (no extension) is one vector here: the truncation is reported, in
  // the summary and in the posterior's provenance, and the directions left out keep the prior.
  SolverSummary s0;
  const VarResult r0 = IncrementalFourDVar(IncrementalFourDVar::Options{}).solve(w, &s0);
  ASSERT_TRUE(r0.posterior);
  EXPECT_EQ(s0.posterior_rank, 1);
  EXPECT_EQ(r0.posterior->provenance().updated_directions, 1);
  EXPECT_EQ(r0.posterior->provenance().prior_only_directions, n - 1);
  EXPECT_NE(s0.posterior_message.find("39 keep their prior variance"), std::string::npos) << s0.posterior_message;
  const Matrix p0 = r0.posterior->covariance()->dense();
  const Eigen::SelfAdjointEigenSolver<Matrix> es(p0);
  EXPECT_NEAR(es.eigenvalues()[0], xb / (1.0 + xb), 1e-12);
  EXPECT_NEAR(es.eigenvalues()[n - 1], xb, 1e-12);
  // A low rank below n: exactly n - rank prior-only directions, reported.
  o_low.low_rank.rank = 10;
  SolverSummary s10;
  const VarResult r10 = IncrementalFourDVar(o_low).solve(w, &s10);
  ASSERT_TRUE(r10.posterior);
  EXPECT_EQ(s10.posterior_rank, 10);
  EXPECT_EQ(r10.posterior->provenance().prior_only_directions, n - 10);
}

Matrix orthonormal(Index n, Index k, std::uint64_t seed) {
  Rng rng(seed);
  const Eigen::HouseholderQR<Matrix> qr(test::random_matrix(rng, n, k));
  return qr.householderQ() * Matrix::Identity(n, k);
}

}  // namespace

namespace testing {
namespace {

INSTANTIATE_TEST_SUITE_P(
    Var, CovarianceConformance,
    ::testing::Values(
        CovarianceCase{"low_rank_update_dense_prior",
                       [] {
                         Rng rng(11);
                         auto prior = std::make_shared<DenseCovariance>(test::random_spd(rng, 10, 1.0));
                         Vector lambda(3);
                         lambda << 20.0, 2.0, 0.1;
                         return std::make_shared<LowRankUpdateCovariance>(prior, orthonormal(10, 3, 12), lambda);
                       }},
        CovarianceCase{"low_rank_update_periodic_prior",
                       [] {
                         auto prior = std::make_shared<PeriodicGaussianCovariance>(16, 0.5, 2.0, 1.0, 0.05);
                         Vector lambda(4);
                         lambda << 100.0, 10.0, 1.0, 0.0;
                         return std::make_shared<LowRankUpdateCovariance>(prior, orthonormal(16, 4, 13), lambda);
                       }},
        CovarianceCase{"block_diagonal",
                       [] {
                         Rng rng(14);
                         auto b = std::make_shared<DenseCovariance>(test::random_spd(rng, 5, 1.0));
                         auto q = std::make_shared<DiagonalCovariance>(Vector::LinSpaced(4, 0.1, 0.4));
                         return std::make_shared<BlockDiagonalCovariance>(
                             std::vector<std::shared_ptr<const Covariance>>{b, q, q});
                       }}),
    CaseName());

}  // namespace
}  // namespace testing
}  // namespace varflow
