#pragma once
// Amortized variational inference: a conditional flow q(x | y) trained by the expected ELBO
//     E_{y ~ p(y)} E_{z ~ N(0, I)} [ log p(x, y) - log q(x | y) ],  x = T(z; y),
// whose maximiser over an expressive enough family is q(x | y) = p(x | y) for every y (the expected
// ELBO is log p(y) averaged over p(y) minus the expected KL(q(. | y) || p(. | y)); Kingma & Welling
// 2014 for the reparameterised gradient, amortized over y as in variational autoencoders). Unlike the
// neural posterior estimation of amortized/ (forward KL from simulated pairs), it needs the joint
// density log p(x, y) and its x-gradient, never a pair with a known x.
//
// The conditional flow is an unconditional vi::Flow whose first layer (the last one applied when
// sampling) is a ContextAffine: x = m(y) + exp(s(y)) * u, u a draw of the flow's remaining layers
// and (m, s) an MLP of the context y. So the flow's shape of q is shared across y and its location
// and scale follow y; the linear-Gaussian posterior N(y pv / (pv + nv), pv nv / (pv + nv) I) is exact
// in this family.
//
//   ContextAffine* ctx = nullptr;
//   auto q = make_conditional_flow(d, y_size, spec, {32, 32}, &ctx);  q->initialize(rng);
//   ElboSummary s = fit_amortized_elbo(*q, *ctx, LinearGaussianJoint(), options, rng);
//   Matrix x = sample_conditional(*q, *ctx, y, 1000, rng);   // 1000 draws of q(x | y)
#include <memory>
#include <string>
#include <vector>

#include "varflow/nn/layers.h"
#include "varflow/nn/trainer.h"
#include "varflow/vi/elbo.h"
#include "varflow/vi/flow.h"

namespace varflow::vi {

// y = (x - m(c)) * exp(-s(c)) per coordinate (density direction), x = m(c) + exp(s(c)) * y (sampling),
// with [m; s] = MLP(c) (context_size -> hidden -> 2d, last layer zero: starts as the identity). The
// context c (context_size x n, one column per column of x) is set by set_context before each pass
// and held (copied) until the next call. Parameter block prefix ".net" (the MLP). Not thread-safe.
class ContextAffine final : public FlowLayer {
 public:
  ContextAffine(Index d, Index context_size, const std::vector<Index>& hidden,
                nn::Activation activation = nn::Activation::kTanh);
  std::string describe() const override;
  Index size() const override { return d_; }
  Index context_size() const { return c_; }
  void set_context(const Matrix& context);
  void bind(nn::ParameterBinder& binder, const std::string& prefix) override;
  void initialize(Rng& rng) override;
  void forward(const Matrix& x, Matrix& y, Vector& logdet) override;
  void backward(const Matrix& gy, const Vector& gl, Matrix& gx, bool accumulate) override;
  void inverse(const Matrix& y, Matrix& x, Vector& logdet) override;
  void inverse_backward(const Matrix& gx, const Vector& gl, Matrix& gy, bool accumulate) override;

 private:
  void evaluate_net(Index n);
  Index d_, c_;
  std::unique_ptr<nn::Sequential> net_;
  Matrix context_, theta_, base_;  // context, MLP output [m; s] (2d x n), base-side values y
};

// A flow q(x | y) with a ContextAffine first layer and then the layers of make_flow(d, spec) (without
// its ElementwiseAffine). *context receives the context layer (owned by the flow). Not initialised.
std::unique_ptr<Flow> make_conditional_flow(Index d, Index context_size, const FlowSpec& spec,
                                            const std::vector<Index>& context_hidden, ContextAffine** context);

// n draws (d x n) of q(x | y) for one context y.
Matrix sample_conditional(Flow& flow, ContextAffine& context, const Vector& y, Index n, Rng& rng);

// A joint density p(x, y) = p(x) p(y | x) that can be simulated. Implementations are immutable and
// thread-safe.
class JointLogDensity {
 public:
  virtual ~JointLogDensity() = default;
  virtual Index dim() const = 0;           // size of x
  virtual Index context_size() const = 0;  // size of y
  virtual std::string describe() const = 0;
  // log p(x_j, y_j) per column (x: d x n, y: context_size x n) and, when gradient != nullptr, its
  // gradient in x (d x n).
  virtual Vector log_joint_batch(const Matrix& x, const Matrix& y, Matrix* gradient) const = 0;
  // Draws x_j ~ p(x) and y_j ~ p(y | x_j): fills x (d x n) and y (context_size x n).
  virtual void simulate(Index n, Rng& rng, Matrix& x, Matrix& y) const = 0;
};

// x ~ N(0, pv I_n), y = x + N(0, nv I_n) (the `linear-gaussian` problem of amortized/problems.h with
// its defaults n = 10, pv = nv = 0.1): exact posterior N(y pv / (pv + nv), pv nv / (pv + nv) I).
class LinearGaussianJoint final : public JointLogDensity {
 public:
  explicit LinearGaussianJoint(Index n = 10, double prior_variance = 0.1, double noise_variance = 0.1);
  Index dim() const override { return n_; }
  Index context_size() const override { return n_; }
  std::string describe() const override;
  Vector log_joint_batch(const Matrix& x, const Matrix& y, Matrix* gradient) const override;
  void simulate(Index n, Rng& rng, Matrix& x, Matrix& y) const override;
  Vector posterior_mean(const Vector& y) const { return y * (pv_ / (pv_ + nv_)); }
  double posterior_variance() const { return pv_ * nv_ / (pv_ + nv_); }
  double prior_variance() const { return pv_; }

 private:
  Index n_;
  double pv_, nv_;
};

// The amortized -ELBO on base draws z (d x n) at contexts y (context_size x n), mean over the columns
// of log q(x_j | y_j) - log p(x_j, y_j); with gradient = true ADDS its gradient by `estimator`
// (reparameterised or sticking-the-landing, as elbo_loss; forward-kl is refused: InvalidArgument) to
// flow.parameters().gradients(). NaN (nothing added) when the flow or the target is not finite.
double amortized_elbo_loss(Flow& flow, ContextAffine& context, const JointLogDensity& target, const Matrix& z,
                           const Matrix& y, ElboEstimator estimator, bool gradient);

// Trains q(x | y) by nn::fit on the amortized -ELBO (options.estimator: reparameterised or stl): every training batch draws fresh y ~ p(y) (target.simulate) and fresh z; the
// validation loss uses fixed draws. The evaluation is the amortized ELBO on fresh (y, z) and its
// standard error; its log_evidence and ess_fraction are NaN (weights at different y carry log p(y) and
// are not comparable).
ElboSummary fit_amortized_elbo(Flow& flow, ContextAffine& context, const JointLogDensity& target,
                               const ElboOptions& options, Rng& rng, const nn::ProgressCallback& progress = {});

}  // namespace varflow::vi
