#include "varflow/vi/amortized.h"

#include <cmath>
#include <limits>

#include "varflow/core/error.h"

namespace varflow::vi {

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kHalfLog2Pi = 0.91893853320467274178;
}  // namespace

// ---- ContextAffine ---------------------------------------------------------------------------------

ContextAffine::ContextAffine(Index d, Index context_size, const std::vector<Index>& hidden, nn::Activation activation)
    : d_(d), c_(context_size), net_(std::make_unique<nn::Sequential>()) {
  check_at_least("ContextAffine", "dimension", d, 1);
  check_at_least("ContextAffine", "context_size", context_size, 1);
  Index in = c_;
  for (const Index width : hidden) {
    check_at_least("ContextAffine", "hidden width", width, 1);
    net_->emplace<nn::Dense>(in, width, nn::Init::kLecun);
    net_->emplace<nn::ActivationLayer>(activation, width);
    in = width;
  }
  net_->emplace<nn::Dense>(in, 2 * d_, nn::Init::kZero);
}

std::string ContextAffine::describe() const {
  return format_message("context_affine(", d_, ", context ", c_, ")");
}

void ContextAffine::set_context(const Matrix& context) {
  check_size("ContextAffine::set_context", "context rows", context.rows(), c_);
  context_ = context;
}

void ContextAffine::bind(nn::ParameterBinder& binder, const std::string& prefix) { net_->bind(binder, prefix + ".net"); }
void ContextAffine::initialize(Rng& rng) { net_->initialize(rng); }

void ContextAffine::evaluate_net(Index n) {
  if (context_.cols() != n) {
    throw InvalidArgument(format_message("ContextAffine: context columns = ", context_.cols(),
                                         " differ from the batch = ", n, " (call set_context first)"));
  }
  net_->forward(context_, theta_);
}

void ContextAffine::forward(const Matrix& x, Matrix& y, Vector& logdet) {
  evaluate_net(x.cols());
  const auto loc = theta_.topRows(d_);
  const auto log_scale = theta_.bottomRows(d_);
  y = ((x - loc).array() * (-log_scale).array().exp()).matrix();
  logdet -= log_scale.colwise().sum().transpose();
  base_ = y;
}

void ContextAffine::backward(const Matrix& gy, const Vector& gl, Matrix& gx, bool accumulate) {
  const auto log_scale = theta_.bottomRows(d_);
  gx = (gy.array() * (-log_scale).array().exp()).matrix();
  if (!accumulate) return;
  // y = (x - m) e^-s: dy/dm = -e^-s, dy/ds = -y; dlogdet/ds = -1.
  Matrix gtheta(2 * d_, gy.cols());
  gtheta.topRows(d_) = -gx;
  gtheta.bottomRows(d_) = (-(gy.array() * base_.array())).matrix().rowwise() - gl.transpose();
  Matrix gc;
  net_->backward(gtheta, gc, true);
}

void ContextAffine::inverse(const Matrix& y, Matrix& x, Vector& logdet) {
  evaluate_net(y.cols());
  const auto loc = theta_.topRows(d_);
  const auto log_scale = theta_.bottomRows(d_);
  x = loc + (y.array() * log_scale.array().exp()).matrix();
  logdet += log_scale.colwise().sum().transpose();
  base_ = y;
}

void ContextAffine::inverse_backward(const Matrix& gx, const Vector& gl, Matrix& gy, bool accumulate) {
  const auto log_scale = theta_.bottomRows(d_);
  gy = (gx.array() * log_scale.array().exp()).matrix();
  if (!accumulate) return;
  // x = m + e^s y: dx/dm = 1, dx/ds = e^s y; dlogdet/ds = +1.
  Matrix gtheta(2 * d_, gx.cols());
  gtheta.topRows(d_) = gx;
  gtheta.bottomRows(d_) = (gy.array() * base_.array()).matrix().rowwise() + gl.transpose();
  Matrix gc;
  net_->backward(gtheta, gc, true);
}

std::unique_ptr<Flow> make_conditional_flow(Index d, Index context_size, const FlowSpec& spec,
                                            const std::vector<Index>& context_hidden, ContextAffine** context) {
  spec.validate();
  auto flow = std::make_unique<Flow>(d);
  auto first = std::make_unique<ContextAffine>(d, context_size, context_hidden);
  if (context) *context = first.get();
  flow->add(std::move(first));
  add_spec_layers(*flow, d, spec);
  return flow;
}

