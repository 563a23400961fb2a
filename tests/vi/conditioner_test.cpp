// The composed-flow conditioner (vi/conditioner.h): the gradient of its target against finite
// differences, maximum-likelihood training of a flow prior, and the forward-KL conditioner on the
// bimodal two-moons conditional against the importance-weighted reference of the same prior (the
// reverse-KL fits that collapse onto one moon are measured by varflow_vi_conditioner_bench).
#include <gtest/gtest.h>

#include <cmath>
#include <iostream>
#include <memory>

#include "varflow/amortized/problems.h"
#include "varflow/core/error.h"
#include "varflow/core/stopwatch.h"
#include "varflow/nn/gradient_check.h"
#include "varflow/nn/trainer.h"
#include "varflow/obs/operators.h"
#include "varflow/vi/conditioner.h"

namespace varflow::vi {
namespace {

const int kSingleThread = (nn::set_thread_count(1), 0);

std::uint64_t test_seed() {
  const std::uint64_t s = seed_from_env(20261204);
  std::cout << "VARFLOW_TEST_SEED=" << s << "\n";
  return s;
}

// Sizes of the two-moons case (runtime: seconds) and its tolerances (design/amortized.md, section 5).
constexpr Index kPriorLayers = 4, kPriorEpochs = 12, kPriorDraws = 6000;
constexpr double kShareTolerance = 0.08;  // upper-moon share against the reference
constexpr double kMeanTolerance = 0.2;    // |mean - reference| in reference sd
constexpr double kSdTolerance = 0.2;      // |sd / reference sd - 1|
// The Gaussian case against its exact conditional: 20000 draws give Monte Carlo errors ~0.01 sd in the
// mean and ~0.01 in the covariance; the rest is the fit.
constexpr double kGaussianMeanTolerance = 0.15;      // in exact sd
constexpr double kGaussianCovarianceTolerance = 0.15;  // of sd_i sd_j

std::shared_ptr<const ObservationOperator> sum_operator() {
  Matrix h(1, 2);
  h << 1.0, 1.0;
  return std::make_shared<LinearObservation>(h);
}

TEST(ComposedConditional, GradientMatchesFiniteDifferences) {
  Rng rng(test_seed());
  FlowSpec spec;
  spec.direction = FlowDirection::kMaf;
  spec.layers = 2;
  spec.autoregressive.hidden = {8};
  auto prior = make_flow(2, spec);
  prior->initialize(rng);
  for (Index i = 0; i < prior->parameters().size(); ++i) prior->parameters().values()[i] += 0.3 * rng.normal();
  const ComposedConditional target(*prior, sum_operator(), Vector::Constant(1, 0.3), 0.2);
  for (int k = 0; k < 3; ++k) {
    const Vector z = rng.normal_vector(2);
    Vector g;
    target.log_density(z, &g);
    const Vector fd = nn::finite_difference_gradient([&](const Vector& v) { return target.log_density(v, nullptr); }, z, 1e-5);
    EXPECT_LT(nn::relative_error(g, fd), 1e-6);
  }
}

// A Gaussian is in the family of an affine MAF: maximum likelihood must recover its moments.
TEST(FitDensity, AffineMafRecoversTheMomentsOfGaussianData) {
  Rng rng(test_seed());
  Matrix l(2, 2);
  l << 1.0, 0.0, 0.8, 0.5;
  const Vector mu = (Vector(2) << 1.0, -2.0).finished();
  Matrix data(2, 4000);
  for (Index j = 0; j < data.cols(); ++j) data.col(j) = mu + l * rng.normal_vector(2);
  FlowSpec spec;
  spec.direction = FlowDirection::kMaf;
  spec.layers = 1;
  spec.autoregressive.transformer = Transformer::kAffine;
  spec.autoregressive.hidden = {8};
  auto flow = make_flow(2, spec);
  flow->initialize(rng);
  nn::TrainingOptions t;
  t.epochs = 30;
  t.batch_size = 128;
  t.learning_rate = 1e-2;
  t.schedule = nn::LearningRateSchedule::kCosine;
  t.patience = 0;
  const nn::TrainingSummary s = fit_density(*flow, data, t, rng);
  ASSERT_TRUE(s.ok()) << s.message;
  const Matrix x = sample_flow(*flow, 20000, rng);
  const Vector m = x.rowwise().mean();
  const Matrix c = (x.colwise() - m) * (x.colwise() - m).transpose() / static_cast<double>(x.cols() - 1);
  // The maximum-likelihood Gaussian of the data is its sample mean and (1/n) covariance.
  const Vector dm = data.rowwise().mean();
  const Matrix exact = (data.colwise() - dm) * (data.colwise() - dm).transpose() / static_cast<double>(data.cols());
  std::cout << s.brief_report() << "\nmean " << m.transpose() << " (data " << dm.transpose() << ")\ncov\n" << c
            << "\n(exact\n" << exact << ")\n";
  // 20000 draws: Monte Carlo errors ~0.007 in the mean and ~0.01 in the covariance; the rest is what
  // the fit (on 90% of the data, validation-best epoch) leaves.
  EXPECT_LT((m - dm).cwiseAbs().maxCoeff(), 0.05);
  EXPECT_LT((c - exact).cwiseAbs().maxCoeff(), 0.08);
}

// An affine MAF prior is exactly Gaussian, N(m, C) (its moments from 2 10^5 of its draws), so the
// smoothed conditional on x1 + x2 = y is the Gaussian N(m + K (y - h m), C - K h C), K = C h^T / (h C h^T
// + sigma^2): the conditioner's mean and covariance are held to it.
TEST(FitConditioner, GaussianPriorGivesTheExactGaussianConditional) {
  Rng rng(test_seed());
  Matrix l(2, 2);
  l << 1.0, 0.0, 0.8, 0.5;
  Matrix data(2, 4000);
  for (Index j = 0; j < data.cols(); ++j) data.col(j) = l * rng.normal_vector(2);
  FlowSpec spec;
  spec.direction = FlowDirection::kMaf;
  spec.layers = 1;
  spec.autoregressive.transformer = Transformer::kAffine;
  spec.autoregressive.hidden = {8};
  auto prior = make_flow(2, spec);
  prior->initialize(rng);
  nn::TrainingOptions t;
  t.epochs = 20;
  t.batch_size = 128;
  t.learning_rate = 1e-2;
  t.schedule = nn::LearningRateSchedule::kCosine;
  t.patience = 0;
  ASSERT_TRUE(fit_density(*prior, data, t, rng).ok());
  const Matrix px = sample_flow(*prior, 200000, rng);
  const Vector m = px.rowwise().mean();
  const Matrix c = (px.colwise() - m) * (px.colwise() - m).transpose() / static_cast<double>(px.cols() - 1);
  const Vector y = Vector::Constant(1, 1.5);  // 1.5 sd of x1 + x2 out in the prior
  const double sigma = 0.1;
  const Matrix h = (Matrix(1, 2) << 1.0, 1.0).finished();
  const Matrix k = c * h.transpose() / ((h * c * h.transpose())(0, 0) + sigma * sigma);
  const Vector exact_mean = m + k * (y - h * m);
  const Matrix exact_cov = c - k * h * c;
  auto q = make_flow(2, FlowSpec{});
  q->initialize(rng);
  const ConditionerSummary cs = fit_conditioner(*q, *prior, sum_operator(), y, sigma, ConditionerOptions{}, rng);
  ASSERT_TRUE(cs.ok()) << cs.brief_report();
  const ComposedConditional target(*prior, sum_operator(), y, sigma);
  const Matrix x = target.push(sample_flow(*q, 20000, rng));
  const Vector qm = x.rowwise().mean();
  const Matrix qc = (x.colwise() - qm) * (x.colwise() - qm).transpose() / static_cast<double>(x.cols() - 1);
  const Vector sd = exact_cov.diagonal().cwiseSqrt();
  const double mean_error = ((qm - exact_mean).array() / sd.array()).abs().maxCoeff();
  const double cov_error = (qc - exact_cov).cwiseAbs().cwiseQuotient(sd * sd.transpose()).maxCoeff();
  std::cout << cs.brief_report() << "\nmean " << qm.transpose() << " (exact " << exact_mean.transpose() << ")\ncov\n"
            << qc << "\n(exact\n" << exact_cov << ")\nmax |mean error| / sd = " << mean_error
            << ", max |cov error| / (sd_i sd_j) = " << cov_error << "\n";
  EXPECT_LT(mean_error, kGaussianMeanTolerance);
  EXPECT_LT(cov_error, kGaussianCovarianceTolerance);
}

// Share of the draws nearer the upper moon, and the (weighted) moments.
struct MoonFigures {
  double upper = 0.0;
  Vector mean, sd;
};
MoonFigures figures(const Matrix& x, const Vector& weights) {
  MoonFigures f;
  const Vector w = weights / weights.sum();
  f.mean = x * w;
  f.sd = ((x.colwise() - f.mean).array().square().matrix() * w).cwiseSqrt();
  for (Index j = 0; j < x.cols(); ++j) {
    if (amortized::TwoMoons::distance_to_moon(x.col(j), 0) < amortized::TwoMoons::distance_to_moon(x.col(j), 1)) f.upper += w[j];
  }
  return f;
}

// A two-moons flow prior (spline MAF) trained on prior draws, shared by the tests below.
Flow& two_moons_prior() {
  static std::unique_ptr<Flow> prior = [] {
    Rng rng(test_seed());
    FlowSpec spec;
    spec.direction = FlowDirection::kMaf;
    spec.layers = kPriorLayers;
    spec.autoregressive.hidden = {32, 32};
    auto flow = make_flow(2, spec);
    flow->initialize(rng);
    nn::TrainingOptions t;
    t.epochs = kPriorEpochs;
    t.batch_size = 128;
    t.learning_rate = 5e-3;
    t.schedule = nn::LearningRateSchedule::kCosine;
    t.patience = 0;
    Stopwatch sw;
    const nn::TrainingSummary s = fit_density(*flow, amortized::TwoMoons::sample_prior(kPriorDraws, rng), t, rng);
    std::cout << "two-moons prior: " << s.brief_report() << " (" << sw.seconds() << " s)\n";
    if (!s.ok()) throw NumericalError("two-moons prior: " + s.message);
    return flow;
  }();
  return *prior;
}

struct ConditionedMoons {
  MoonFigures reference, fitted;
  ConditionerSummary summary;
};

// Conditions the two-moons prior on x1 + x2 = 0 (sigma 0.1, bimodal) and measures the fitted
// pre-generator (10^4 draws) against the prior-flow draws (5 10^4, effective size ~4000) weighted by the smoothed likelihood.
ConditionedMoons condition_moons(const ConditionerOptions& options, Rng& rng) {
  Flow& prior = two_moons_prior();
  const auto op = sum_operator();
  const Vector y = Vector::Zero(1);
  const double sigma = 0.1;
  const ComposedConditional target(prior, op, y, sigma);
  ConditionedMoons r;
  Matrix z(2, 50000);
  for (Index j = 0; j < z.cols(); ++j) z.col(j) = rng.normal_vector(2);
  const Matrix xr = target.push(z);
  Vector w(xr.cols());
  for (Index j = 0; j < xr.cols(); ++j) w[j] = std::exp(-0.5 * std::pow(xr(0, j) + xr(1, j), 2) / (sigma * sigma));
  r.reference = figures(xr, w);
  FlowSpec spec;
  spec.direction = FlowDirection::kIaf;
  spec.layers = 3;
  auto q = make_flow(2, spec);
  q->initialize(rng);  // the identity: q = N(0, I)
  Stopwatch sw;
  r.summary = fit_conditioner(*q, prior, op, y, sigma, options, rng);
  const Matrix x = target.push(sample_flow(*q, 10000, rng));
  r.fitted = figures(x, Vector::Ones(x.cols()));
  std::cout << to_string(options.elbo.estimator) << ", " << options.stages << " stages: " << r.summary.brief_report()
            << " (" << sw.seconds() << " s)\nupper-moon share: reference " << r.reference.upper << ", fitted "
            << r.fitted.upper << "\nmean: reference " << r.reference.mean.transpose() << ", fitted "
            << r.fitted.mean.transpose() << "\nsd: reference " << r.reference.sd.transpose() << ", fitted "
            << r.fitted.sd.transpose() << "\n";
  return r;
}

TEST(FitConditioner, ForwardKlPreGeneratorKeepsBothMoonsOfTheTwoMoonsConditional) {
  Rng rng(test_seed() + 1);
  const ConditionedMoons r = condition_moons(ConditionerOptions{}, rng);
  ASSERT_TRUE(r.summary.ok());
  ASSERT_GT(r.reference.upper, 0.2);  // the conditional is bimodal
  ASSERT_LT(r.reference.upper, 0.8);
  EXPECT_NEAR(r.fitted.upper, r.reference.upper, kShareTolerance);
  EXPECT_LT(((r.fitted.mean - r.reference.mean).array() / r.reference.sd.array()).abs().maxCoeff(), kMeanTolerance);
  EXPECT_LT(((r.fitted.sd.array() / r.reference.sd.array()) - 1.0).abs().maxCoeff(), kSdTolerance);
}

}  // namespace
}  // namespace varflow::vi
