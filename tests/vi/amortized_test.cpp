// Amortized VI (vi/amortized.h): the conditional flow's passes and the amortized ELBO gradient against
// finite differences, then a fit on linear-Gaussian (exact posterior N(y/2, 0.05 I)) held to the exact
// mean and variance, and simulation-based calibration (gate 3) of the fitted q(x | y), with a planted
// over-dispersed copy that the gate must reject.
#include <gtest/gtest.h>

#include <cmath>
#include <iostream>
#include <memory>
#include <numbers>

#include "varflow/nn/gradient_check.h"
#include "varflow/nn/trainer.h"
#include "varflow/validation/sbc.h"
#include "varflow/vi/amortized.h"

namespace varflow::vi {
namespace {

const int kSingleThread = (nn::set_thread_count(1), 0);

std::uint64_t test_seed() {
  const std::uint64_t s = seed_from_env(20261206);
  std::cout << "VARFLOW_TEST_SEED=" << s << "\n";
  return s;
}

// A small conditional flow (context affine + one spline IAF layer) with parameters moved off zero.
std::unique_ptr<Flow> perturbed_flow(Index d, Index c, Rng& rng, ContextAffine** context) {
  FlowSpec spec;
  spec.direction = FlowDirection::kIaf;
  spec.layers = 1;
  spec.autoregressive.hidden = {6};
  spec.autoregressive.spline.bins = 4;
  auto flow = make_conditional_flow(d, c, spec, {5}, context);
  flow->initialize(rng);
  for (Index i = 0; i < flow->parameters().size(); ++i) flow->parameters().values()[i] += 0.3 * rng.normal();
  return flow;
}

TEST(ConditionalFlow, DensityAndSamplingAgreeAndTheirGradientsMatchFiniteDifferences) {
  Rng rng(test_seed());
  const Index d = 3, c = 2, n = 4;
  ContextAffine* ctx = nullptr;
  auto flow = perturbed_flow(d, c, rng, &ctx);
  Matrix y(c, n), z(d, n);
  for (Index j = 0; j < n; ++j) {
    y.col(j) = rng.normal_vector(c);
    z.col(j) = rng.normal_vector(d);
  }
  ctx->set_context(y);
  Matrix x;
  Vector lq;
  flow->sample(z, x, lq);
  const Vector lp = flow->log_prob(x);
  EXPECT_LT((lp - lq).cwiseAbs().maxCoeff(), 1e-8);
  // A different context gives a different density at the same x (the context is used).
  ctx->set_context(y.array() + 1.0);
  EXPECT_GT((flow->log_prob(x) - lq).cwiseAbs().maxCoeff(), 1e-3);
  ctx->set_context(y);

  // d(sum log q)/dx and d(sum log q)/dtheta.
  Vector w = Vector::Ones(n);
  Matrix gx;
  flow->parameters().zero_gradients();
  flow->log_prob(x);
  flow->log_prob_backward(w, gx, true);
  const Vector gtheta = flow->parameters().gradients();
  const Eigen::Map<const Vector> xv(x.data(), x.size());
  const Vector fd_x = nn::finite_difference_gradient(
      [&](const Vector& v) { return flow->log_prob(Eigen::Map<const Matrix>(v.data(), d, n)).sum(); }, xv, 1e-6);
  EXPECT_LT(nn::relative_error(Eigen::Map<const Vector>(gx.data(), gx.size()), fd_x), 1e-6);
  const Vector theta0 = flow->parameters().values();
  const Vector fd_theta = nn::finite_difference_gradient(
      [&](const Vector& t) {
        flow->parameters().values() = t;
        return flow->log_prob(x).sum();
      },
      theta0, 1e-6);
  flow->parameters().values() = theta0;
  EXPECT_LT(nn::relative_error(gtheta, fd_theta), 1e-6);
}

TEST(AmortizedElbo, GradientMatchesFiniteDifferencesOfTheMonteCarloLoss) {
  Rng rng(test_seed());
  const Index d = 3;
  const LinearGaussianJoint target(d);
  ContextAffine* ctx = nullptr;
  auto flow = perturbed_flow(d, d, rng, &ctx);
  Matrix x, y, z(d, 6);
  target.simulate(6, rng, x, y);
  for (Index j = 0; j < z.cols(); ++j) z.col(j) = rng.normal_vector(d);
  flow->parameters().zero_gradients();
  amortized_elbo_loss(*flow, *ctx, target, z, y, ElboEstimator::kReparameterised, true);
  const Vector g = flow->parameters().gradients();
  // STL drops the score term: reparameterised - STL = mean_j d log q(x_j | y_j)/dtheta at fixed x_j.
  flow->parameters().zero_gradients();
  amortized_elbo_loss(*flow, *ctx, target, z, y, ElboEstimator::kStickingTheLanding, true);
  const Vector g_stl = flow->parameters().gradients();
  {
    Matrix xs, gx;
    Vector lqs;
    ctx->set_context(y);
    flow->sample(z, xs, lqs);
    flow->parameters().zero_gradients();
    flow->log_prob(xs);
    flow->log_prob_backward(Vector::Constant(z.cols(), 1.0 / static_cast<double>(z.cols())), gx, true);
    const Vector score_term = flow->parameters().gradients();
    EXPECT_LT(nn::relative_error(g - g_stl, score_term), 1e-8);
  }
  const Vector theta0 = flow->parameters().values();
  const Vector fd = nn::finite_difference_gradient(
      [&](const Vector& t) {
        flow->parameters().values() = t;
        return amortized_elbo_loss(*flow, *ctx, target, z, y, ElboEstimator::kReparameterised, false);
      },
      theta0, 1e-6);
  flow->parameters().values() = theta0;
  EXPECT_LT(nn::relative_error(g, fd), 1e-6);
  // The joint's x-gradient too.
  Matrix gj;
  target.log_joint_batch(x, y, &gj);
  for (Index j = 0; j < 2; ++j) {
    const Vector fdj = nn::finite_difference_gradient(
        [&](const Vector& v) { return target.log_joint_batch(Matrix(v), Matrix(y.col(j)), nullptr)[0]; },
        x.col(j), 1e-6);
    EXPECT_LT(nn::relative_error(gj.col(j), fdj), 1e-7);
  }
}

TEST(AmortizedElbo, LinearGaussianPosteriorIsRecoveredForEveryObservationAndPassesSbc) {
  Rng rng(test_seed());
  const Index d = 10;
  const LinearGaussianJoint target(d);
  FlowSpec spec;
  spec.direction = FlowDirection::kIaf;
  spec.layers = 1;
  spec.autoregressive.transformer = Transformer::kAffine;
  spec.autoregressive.hidden = {16};
  ContextAffine* ctx = nullptr;
  auto flow = make_conditional_flow(d, d, spec, {64}, &ctx);
  flow->initialize(rng);
  ElboOptions o;
  o.estimator = ElboEstimator::kStickingTheLanding;
  o.draws = 128;
  o.training.epochs = 80;
  o.training.learning_rate = 1e-2;
  // The validation -ELBO on 512 fixed (y, z) cannot rank epochs whose q differ by less than its Monte
  // Carlo error; the cosine schedule's last epoch is the fit.
  o.training.restore_best = false;
  const ElboSummary s = fit_amortized_elbo(*flow, *ctx, target, o, rng);
  ASSERT_TRUE(s.ok()) << s.training.message;
  // At q = p(x | y) the amortized ELBO is E_y log p(y), y ~ N(0, (pv + nv) I): -d/2 (log 2 pi (pv + nv) + 1).
  const double expected_log_evidence = -0.5 * static_cast<double>(d) * (std::log(2.0 * std::numbers::pi * 0.2) + 1.0);
  std::cout << s.brief_report() << "\nE_y log p(y) = " << expected_log_evidence << "\n";
  EXPECT_LT(expected_log_evidence - s.evaluation.elbo, 0.02 + 3.0 * s.evaluation.elbo_standard_error);

  // Mean and variance at observations across p(y) (sd of y: sqrt(0.2) = 0.45 per component).
  double worst_mean = 0.0, worst_var = 0.0;
  for (int k = 0; k < 5; ++k) {
    Matrix xt, yt;
    target.simulate(1, rng, xt, yt);
    const Vector yk = yt.col(0);
    const Matrix draws = sample_conditional(*flow, *ctx, yk, 20000, rng);
    const Vector m = draws.rowwise().mean();
    const Vector v = (draws.colwise() - m).array().square().rowwise().sum() / static_cast<double>(draws.cols() - 1);
    const double sd = std::sqrt(target.posterior_variance());
    worst_mean = std::max(worst_mean, ((m - target.posterior_mean(yk)).array() / sd).abs().maxCoeff());
    worst_var = std::max(worst_var, (v.array() / target.posterior_variance() - 1.0).abs().maxCoeff());
  }
  std::cout << "max |mean - exact| / sd = " << worst_mean << ", max |var / exact - 1| = " << worst_var << "\n";
  // 20000 draws: Monte Carlo errors 0.007 sd in the mean, 1% in the variance; the rest is the fit.
  EXPECT_LT(worst_mean, 0.1);
  EXPECT_LT(worst_var, 0.1);

  // SBC (gate 3 with its default thresholds) of q(x | y).
  SbcProblem problem;
  problem.prior_sample = [&](Rng& r) { return Vector(std::sqrt(target.prior_variance()) * r.normal_vector(d)); };
  problem.simulate = [&](const Vector& x, Rng& r) { return Vector(x + std::sqrt(0.1) * r.normal_vector(d)); };
  problem.posterior_samples = [&](const Vector& y, Index n, Rng& r) { return sample_conditional(*flow, *ctx, y, n, r); };
  problem.prior_variance = Vector::Constant(d, target.prior_variance());
  SbcOptions so;
  const SbcResult sbc = sbc_gate(problem, so, rng);
  std::cout << sbc.report() << "\n";
  EXPECT_TRUE(sbc.passed());
  // A planted fault: the same draws spread 1.5x about their mean (over-dispersed) must fail.
  SbcProblem wide = problem;
  wide.posterior_samples = [&](const Vector& y, Index n, Rng& r) {
    const Matrix x = sample_conditional(*flow, *ctx, y, n, r);
    const Vector m = x.rowwise().mean();
    return Matrix((1.5 * (x.colwise() - m)).colwise() + m);
  };
  const SbcResult wide_sbc = sbc_gate(wide, so, rng);
  std::cout << "planted 1.5x spread: " << wide_sbc.report().substr(0, wide_sbc.report().find('\n', wide_sbc.report().find('\n') + 1)) << "\n";
  EXPECT_FALSE(wide_sbc.calibration_passed());
}

}  // namespace
}  // namespace varflow::vi
