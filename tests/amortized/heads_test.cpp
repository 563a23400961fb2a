// Every head's loss gradient (parameters and context) and its mean's Jacobian-vector and
// vector-Jacobian products against central finite differences (relative error <= 1e-6).
#include <gtest/gtest.h>

#include <Eigen/LU>
#include <cmath>
#include <numbers>

#include "varflow/amortized/heads.h"
#include "varflow/core/error.h"
#include "varflow/nn/gradient_check.h"
#include "varflow/testing/conformance.h"

namespace varflow::amortized {
namespace {

using nn::finite_difference_gradient;
using nn::GradientCheckTolerances;
using nn::relative_error;

struct HeadCase {
  std::string name;
  AmortizedConfig config;
  Index d = 3;
};

std::vector<HeadCase> cases() {
  std::vector<HeadCase> c;
  AmortizedConfig base;
  base.encoder.context = 4;
  base.mean_samples = 12;
  base.flow.width = 8;
  base.flow.depth = 1;
  base.flow.layers = 3;
  base.flow.bound = 2.5;  // some inputs fall in the linear tails
  base.flow.bins = 5;
  base.score.width = 8;
  base.score.blocks = 1;
  base.score.time_features = 2;
  base.score.steps = 6;
  base.gaussian.width = 8;
  base.gaussian.depth = 1;
  {
    HeadCase h{"gaussian_full", base};
    h.config.head = HeadType::kGaussian;
    c.push_back(h);
    h.name = "gaussian_diagonal";
    h.config.gaussian.covariance = CovarianceForm::kDiagonal;
    c.push_back(h);
  }
  {
    HeadCase h{"flow_spline", base};
    h.config.head = HeadType::kFlow;
    c.push_back(h);
    h.name = "flow_affine";
    h.config.flow.coupling = CouplingType::kAffine;
    h.config.flow.activation = nn::Activation::kTanh;
    c.push_back(h);
    h.name = "flow_spline_1d_no_actnorm";
    h.config.flow.coupling = CouplingType::kSpline;
    h.config.flow.actnorm = false;
    h.d = 1;
    c.push_back(h);
  }
  {
    HeadCase h{"score_vp", base};
    h.config.head = HeadType::kScore;
    c.push_back(h);
    h.name = "score_ve";
    h.config.score.sde = SdeType::kVe;
    c.push_back(h);
  }
  return c;
}

void PrintTo(const HeadCase& c, std::ostream* os) { *os << c.name; }

class HeadGradients : public ::testing::TestWithParam<HeadCase> {
 protected:
  void SetUp() override {
    const auto& hc = GetParam();
    rng_ = std::make_unique<Rng>(testing::seeded_rng(801));
    head_ = make_head(hc.config, hc.d);
    params_.add("head", *head_);
    params_.bind();
    head_->initialize(*rng_);
    // Perturb every parameter so that zero-initialised layers do not hide terms.
    for (Index i = 0; i < params_.size(); ++i) params_.values()[i] += 0.3 * rng_->normal();
    x_.resize(hc.d, 5);
    ctx_.resize(hc.config.encoder.context, 5);
    for (Index i = 0; i < x_.size(); ++i) x_.data()[i] = 1.5 * rng_->normal();
    for (Index i = 0; i < ctx_.size(); ++i) ctx_.data()[i] = rng_->normal();
  }
  std::unique_ptr<Rng> rng_;
  std::unique_ptr<Head> head_;
  nn::ParameterSet params_;
  Matrix x_, ctx_;
  GradientCheckTolerances tol_;
};

TEST_P(HeadGradients, LossGradientWithRespectToParametersAndContext) {
  const Rng noise = *rng_;  // the same score-matching noise for every evaluation
  auto loss_theta = [&](const Vector& theta) {
    params_.values() = theta;
    Rng r = noise;
    return head_->loss(x_, ctx_, r, false, nullptr);
  };
  const Vector theta = params_.values();
  params_.zero_gradients();
  Matrix dctx;
  Rng r = noise;
  const double l0 = head_->loss(x_, ctx_, r, true, &dctx);
  ASSERT_TRUE(std::isfinite(l0));
  const Vector g = params_.gradients();
  const Vector g_fd = finite_difference_gradient(loss_theta, theta, tol_.step);
  params_.values() = theta;
  const double e_theta = relative_error(g, g_fd);
  auto loss_ctx = [&](const Vector& c) {
    Rng rr = noise;
    return head_->loss(x_, Eigen::Map<const Matrix>(c.data(), ctx_.rows(), ctx_.cols()), rr, false, nullptr);
  };
  const Vector c0 = Eigen::Map<const Vector>(ctx_.data(), ctx_.size());
  const Vector gc_fd = finite_difference_gradient(loss_ctx, c0, tol_.step);
  const double e_ctx = relative_error(Eigen::Map<const Vector>(dctx.data(), dctx.size()), gc_fd);
  std::cout << GetParam().name << ": " << params_.size() << " parameters, relative error theta " << e_theta
            << ", context " << e_ctx << "\n";
  EXPECT_LT(e_theta, tol_.relative);
  EXPECT_LT(e_ctx, tol_.relative);
}

// The derivative-informed loss (likelihood on the first columns plus a penalty on the mean at every
// column of the context; flow: the antithetic training mean, backward through the inverse flow with
// parameter gradients) against central differences in the parameters and the context.
TEST_P(HeadGradients, MeanPenaltyGradientWithRespectToParametersAndContext) {
  if (!head_->supports_mean_penalty()) {
    Rng r = *rng_;
    EXPECT_THROW(head_->loss_with_mean_penalty(x_, ctx_, r, false, nullptr, nullptr, 2), InvalidArgument);
    return;
  }
  const Index d = GetParam().d;
  Matrix ctx(ctx_.rows(), 9);  // 5 likelihood columns and 4 more
  ctx << ctx_, ctx_.leftCols(4) + 0.2 * Matrix::Ones(ctx_.rows(), 4);
  Matrix target(d, ctx.cols()), weight(d, ctx.cols());
  for (Index i = 0; i < target.size(); ++i) {
    target.data()[i] = rng_->normal();
    weight.data()[i] = 0.5 + rng_->uniform();
  }
  // A quadratic penalty with a different weight per entry.
  const Head::MeanPenalty penalty = [&](const Matrix& m, Matrix* grad) {
    const Matrix r = m - target;
    if (grad) *grad = weight.cwiseProduct(r);
    return 0.5 * weight.cwiseProduct(r).cwiseProduct(r).sum();
  };
  const Index draws = 4;
  const Rng noise = *rng_;
  const Vector theta = params_.values();
  params_.zero_gradients();
  Matrix dctx;
  Rng r = noise;
  const double l0 = head_->loss_with_mean_penalty(x_, ctx, r, true, &dctx, penalty, draws);
  Rng r1 = noise;
  ASSERT_GT(l0, head_->loss(x_, ctx.leftCols(5), r1, false, nullptr) + 1e-3) << "the penalty adds to the loss";
  ASSERT_EQ(dctx.cols(), ctx.cols());
  const Vector g = params_.gradients();
  auto loss_theta = [&](const Vector& t) {
    params_.values() = t;
    Rng rr = noise;
    return head_->loss_with_mean_penalty(x_, ctx, rr, false, nullptr, penalty, draws);
  };
  const Vector g_fd = finite_difference_gradient(loss_theta, theta, tol_.step);
  params_.values() = theta;
  auto loss_ctx = [&](const Vector& c) {
    Rng rr = noise;
    return head_->loss_with_mean_penalty(x_, Eigen::Map<const Matrix>(c.data(), ctx.rows(), ctx.cols()), rr, false,
                                         nullptr, penalty, draws);
  };
  const Vector c0 = Eigen::Map<const Vector>(ctx.data(), ctx.size());
  const Vector gc_fd = finite_difference_gradient(loss_ctx, c0, tol_.step);
  const double e_theta = relative_error(g, g_fd);
  const double e_ctx = relative_error(Eigen::Map<const Vector>(dctx.data(), dctx.size()), gc_fd);
  std::cout << GetParam().name << ": mean-penalty loss relative error theta " << e_theta << ", context " << e_ctx
            << "\n";
  EXPECT_LT(e_theta, tol_.relative);
  EXPECT_LT(e_ctx, tol_.relative);
}

TEST_P(HeadGradients, MeanJacobianProducts) {
  const Vector c = ctx_.col(0);
  const Index d = GetParam().d, cs = c.size();
  // Dense Jacobian by central differences, column by column.
  Matrix j_fd(d, cs);
  for (Index k = 0; k < cs; ++k) {
    Vector cp = c, cm = c;
    cp[k] += tol_.step;
    cm[k] -= tol_.step;
    j_fd.col(k) = (head_->mean(cp) - head_->mean(cm)) / (2.0 * tol_.step);
  }
  Matrix j_fwd(d, cs), j_rev(d, cs);
  for (Index k = 0; k < cs; ++k) j_fwd.col(k) = head_->mean_jvp(c, Vector::Unit(cs, k));
  for (Index i = 0; i < d; ++i) j_rev.row(i) = head_->mean_vjp(c, Vector::Unit(d, i)).transpose();
  auto flat = [](const Matrix& m) { return Vector(Eigen::Map<const Vector>(m.data(), m.size())); };
  const double e_jvp = relative_error(flat(j_fwd), flat(j_fd)), e_vjp = relative_error(flat(j_rev), flat(j_fd));
  std::cout << GetParam().name << ": mean Jacobian relative error jvp " << e_jvp << ", vjp " << e_vjp << "\n";
  EXPECT_LT(e_jvp, tol_.relative);
  EXPECT_LT(e_vjp, tol_.relative);
  EXPECT_GT(j_fd.norm(), 1e-6);  // the mean does depend on the context
}

TEST_P(HeadGradients, LogProbIsConsistentOrAClearError) {
  if (!head_->has_log_prob()) {
    try {
      head_->log_prob(x_, ctx_);
      FAIL() << "log_prob of a score head did not throw";
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find("no tractable log-density"), std::string::npos) << e.what();
    }
    return;
  }
  // log q = -(per-sample loss): the loss is the mean negative log-likelihood.
  const Vector lp = head_->log_prob(x_, ctx_);
  Rng r(1);
  EXPECT_NEAR(-lp.mean(), head_->loss(x_, ctx_, r, false, nullptr), 1e-12);
  // For a 1-D or 2-D Gaussian or flow head the density integrates to one (checked in 1-D on a grid).
  if (GetParam().d == 1) {
    const Index n = 40001;
    Matrix grid(1, n);
    for (Index i = 0; i < n; ++i) grid(0, i) = -20.0 + 40.0 * static_cast<double>(i) / static_cast<double>(n - 1);
    const Vector q = head_->log_prob(grid, ctx_.col(0).replicate(1, n)).array().exp();
    EXPECT_NEAR(q.sum() * 40.0 / static_cast<double>(n - 1), 1.0, 1e-4);
  }
}

TEST_P(HeadGradients, SamplesAreFiniteAndFlowInverts) {
  Rng r = *rng_;
  const Matrix s = head_->sample(ctx_, r);
  ASSERT_EQ(s.rows(), GetParam().d);
  EXPECT_TRUE(s.allFinite());
  if (auto* flow = dynamic_cast<FlowHead*>(head_.get())) {
    // Change of variables: log q(x) = log N(z; 0, I) - log|det dx/dz| for x = T^-1(z; c), with the
    // Jacobian of the sampling map by central differences. This ties the sampling direction to the
    // density direction.
    const Index d = GetParam().d;
    for (Index j = 0; j < 3; ++j) {
      Vector z(d);
      for (Index i = 0; i < d; ++i) z[i] = 1.5 * r.normal();
      const Matrix c = ctx_.col(j);
      const Vector x = flow->transform_inverse(z, c);
      Matrix jac(d, d);
      for (Index k = 0; k < d; ++k) {
        Vector zp = z, zm = z;
        zp[k] += 1e-6;
        zm[k] -= 1e-6;
        jac.col(k) = (flow->transform_inverse(zp, c) - flow->transform_inverse(zm, c)) / 2e-6;
      }
      const double log_n = -0.5 * z.squaredNorm() - 0.5 * static_cast<double>(d) * std::log(2.0 * std::numbers::pi);
      const double expected = log_n - std::log(std::abs(jac.determinant()));
      EXPECT_NEAR(flow->log_prob(x, c)[0], expected, 1e-6);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllHeads, HeadGradients, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<HeadCase>& p) { return p.param.name; });

}  // namespace
}  // namespace varflow::amortized
