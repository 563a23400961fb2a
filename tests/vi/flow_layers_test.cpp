// Every flow layer of vi/flow.h in both directions: inversion, the change-of-variables identity (the
// log-determinant against the log|det| of a finite-difference Jacobian), and the reverse mode of each
// direction (input and parameter gradients) against central finite differences; then whole MAF and IAF
// flows (density/sampling consistency, normalisation by quadrature, gradients of log_prob and sample)
// and the ELBO gradient estimators.
#include <gtest/gtest.h>

#include <Eigen/LU>

#include <cmath>
#include <functional>
#include <iostream>
#include <memory>
#include <string>

#include "varflow/nn/gradient_check.h"
#include "varflow/nn/trainer.h"
#include "varflow/vi/elbo.h"
#include "varflow/vi/flow.h"

namespace varflow::vi {
namespace {

// One OpenMP thread: ctest runs tests side by side on few cores, where thread wake-ups cost more than
// these small batches gain.
const int kSingleThread = (nn::set_thread_count(1), 0);

std::uint64_t test_seed() {
  const std::uint64_t s = seed_from_env(20261202);
  std::cout << "VARFLOW_TEST_SEED=" << s << "\n";
  return s;
}

AutoregressiveOptions small_options(Transformer t) {
  AutoregressiveOptions o;
  o.transformer = t;
  o.spline.bins = 4;
  o.spline.bound = 3.0;
  o.hidden = {6};
  return o;
}

// A layer with its parameter set, parameters moved away from the identity.
struct Bound {
  std::unique_ptr<FlowLayer> layer;
  nn::ParameterSet params;
};

std::unique_ptr<Bound> bound_layer(std::unique_ptr<FlowLayer> layer, Rng& rng, double spread) {
  auto b = std::make_unique<Bound>();
  b->layer = std::move(layer);
  b->params.add("layer", *b->layer);
  b->params.bind();
  b->layer->initialize(rng);
  for (Index i = 0; i < b->params.size(); ++i) b->params.values()[i] += spread * rng.normal();
  return b;
}

struct LayerCase {
  std::string name;
  std::function<std::unique_ptr<FlowLayer>()> make;
  double fd_step;  // the finite-difference step (larger where an iterative inverse is differenced)
};

std::vector<LayerCase> layer_cases() {
  const Index d = 3;
  return {
      {"affine", [] { return std::make_unique<ElementwiseAffine>(3); }, 1e-6},
      {"permutation", [] { return std::make_unique<Permutation>(std::vector<Index>{2, 0, 1}); }, 1e-6},
      {"maf_spline", [] { return std::make_unique<Autoregressive>(3, small_options(Transformer::kSpline)); }, 1e-6},
      {"maf_affine", [] { return std::make_unique<Autoregressive>(3, small_options(Transformer::kAffine)); }, 1e-6},
      {"iaf_spline",
       [] { return std::make_unique<Inverted>(std::make_unique<Autoregressive>(3, small_options(Transformer::kSpline))); },
       1e-6},
      {"mixture_cdf", [] { return std::make_unique<MixtureCdf>(3, 3); }, 1e-5},
      {"inverted_mixture_cdf", [] { return std::make_unique<Inverted>(std::make_unique<MixtureCdf>(3, 3)); }, 1e-5},
  };
  (void)d;
}

class FlowLayerTest : public ::testing::TestWithParam<LayerCase> {};

TEST_P(FlowLayerTest, InvertsAndItsLogDeterminantIsThatOfItsJacobian) {
  Rng rng(test_seed());
  auto b = bound_layer(GetParam().make(), rng, 0.4);
  FlowLayer& layer = *b->layer;
  const Index d = 3, n = 5;
  Matrix x(d, n);
  for (Index j = 0; j < n; ++j) x.col(j) = 1.2 * rng.normal_vector(d);
  Matrix y, xb;
  Vector ld = Vector::Zero(n), ldi = Vector::Zero(n);
  layer.forward(x, y, ld);
  layer.inverse(y, xb, ldi);
  EXPECT_LT((xb - x).cwiseAbs().maxCoeff(), 1e-9) << GetParam().name;
  EXPECT_LT((ld + ldi).cwiseAbs().maxCoeff(), 1e-9) << GetParam().name;
  // Change of variables: log|det dy/dx| against the finite-difference Jacobian, column by column.
  const double h = 1e-6;
  for (Index j = 0; j < n; ++j) {
    Matrix jac(d, d);
    for (Index i = 0; i < d; ++i) {
      Matrix xp = x.col(j), xm = x.col(j), yp, ym;
      xp(i, 0) += h;
      xm(i, 0) -= h;
      Vector s = Vector::Zero(1);
      layer.forward(xp, yp, s);
      layer.forward(xm, ym, s);
      jac.col(i) = (yp - ym) / (2.0 * h);
    }
    EXPECT_NEAR(std::log(std::abs(jac.determinant())), ld[j], 1e-6) << GetParam().name << " column " << j;
  }
}

// L = <R, out> + <w, logdet> of one direction, and its gradient by the layer's reverse mode.
TEST_P(FlowLayerTest, ReverseModeOfBothDirectionsMatchesFiniteDifferences) {
  Rng rng(test_seed());
  auto b = bound_layer(GetParam().make(), rng, 0.4);
  FlowLayer& layer = *b->layer;
  nn::ParameterSet& params = b->params;
  const Index d = 3, n = 4;
  Matrix in(d, n), r(d, n);
  for (Index j = 0; j < n; ++j) in.col(j) = 1.1 * rng.normal_vector(d);
  for (Index j = 0; j < n; ++j) r.col(j) = rng.normal_vector(d);
  const Vector w = rng.normal_vector(n);
  const double h = GetParam().fd_step;
  for (bool sampling : {false, true}) {
    auto loss = [&](const Matrix& u) {
      Matrix out;
      Vector ld = Vector::Zero(n);
      if (sampling) layer.inverse(u, out, ld); else layer.forward(u, out, ld);
      return (r.array() * out.array()).sum() + w.dot(ld);
    };
    loss(in);
    params.zero_gradients();
    Matrix g;
    if (sampling) layer.inverse_backward(r, w, g, true); else layer.backward(r, w, g, true);
    const Vector gtheta = params.gradients();
    const Vector flat_in = Eigen::Map<const Vector>(in.data(), in.size());
    const Vector fd_in = nn::finite_difference_gradient(
        [&](const Vector& v) { return loss(Eigen::Map<const Matrix>(v.data(), d, n)); }, flat_in, h);
    EXPECT_LT(nn::relative_error(Eigen::Map<const Vector>(g.data(), g.size()), fd_in), 1e-6)
        << GetParam().name << (sampling ? " inverse" : " forward") << ": input gradient";
    if (params.size() > 0) {
      const Vector theta0 = params.values();
      const Vector fd_theta = nn::finite_difference_gradient(
          [&](const Vector& t) {
            params.values() = t;
            return loss(in);
          },
          theta0, h);
      params.values() = theta0;
      EXPECT_LT(nn::relative_error(gtheta, fd_theta), 1e-6)
          << GetParam().name << (sampling ? " inverse" : " forward") << ": parameter gradient";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Layers, FlowLayerTest, ::testing::ValuesIn(layer_cases()),
                         [](const auto& p) { return p.param.name; });

TEST(MixtureCdf, InverseReachesItsTolerance) {
  Rng rng(test_seed());
  auto b = bound_layer(std::make_unique<MixtureCdf>(2, 4), rng, 0.8);
  Matrix y(2, 200), x, yb;
  for (Index j = 0; j < y.cols(); ++j) y.col(j) = 3.0 * rng.normal_vector(2);
  Vector ld = Vector::Zero(200);
  b->layer->inverse(y, x, ld);
  b->layer->forward(x, yb, ld);
  // |dx| <= 1e-10 (1 + |x|) at the root: the forward image is within dy/dx of that.
  EXPECT_LT((yb - y).cwiseAbs().maxCoeff(), 1e-9);
  const auto& m = static_cast<MixtureCdf&>(*b->layer);
  std::cout << "mixture inverse: " << m.root_iterations() << " Newton steps for 400 roots, at most "
            << m.max_root_iterations() << "\n";
  EXPECT_LE(m.max_root_iterations(), 60);
}

TEST(AutoregressiveMasks, ThetaOfCoordinateIDependsOnlyOnEarlierCoordinates) {
  Rng rng(test_seed());
  auto b = bound_layer(std::make_unique<Autoregressive>(4, small_options(Transformer::kSpline)), rng, 0.5);
  Matrix x(4, 1), y0, y1;
  x.col(0) = rng.normal_vector(4);
  Vector ld = Vector::Zero(1);
  b->layer->forward(x, y0, ld);
  for (Index k = 0; k < 4; ++k) {
    Matrix xk = x;
    xk(k, 0) += 0.7;
    b->layer->forward(xk, y1, ld);
    for (Index i = 0; i < k; ++i) EXPECT_EQ(y1(i, 0), y0(i, 0)) << "y_" << i << " moved with x_" << k;
    EXPECT_NE(y1(k, 0), y0(k, 0));
  }
}

// ---- whole flows -------------------------------------------------------------------------------------

std::unique_ptr<Flow> test_flow(Index d, FlowDirection dir, Index mixture, Rng& rng, double spread) {
  FlowSpec spec;
  spec.direction = dir;
  spec.layers = 2;
  spec.autoregressive = small_options(Transformer::kSpline);
  spec.mixture_components = mixture;
  auto flow = make_flow(d, spec);
  flow->initialize(rng);
  for (Index i = 0; i < flow->parameters().size(); ++i) flow->parameters().values()[i] += spread * rng.normal();
  return flow;
}

class FlowTest : public ::testing::TestWithParam<FlowDirection> {};

TEST_P(FlowTest, SamplingAndDensityDirectionsAgree) {
  Rng rng(test_seed());
  auto flow = test_flow(3, GetParam(), 2, rng, 0.3);
  Matrix z(3, 50), x;
  for (Index j = 0; j < 50; ++j) z.col(j) = rng.normal_vector(3);
  Vector lq;
  flow->sample(z, x, lq);
  const Vector lp = flow->log_prob(x);
  EXPECT_LT((lp - lq).cwiseAbs().maxCoeff(), 1e-8);
}

TEST_P(FlowTest, DensityIntegratesToOne) {
  Rng rng(test_seed());
  auto flow = test_flow(2, GetParam(), 2, rng, 0.3);
  // Midpoint rule on [-L, L]^2 (the mass outside is below 1e-6 for these mild flows; asserted by the
  // total being within 2e-3 of one).
  const Index m = 300;
  const double lim = 8.0, hh = 2.0 * lim / static_cast<double>(m);
  Matrix grid(2, m * m);
  for (Index a = 0; a < m; ++a)
    for (Index c = 0; c < m; ++c) grid.col(a * m + c) << -lim + (static_cast<double>(a) + 0.5) * hh, -lim + (static_cast<double>(c) + 0.5) * hh;
  const double total = flow->log_prob(grid).array().exp().sum() * hh * hh;
  std::cout << to_string(GetParam()) << ": integral of q = " << total << "\n";
  EXPECT_NEAR(total, 1.0, 2e-3);
}

TEST_P(FlowTest, GradientsOfLogProbAndSampleMatchFiniteDifferences) {
  Rng rng(test_seed());
  auto flow = test_flow(3, GetParam(), 2, rng, 0.3);
  nn::ParameterSet& params = flow->parameters();
  const Index n = 3;
  Matrix z(3, n), r(3, n);
  for (Index j = 0; j < n; ++j) z.col(j) = rng.normal_vector(3);
  for (Index j = 0; j < n; ++j) r.col(j) = rng.normal_vector(3);
  const Vector w = rng.normal_vector(n);
  Matrix x;
  Vector lq;
  flow->sample(z, x, lq);
  const Vector theta0 = params.values();
  // h = 1e-4: the sampling direction runs inverses (spline quadratic roots, mixture-CDF Newton) whose
  // round-off (~1e-11) divided by h must stay well below the 1e-6 tolerance; the truncation error
  // O(h^2) is ~1e-8 here.
  const double h = 1e-4;
  // Density direction: sum_j w_j log q(x_j).
  flow->log_prob(x);
  params.zero_gradients();
  Matrix gx;
  flow->log_prob_backward(w, gx, true);
  const Vector gtheta = params.gradients();
  auto density = [&](const Vector& t, const Matrix& at) {
    params.values() = t;
    return w.dot(flow->log_prob(at));
  };
  EXPECT_LT(nn::relative_error(gtheta, nn::finite_difference_gradient([&](const Vector& t) { return density(t, x); }, theta0, h)), 1e-6);
  const Vector fdx = nn::finite_difference_gradient(
      [&](const Vector& v) { return density(theta0, Eigen::Map<const Matrix>(v.data(), 3, n)); },
      Eigen::Map<const Vector>(x.data(), x.size()), h);
  EXPECT_LT(nn::relative_error(Eigen::Map<const Vector>(gx.data(), gx.size()), fdx), 1e-6);
  // Sampling direction: <R, x(z)> + <w, log q(x(z))>.
  params.values() = theta0;
  flow->sample(z, x, lq);
  params.zero_gradients();
  Matrix gz;
  flow->sample_backward(r, w, gz, true);
  const Vector gs = params.gradients();
  auto sampled = [&](const Vector& t, const Matrix& at) {
    params.values() = t;
    Matrix xx;
    Vector l;
    flow->sample(at, xx, l);
    return (r.array() * xx.array()).sum() + w.dot(l);
  };
  EXPECT_LT(nn::relative_error(gs, nn::finite_difference_gradient([&](const Vector& t) { return sampled(t, z); }, theta0, h)), 1e-6);
  const Vector fdz = nn::finite_difference_gradient(
      [&](const Vector& v) { return sampled(theta0, Eigen::Map<const Matrix>(v.data(), 3, n)); },
      Eigen::Map<const Vector>(z.data(), z.size()), h);
  EXPECT_LT(nn::relative_error(Eigen::Map<const Vector>(gz.data(), gz.size()), fdz), 1e-6);
  params.values() = theta0;
}

// The reparameterised gradient is the exact gradient of the Monte Carlo ELBO on fixed draws; the
// sticking-the-landing gradient differs from it by exactly the score term mean_j d log q(x_j)/dtheta
// at fixed x.
TEST_P(FlowTest, ElboGradientEstimatorsAreTheirDefinitions) {
  Rng rng(test_seed());
  auto flow = test_flow(3, GetParam(), 0, rng, 0.3);
  nn::ParameterSet& params = flow->parameters();
  Matrix cov(3, 3);
  cov << 1.0, 0.5, 0.2, 0.5, 2.0, -0.3, 0.2, -0.3, 0.7;
  const GaussianLogDensity target(Vector::Constant(3, 0.4), cov);
  Matrix z(3, 6);
  for (Index j = 0; j < z.cols(); ++j) z.col(j) = rng.normal_vector(3);
  const Vector theta0 = params.values();
  params.zero_gradients();
  elbo_loss(*flow, target, z, ElboEstimator::kReparameterised, true);
  const Vector g_rep = params.gradients();
  const Vector fd = nn::finite_difference_gradient(
      [&](const Vector& t) {
        params.values() = t;
        return elbo_loss(*flow, target, z, ElboEstimator::kReparameterised, false);
      },
      theta0, 1e-5);
  params.values() = theta0;
  EXPECT_LT(nn::relative_error(g_rep, fd), 1e-6);
  params.zero_gradients();
  elbo_loss(*flow, target, z, ElboEstimator::kStickingTheLanding, true);
  const Vector g_stl = params.gradients();
  Matrix x;
  Vector lq;
  flow->sample(z, x, lq);
  const Vector score = nn::finite_difference_gradient(
      [&](const Vector& t) {
        params.values() = t;
        return flow->log_prob(x).mean();
      },
      theta0, 1e-5);
  params.values() = theta0;
  EXPECT_LT(nn::relative_error(g_rep - g_stl, score), 1e-6);
  EXPECT_GT(score.norm(), 1e-3 * g_rep.norm());  // the check is not vacuous
}

// The forward-KL gradient is -sum_j w_j d log q(x_j)/dtheta at fixed x_j ~ q with the self-normalised
// weights w ∝ p~/q held fixed: against central differences of that weighted log-likelihood, and its
// returned loss is the same -ELBO as the other estimators'.
TEST_P(FlowTest, ForwardKlGradientIsTheWeightedScoreOfFixedDraws) {
  Rng rng(test_seed());
  auto flow = test_flow(3, GetParam(), 0, rng, 0.3);
  nn::ParameterSet& params = flow->parameters();
  Matrix cov(3, 3);
  cov << 1.0, 0.5, 0.2, 0.5, 2.0, -0.3, 0.2, -0.3, 0.7;
  const GaussianLogDensity target(Vector::Constant(3, 0.4), cov);
  Matrix z(3, 6);
  for (Index j = 0; j < z.cols(); ++j) z.col(j) = rng.normal_vector(3);
  const Vector theta0 = params.values();
  params.zero_gradients();
  const double loss = elbo_loss(*flow, target, z, ElboEstimator::kForwardKl, true);
  const Vector g = params.gradients();
  EXPECT_NEAR(loss, elbo_loss(*flow, target, z, ElboEstimator::kReparameterised, false), 1e-12);
  Matrix x;
  Vector lq;
  flow->sample(z, x, lq);
  const Vector lw = log_density_batch(target, x, nullptr) - lq;
  Vector w = (lw.array() - lw.maxCoeff()).exp().matrix();
  w /= w.sum();
  const Vector fd = nn::finite_difference_gradient(
      [&](const Vector& t) {
        params.values() = t;
        return -w.dot(flow->log_prob(x));
      },
      theta0, 1e-5);
  params.values() = theta0;
  EXPECT_LT(nn::relative_error(g, fd), 1e-6);
  EXPECT_GT(w.maxCoeff() - w.minCoeff(), 1e-3);  // unequal weights: not the plain maximum-likelihood gradient
}

INSTANTIATE_TEST_SUITE_P(Directions, FlowTest, ::testing::Values(FlowDirection::kMaf, FlowDirection::kIaf),
                         [](const auto& p) { return to_string(p.param); });

TEST(Elbo, StickingTheLandingGradientIsZeroAtTheExactPosteriorAndTheReparameterisedOneIsNot) {
  Rng rng(test_seed());
  const Vector mean = (Vector(3) << 0.3, -1.0, 2.0).finished();
  const Vector sd = (Vector(3) << 0.5, 1.5, 0.2).finished();
  const GaussianLogDensity target(mean, Matrix(sd.array().square().matrix().asDiagonal()));
  Flow flow(3);
  auto affine = std::make_unique<ElementwiseAffine>(3);
  ElementwiseAffine* a = affine.get();
  flow.add(std::move(affine));
  flow.initialize(rng);
  a->set(mean, sd);
  Matrix z(3, 16);
  for (Index j = 0; j < z.cols(); ++j) z.col(j) = rng.normal_vector(3);
  flow.parameters().zero_gradients();
  elbo_loss(flow, target, z, ElboEstimator::kStickingTheLanding, true);
  EXPECT_LT(flow.parameters().gradients().norm(), 1e-12);
  flow.parameters().zero_gradients();
  elbo_loss(flow, target, z, ElboEstimator::kReparameterised, true);
  EXPECT_GT(flow.parameters().gradients().norm(), 1e-2);
}

TEST(Elbo, NonFiniteTargetIsReportedNotUsed) {
  class Broken final : public LogDensity {
   public:
    Index dim() const override { return 2; }
    std::string describe() const override { return "broken"; }
    double log_density(const Vector& x, Vector* g) const override {
      if (g) *g = -x;
      return x[0] > 0.5 ? std::numeric_limits<double>::quiet_NaN() : -0.5 * x.squaredNorm();
    }
  };
  Rng rng(test_seed());
  FlowSpec spec;
  spec.layers = 1;
  spec.autoregressive = small_options(Transformer::kSpline);
  auto flow = make_flow(2, spec);
  flow->initialize(rng);
  ElboOptions o;
  o.training.epochs = 2;
  o.steps_per_epoch = 2;
  const ElboSummary s = fit_elbo(*flow, Broken(), o, rng);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.training.status, nn::TrainingStatus::kNonFiniteLoss);
  EXPECT_NE(s.training.message.find("loss"), std::string::npos) << s.training.message;
}

}  // namespace
}  // namespace varflow::vi
