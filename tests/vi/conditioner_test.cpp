// The composed-flow conditioner (vi/conditioner.h): the gradient of its target against finite
// differences, and maximum-likelihood training of a flow prior.
#include <gtest/gtest.h>

#include <cmath>
#include <iostream>
#include <memory>

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

}  // namespace
}  // namespace varflow::vi
