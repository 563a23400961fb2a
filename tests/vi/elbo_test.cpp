// ELBO fits against exact and reference posteriors: the linear-Gaussian problem (exact posterior and
// evidence), a linear 4D-Var window through the cost (exact Gaussian posterior), and the bimodal
// two-moons posterior at y = 0 against importance weighting of prior draws, with the Laplace
// approximation beside it.
#include <gtest/gtest.h>

#include <Eigen/Cholesky>

#include <cmath>
#include <iostream>
#include <memory>

#include "varflow/amortized/problems.h"
#include "varflow/covariance/covariances.h"
#include "varflow/model/linear_model.h"
#include "varflow/obs/operators.h"
#include "varflow/posterior/posterior.h"
#include "varflow/validation/posterior_agreement.h"
#include "varflow/var/laplace.h"
#include "varflow/nn/trainer.h"
#include "varflow/vi/elbo.h"
#include "varflow/vi/flow.h"

namespace varflow::vi {
namespace {

// One OpenMP thread: ctest runs tests side by side on few cores, where thread wake-ups cost more than
// these small batches gain.
const int kSingleThread = (nn::set_thread_count(1), 0);

std::uint64_t test_seed() {
  const std::uint64_t s = seed_from_env(20261203);
  std::cout << "VARFLOW_TEST_SEED=" << s << "\n";
  return s;
}

// Mean and covariance of the columns of x.
void moments(const Matrix& x, Vector& mean, Matrix& cov) {
  mean = x.rowwise().mean();
  const Matrix c = x.colwise() - mean;
  cov = c * c.transpose() / static_cast<double>(x.cols() - 1);
}

// log p(x) + log p(y | x) of amortized::LinearGaussian: x ~ N(0, pv I), y = x + N(0, nv I). Its
// normaliser is the evidence N(y; 0, (pv + nv) I).
class LinearGaussianPosterior final : public LogDensity {
 public:
  LinearGaussianPosterior(Vector y, double pv, double nv) : y_(std::move(y)), pv_(pv), nv_(nv) {}
  Index dim() const override { return y_.size(); }
  std::string describe() const override { return "linear-gaussian posterior"; }
  double log_density(const Vector& x, Vector* g) const override {
    const double c = 0.91893853320467274178;
    const Index d = x.size();
    if (g) *g = -x / pv_ + (y_ - x) / nv_;
    return -0.5 * x.squaredNorm() / pv_ - 0.5 * (y_ - x).squaredNorm() / nv_ - static_cast<double>(d) * (2.0 * c) -
           0.5 * static_cast<double>(d) * std::log(pv_ * nv_);
  }
  double log_evidence() const {
    const double v = pv_ + nv_;
    return -0.5 * y_.squaredNorm() / v - 0.5 * static_cast<double>(y_.size()) * std::log(2.0 * M_PI * v);
  }