Matrix sample_conditional(Flow& flow, ContextAffine& context, const Vector& y, Index n, Rng& rng) {
  check_size("sample_conditional", "y", y.size(), context.context_size());
  check_at_least("sample_conditional", "draws", n, 1);
  context.set_context(y.replicate(1, n));
  return sample_flow(flow, n, rng);
}

// ---- LinearGaussianJoint ---------------------------------------------------------------------------

LinearGaussianJoint::LinearGaussianJoint(Index n, double prior_variance, double noise_variance)
    : n_(n), pv_(prior_variance), nv_(noise_variance) {
  check_at_least("LinearGaussianJoint", "n", n, 1);
  check_positive("LinearGaussianJoint", "prior_variance", prior_variance);
  check_positive("LinearGaussianJoint", "noise_variance", noise_variance);
}

std::string LinearGaussianJoint::describe() const {
  return format_message("linear-gaussian joint (n = ", n_, ", prior variance ", pv_, ", noise variance ", nv_, ")");
}

Vector LinearGaussianJoint::log_joint_batch(const Matrix& x, const Matrix& y, Matrix* gradient) const {
  check_size("LinearGaussianJoint", "x rows", x.rows(), n_);
  check_size("LinearGaussianJoint", "y rows", y.rows(), n_);
  check_size("LinearGaussianJoint", "y columns", y.cols(), x.cols());
  const Matrix r = y - x;
  const double norm = -static_cast<double>(n_) * (2.0 * kHalfLog2Pi + 0.5 * std::log(pv_) + 0.5 * std::log(nv_));
  if (gradient) *gradient = -x / pv_ + r / nv_;
  return (Vector::Constant(x.cols(), norm) - 0.5 * x.colwise().squaredNorm().transpose() / pv_ -
          0.5 * r.colwise().squaredNorm().transpose() / nv_);
}

void LinearGaussianJoint::simulate(Index n, Rng& rng, Matrix& x, Matrix& y) const {
  x.resize(n_, n);
  y.resize(n_, n);
  const double ps = std::sqrt(pv_), ns = std::sqrt(nv_);
  for (Index j = 0; j < n; ++j) {
    x.col(j) = ps * rng.normal_vector(n_);
    y.col(j) = x.col(j) + ns * rng.normal_vector(n_);
  }
}

// ---- amortized ELBO --------------------------------------------------------------------------------

double amortized_elbo_loss(Flow& flow, ContextAffine& context, const JointLogDensity& target, const Matrix& z,
                           const Matrix& y, ElboEstimator estimator, bool gradient) {
  if (estimator == ElboEstimator::kForwardKl) {
    throw InvalidArgument("amortized_elbo_loss: estimator = 'forward-kl' is not supported (only: reparameterised, stl)");
  }
  check_size("amortized_elbo_loss", "target dimension", target.dim(), flow.dim());
  check_size("amortized_elbo_loss", "target context size", target.context_size(), context.context_size());
  check_size("amortized_elbo_loss", "y columns", y.cols(), z.cols());
  const Index n = z.cols();
  context.set_context(y);
  Matrix x, gp;
  Vector lq;
  flow.sample(z, x, lq);
  if (!x.allFinite() || !lq.allFinite()) return kNaN;
  const Vector lp = target.log_joint_batch(x, y, gradient ? &gp : nullptr);
  if (!lp.allFinite() || (gradient && !gp.allFinite())) return kNaN;
  const double loss = (lq - lp).mean();
  if (gradient) {
    const double inv = 1.0 / static_cast<double>(n);
    Matrix gz;
    if (estimator == ElboEstimator::kReparameterised) {
      flow.sample_backward(-inv * gp, Vector::Constant(n, inv), gz, true);
    } else {
      // Sticking the landing, as in elbo_loss: the score of q(. | y) at x with the parameters held fixed.
      Matrix score, x2;
      Vector lq2;
      flow.log_prob(x);
      flow.log_prob_backward(Vector::Ones(n), score, false);
      flow.sample(z, x2, lq2);
      flow.sample_backward(inv * (score - gp), Vector::Zero(n), gz, true);
    }
  }
  return loss;
}

namespace {

class AmortizedElboObjective final : public nn::TrainingObjective {
 public:
  AmortizedElboObjective(Flow& flow, ContextAffine& context, const JointLogDensity& target, ElboEstimator estimator,
                         Index n_train, Matrix validation_z, Matrix validation_y)
      : flow_(flow), context_(context), target_(target), estimator_(estimator), n_train_(n_train), vz_(std::move(validation_z)),
        vy_(std::move(validation_y)) {}
  nn::ParameterSet& parameters() override { return flow_.parameters(); }
  double batch_loss(const std::vector<Index>& items, bool gradient, Rng& rng) override {
    const Index n = static_cast<Index>(items.size());
    Matrix z(flow_.dim(), n), y(target_.context_size(), n);
    if (items.front() >= n_train_) {
      for (Index j = 0; j < n; ++j) {
        const Index k = items[static_cast<std::size_t>(j)] - n_train_;
        z.col(j) = vz_.col(k);
        y.col(j) = vy_.col(k);
      }
    } else {
      Matrix x;
      target_.simulate(n, rng, x, y);
      for (Index j = 0; j < n; ++j) z.col(j) = rng.normal_vector(flow_.dim());
    }
    return amortized_elbo_loss(flow_, context_, target_, z, y, estimator_, gradient);
  }

 private:
  Flow& flow_;
  ContextAffine& context_;
  const JointLogDensity& target_;
  ElboEstimator estimator_;
  Index n_train_;
  Matrix vz_, vy_;
};

}  // namespace

ElboSummary fit_amortized_elbo(Flow& flow, ContextAffine& context, const JointLogDensity& target,
                               const ElboOptions& options, Rng& rng, const nn::ProgressCallback& progress) {
  options.validate();
  if (options.estimator == ElboEstimator::kForwardKl) {
    throw InvalidArgument("fit_amortized_elbo: estimator = 'forward-kl' is not supported (only: reparameterised, stl)");
  }
  check_size("fit_amortized_elbo", "target dimension", target.dim(), flow.dim());
  Matrix vx, vy, vz(flow.dim(), options.validation_draws);
  target.simulate(options.validation_draws, rng, vx, vy);
  for (Index j = 0; j < options.validation_draws; ++j) vz.col(j) = rng.normal_vector(flow.dim());
  const Index n_train = options.steps_per_epoch * options.draws;
  AmortizedElboObjective objective(flow, context, target, options.estimator, n_train, std::move(vz), std::move(vy));
  nn::TrainingOptions t = options.training;
  t.batch_size = options.draws;
  ElboSummary s;
  s.training = nn::fit(objective, n_train, options.validation_draws, t, rng, progress);
  if (!s.training.ok()) {
    s.evaluation.finite = false;
    return s;
  }
  // Evaluation on fresh (y, z): the amortized ELBO E_y E_q[log p(x, y) - log q(x | y)] = E_y[log p(y)
  // - KL(q || p(. | y))].
  ElboEvaluation& e = s.evaluation;
  e.draws = options.evaluation_draws;
  Matrix x, y, z(flow.dim(), e.draws);
  target.simulate(e.draws, rng, x, y);
  for (Index j = 0; j < e.draws; ++j) z.col(j) = rng.normal_vector(flow.dim());
  context.set_context(y);
  Vector lq;
  flow.sample(z, x, lq);
  const Vector lw = target.log_joint_batch(x, y, nullptr) - lq;
  // The weights p(x, y) / q(x | y) at different y carry log p(y) and are not comparable: the importance
  // figures (log_evidence, ess_fraction) are not defined for the amortized ELBO and are NaN.
  e.log_evidence = e.ess_fraction = kNaN;
  if (!lw.allFinite()) {
    e.finite = false;
    e.elbo = e.elbo_standard_error = kNaN;
    return s;
  }
  const double n = static_cast<double>(e.draws);
  e.elbo = lw.mean();
  e.elbo_standard_error = std::sqrt((lw.array() - e.elbo).square().sum() / (n - 1.0) / n);
  return s;
}

}  // namespace varflow::vi