 private:
  Vector y_;
  double pv_, nv_;
};

FlowSpec spline_iaf(Index layers, Index hidden) {
  FlowSpec s;
  s.direction = FlowDirection::kIaf;
  s.layers = layers;
  s.autoregressive.hidden = {hidden, hidden};
  return s;
}

TEST(ElboFit, LinearGaussianPosteriorAndEvidenceAreExact) {
  Rng rng(test_seed());
  const amortized::LinearGaussian problem;  // n = 10, N(y / 2, 0.05 I)
  const amortized::Dataset data = problem.simulate(1, rng);
  const Vector y = data.y.col(0);
  const LinearGaussianPosterior target(y, 0.1, 0.1);
  for (ElboEstimator est : {ElboEstimator::kStickingTheLanding, ElboEstimator::kReparameterised}) {
    ElementwiseAffine* affine = nullptr;
    auto flow = make_flow(10, spline_iaf(2, 24), &affine);
    flow->initialize(rng);
    affine->set(Vector::Zero(10), Vector::Constant(10, std::sqrt(0.1)));  // the prior
    ElboOptions o;
    o.estimator = est;
    // STL steps cost ~5x more here (the IAF's density direction) but converge faster: 12 epochs of
    // STL reach what 20 of the reparameterised gradient do (measured in design/amortized.md).
    o.training.epochs = est == ElboEstimator::kStickingTheLanding ? 12 : 20;
    const ElboSummary s = fit_elbo(*flow, target, o, rng);
    ASSERT_TRUE(s.ok()) << s.training.message;
    Vector m;
    Matrix c;
    moments(sample_flow(*flow, 8000, rng), m, c);
    const Vector exact_mean = problem.posterior_mean(y);
    const double exact_sd = std::sqrt(problem.posterior_variance());
    const double mean_err = ((m - exact_mean) / exact_sd).cwiseAbs().maxCoeff();
    const double sd_err = (c.diagonal().cwiseSqrt() / exact_sd - Vector::Ones(10)).cwiseAbs().maxCoeff();
    const double corr = (c / problem.posterior_variance() - Matrix::Identity(10, 10)).cwiseAbs().maxCoeff();
    std::cout << to_string(est) << ": " << s.brief_report() << "\n  log Z = " << target.log_evidence()
              << ", max |mean error| / sd = " << mean_err << ", max |sd ratio - 1| = " << sd_err
              << ", max |cov / var - I| = " << corr << "\n";
    // 8000 draws: the Monte Carlo error of a mean is 0.011 sd and of an sd 0.8%; these limits are
    // about 5 of those standard errors plus what the fit leaves.
    EXPECT_LT(mean_err, 0.08);
    EXPECT_LT(sd_err, 0.06);
    EXPECT_LT(corr, 0.08);
    // ELBO <= log Z with equality iff q is the posterior.
    EXPECT_LT(s.evaluation.elbo - 3.0 * s.evaluation.elbo_standard_error, target.log_evidence());
    EXPECT_GT(s.evaluation.elbo, target.log_evidence() - 0.03);
    EXPECT_NEAR(s.evaluation.log_evidence, target.log_evidence(), 0.01);
    EXPECT_GT(s.evaluation.ess_fraction, 0.9);
  }
}

// A linear window (LinearModel, a subset observed at two times) of n = 4 with random background and
// observations, and B (dense).
AssimilationWindow linear_window(Rng& rng, Matrix& bmat) {
  const Index n = 4;
  Matrix a = Matrix::Identity(n, n) * 0.9;
  for (Index i = 0; i < n; ++i) a(i, (i + 1) % n) = 0.3;
  AssimilationWindow w;
  w.background = rng.normal_vector(n);
  bmat = 0.5 * Matrix::Identity(n, n);
  bmat(0, 1) = bmat(1, 0) = 0.2;
  w.b = std::make_shared<DenseCovariance>(bmat);
  w.model = std::make_shared<LinearModel>(a);
  w.steps = 3;
  for (Index step : {Index{1}, Index{3}}) {
    Observations o;
    o.step = step;
    o.op = std::make_shared<SubsetObservation>(n, std::vector<Index>{0, 2});
    o.r = std::make_shared<DiagonalCovariance>(Vector::Constant(2, 0.2));
    o.values = rng.normal_vector(2);
    w.observations.push_back(o);
  }
  return w;
}

// The exact posterior of a linear window: J is quadratic, its minimum one Newton step from anywhere,
// its covariance the dense Laplace (Gauss-Newton = full Hessian) one.
void exact_linear_posterior(const FourDVarCost& cost, Vector& map, Matrix& cov) {
  const Index n = cost.state_size();
  const Vector xb = cost.window().background;
  const Linearization lin0 = cost.linearize(xb);
  Matrix hess(n, n);
  for (Index i = 0; i < n; ++i) hess.col(i) = lin0.full_hessian_multiply(Vector::Unit(n, i));
  map = xb - hess.ldlt().solve(lin0.gradient());
  cov = laplace_covariance_dense(cost.linearize(map))->dense();
}

// An affine MAF fitted to -J of the window (20 epochs), started at the background.
std::unique_ptr<Flow> fit_linear_window(const FourDVarCost& cost, const Matrix& bmat, Rng& rng, ElboSummary* s) {
  ElementwiseAffine* affine = nullptr;
  FlowSpec spec;
  spec.direction = FlowDirection::kMaf;
  spec.layers = 2;
  spec.autoregressive.transformer = Transformer::kAffine;
  spec.autoregressive.hidden = {16};
  auto flow = make_flow(cost.state_size(), spec, &affine);
  flow->initialize(rng);
  affine->set(cost.window().background, bmat.diagonal().cwiseSqrt());
  ElboOptions o;
  o.training.epochs = 20;
  *s = fit_elbo(*flow, FourDVarLogDensity(cost), o, rng);
  return flow;
}

// A linear window makes -J the log of a Gaussian posterior exactly: VI from the 4D-Var cost must find
// its mean and covariance.
TEST(ElboFit, FourDVarCostOfALinearWindowGivesItsExactGaussianPosterior) {
  Rng rng(test_seed());
  Matrix bmat;
  const FourDVarCost cost(linear_window(rng, bmat));
  Vector map;
  Matrix exact_cov;
  exact_linear_posterior(cost, map, exact_cov);
  ElboSummary s;
  auto flow = fit_linear_window(cost, bmat, rng, &s);
  ASSERT_TRUE(s.ok()) << s.training.message;
  Vector m;
  Matrix c;
  moments(sample_flow(*flow, 8000, rng), m, c);
  const Vector sd = exact_cov.diagonal().cwiseSqrt();
  const double mean_err = ((m - map).array() / sd.array()).abs().maxCoeff();
  const Matrix corr_err = (c - exact_cov).array() / (sd * sd.transpose()).array();
  std::cout << s.brief_report() << "\n  max |mean - MAP| / sd = " << mean_err
            << ", max |cov error| / (sd_i sd_j) = " << corr_err.cwiseAbs().maxCoeff() << "\n";
  EXPECT_LT(mean_err, 0.08);
  EXPECT_LT(corr_err.cwiseAbs().maxCoeff(), 0.08);
  EXPECT_GT(s.evaluation.ess_fraction, 0.9);
}

// A VI posterior (its draws) as the oracle of the posterior-agreement gate: the exact posterior passes
// against it, and a planted fault (half the spread, or the mean moved by two sd) fails.
TEST(ElboFit, VariationalPosteriorServesAsTheOracleOfTheAgreementGate) {
  Rng rng(test_seed());
  std::vector<AgreementEvent> good, narrow, shifted;
  for (int e = 0; e < 2; ++e) {
    Matrix bmat;
    const FourDVarCost cost(linear_window(rng, bmat));
    Vector map;
    Matrix cov;
    exact_linear_posterior(cost, map, cov);
    ElboSummary s;
    auto flow = fit_linear_window(cost, bmat, rng, &s);
    ASSERT_TRUE(s.ok()) << s.training.message;
    auto oracle = std::make_shared<SamplePosterior>(sample_flow(*flow, 2000, rng));
    const std::string name = "window " + std::to_string(e);
    good.push_back({name, std::make_shared<GaussianPosterior>(map, std::make_shared<DenseCovariance>(cov)), oracle});
    narrow.push_back({name, std::make_shared<GaussianPosterior>(map, std::make_shared<DenseCovariance>(0.25 * cov)), oracle});
    const Vector moved = map + 2.0 * cov.diagonal().cwiseSqrt();
    shifted.push_back({name, std::make_shared<GaussianPosterior>(moved, std::make_shared<DenseCovariance>(cov)), oracle});
  }
  const AgreementResult ok = posterior_agreement_gate(good);
  std::cout << ok.report() << "\n";
  EXPECT_TRUE(ok.passed());
  EXPECT_FALSE(posterior_agreement_gate(narrow).spread_passed);
  EXPECT_FALSE(posterior_agreement_gate(shifted).mean_passed);
}

// Share of the draws nearer the upper moon, and the moments of x.
struct MoonFigures {
  double upper = 0.0;
  Vector mean;
  Vector sd;
};
MoonFigures figures(const Matrix& x, const Vector* weights = nullptr) {
  MoonFigures f;
  const Index n = x.cols();
  Vector w = weights ? *weights : Vector::Ones(n);
  w /= w.sum();
  f.mean = x * w;
  const Matrix c = x.colwise() - f.mean;
  f.sd = (c.array().square().matrix() * w).cwiseSqrt();
  for (Index j = 0; j < n; ++j) {
    if (amortized::TwoMoons::distance_to_moon(x.col(j), 0) < amortized::TwoMoons::distance_to_moon(x.col(j), 1)) f.upper += w[j];
  }
  return f;
}

TEST(ElboFit, BimodalTwoMoonsPosteriorMatchesImportanceReferenceWhereLaplaceDoesNot) {
  Rng rng(test_seed());
  const double y = 0.0;
  // Reference: 4 10^5 prior draws weighted by the likelihood (effective size ~ 10^4).
  const Matrix prior = amortized::TwoMoons::sample_prior(400000, rng);
  Vector lw(prior.cols());
  for (Index j = 0; j < prior.cols(); ++j) lw[j] = amortized::TwoMoons::likelihood(prior(0, j) + prior(1, j), y);
  const MoonFigures ref = figures(prior, &lw);
  const TwoMoonsPosterior target(y);
  ElementwiseAffine* affine = nullptr;
  auto flow = make_flow(2, spline_iaf(4, 32), &affine);
  flow->initialize(rng);
  ElboOptions o;
  o.training.epochs = 40;
  // The mass-covering forward-KL gradient: reverse KL (STL) collapsed onto one moon, or the wrong
  // share of them, on 5 of 7 seeds (design/amortized.md); forward KL passes on all 7.
  o.estimator = ElboEstimator::kForwardKl;
  const ElboSummary s = fit_elbo(*flow, target, o, rng);
  ASSERT_TRUE(s.ok()) << s.training.message;
  const MoonFigures vi = figures(sample_flow(*flow, 20000, rng));
  // Laplace about the mode Newton reaches from a point of the line x1 + x2 = y (from x = 0 itself, a
  // saddle between the modes, it reports no convergence).
  EXPECT_FALSE(laplace_approximation(target, Vector::Zero(2)).converged);
  const LaplaceApproximation lap = laplace_approximation(target, (Vector(2) << 0.5, -0.5).finished());
  ASSERT_TRUE(lap.converged);
  const Eigen::LLT<Matrix> llt(lap.covariance);
  Matrix lx(2, 20000);
  for (Index j = 0; j < lx.cols(); ++j) lx.col(j) = lap.mode + llt.matrixL() * rng.normal_vector(2);
  const MoonFigures la = figures(lx);
  std::cout << s.brief_report() << "\n"
            << "upper-moon share: reference " << ref.upper << ", VI " << vi.upper << ", Laplace " << la.upper << "\n"
            << "mean: reference " << ref.mean.transpose() << ", VI " << vi.mean.transpose() << ", Laplace "
            << la.mean.transpose() << "\nsd: reference " << ref.sd.transpose() << ", VI " << vi.sd.transpose()
            << ", Laplace " << la.sd.transpose() << "\n";
  ASSERT_GT(ref.upper, 0.2);  // the case is bimodal
  ASSERT_LT(ref.upper, 0.8);
  EXPECT_NEAR(vi.upper, ref.upper, 0.1);
  EXPECT_LT(((vi.mean - ref.mean).array() / ref.sd.array()).abs().maxCoeff(), 0.2);
  EXPECT_LT(((vi.sd.array() / ref.sd.array()) - 1.0).abs().maxCoeff(), 0.2);
  EXPECT_GT(std::abs(la.upper - ref.upper), 0.3);  // one mode only
}

}  // namespace
}  // namespace varflow::vi
