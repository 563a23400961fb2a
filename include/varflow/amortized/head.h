#pragma once
// The head of an amortized posterior q(x | y): given a context c = encoder(y), a head is a
// conditional distribution over the (z-scored) state x. Built-in heads (heads.h includes them all):
//   FlowHead      conditional normalizing flow: exact log-density and sampling      (flow_head.h)
//   ScoreHead     conditional score-based diffusion: sampling only (no log-density)  (score_head.h)
//   GaussianHead  Gaussian regression N(mu(c), L(c) L(c)^T): log-density, sampling,
//                 closed form                                                       (gaussian_head.h)
// Heads are built by name through the registry (head_registry.h); a head's optional abilities
// (log-density, closed form, sampler settings, derivative-informed training, content of its own in
// model files) are virtual functions whose defaults refuse or do nothing, so no caller tests types.
//
// Shapes: states x are d x B and contexts c are C x B, one sample per column (d = state_size(),
// C = context_size()). All quantities are in the normalised (z-scored) space; AmortizedPosterior
// maps to and from physical units.
//
// Statefulness: a head caches intermediate results of its last pass (like the layers), so one head
// object must not be used from two threads at once. Work inside a call is parallel (OpenMP over the
// batch and Eigen's products).
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "varflow/amortized/config.h"
#include "varflow/core/random.h"
#include "varflow/core/types.h"
#include "varflow/nn/layers.h"

namespace varflow {
class NetcdfWriter;
class NetcdfReader;
}  // namespace varflow

namespace varflow::amortized {

// A Gaussian q(x | c) = N(mean, L L^T) in closed form, normalised units: mean (d), cholesky L (d x d,
// lower triangular; diagonal when `diagonal`).
struct GaussianMoments {
  Vector mean;
  Matrix cholesky;
  bool diagonal = false;
};

class Head : public nn::Parameterized {
 public:
  virtual HeadType type() const = 0;
  virtual std::string describe() const = 0;
  virtual Index state_size() const = 0;
  virtual Index context_size() const = 0;
  // Random initial parameters.
  virtual void initialize(Rng& rng) = 0;
  // Data-dependent initialisation from normalised states and their contexts (ActNorm); default none.
  virtual void initialize_from_data(const Matrix& /*x*/, const Matrix& /*ctx*/) {}

  // Training loss: the mean over the batch of the per-sample loss (negative log-likelihood for flow
  // and Gaussian heads, denoising score matching for the score head, whose noise is drawn from rng).
  // With gradient = true it ADDS d(loss)/d(theta) to the parameter gradients and, if dctx is not
  // null, writes d(loss)/d(ctx) (C x B) to it.
  virtual double loss(const Matrix& x, const Matrix& ctx, Rng& rng, bool gradient, Matrix* dctx) = 0;

  // Derivative-informed training (design/amortized.md): a penalty on the head's posterior mean m(c)
  // at every column of a context batch, returning its value and, when grad is not null, writing
  // dL/dm (d x C) to it.
  using MeanPenalty = std::function<double(const Matrix& m, Matrix* grad)>;
  // Whether loss_with_mean_penalty() is available (the mean is a cheap, differentiable map of c).
  virtual bool supports_mean_penalty() const { return false; }
  // Throws InvalidArgument naming the head, and what it would need, when supports_mean_penalty() is
  // false (the refusal of derivative labels; a head whose support depends on its configuration names
  // the setting).
  virtual void check_mean_penalty_supported() const;
  // loss() plus penalty(m(ctx)): ctx has at least x.cols() columns; the likelihood term uses the
  // first x.cols() of them, the penalty all of them. Gradients as loss(), of the sum. `draws`: base
  // draws per column for heads whose mean is an average of the sampling map (flow: an even number,
  // antithetic pairs (z, -z) drawn from rng, the same draws for every column of the call); the
  // Gaussian head's mean is exact and ignores it. The default throws InvalidArgument naming the head.
  virtual double loss_with_mean_penalty(const Matrix& x, const Matrix& ctx, Rng& rng, bool gradient, Matrix* dctx,
                                        const MeanPenalty& penalty, Index draws);

  // Variance labels (labels.variance_weight): a penalty on the head's log marginal variances
  // log v(c) (d x B: the first x.cols() columns of the context batch), returning its value and,
  // when grad is not null, writing dL/d(log v) to it.
  using VariancePenalty = std::function<double(const Matrix& log_variance, Matrix* grad)>;
  // Whether loss_with_moment_penalties() takes a variance penalty (the marginal variances are a
  // cheap, differentiable map of c).
  virtual bool supports_variance_penalty() const { return false; }
  // Throws InvalidArgument naming the head when supports_variance_penalty() is false.
  void check_variance_penalty_supported() const;
  // loss_with_mean_penalty(x, ctx, rng, gradient, dctx, mean_penalty, draws) plus
  // variance_penalty(log v(ctx)) on the first x.cols() columns; a null variance_penalty adds
  // nothing (the default then forwards to loss_with_mean_penalty, and otherwise throws as
  // check_variance_penalty_supported).
  virtual double loss_with_moment_penalties(const Matrix& x, const Matrix& ctx, Rng& rng, bool gradient, Matrix* dctx,
                                            const MeanPenalty& mean_penalty, const VariancePenalty& variance_penalty,
                                            Index draws);

  virtual bool has_log_prob() const { return false; }
  // log q(x_j | c_j) per column. Throws InvalidArgument for heads without a log-density.
  virtual Vector log_prob(const Matrix& x, const Matrix& ctx);

  // Whether q(x | c) is a Gaussian in closed form (closed_form_moments() is available).
  virtual bool has_closed_form_moments() const { return false; }
  // Its moments for one context (C values). The default throws InvalidArgument naming the head.
  virtual GaussianMoments closed_form_moments(const Vector& ctx);

  // One draw per column of ctx.
  virtual Matrix sample(const Matrix& ctx, Rng& rng) = 0;

  // Sampler settings of a head that integrates its draws (score: SDE or ODE sampler, `steps` steps),
  // when has_sampler(). The default throws InvalidArgument naming the head.
  virtual bool has_sampler() const { return false; }
  virtual void set_sampler(Sampler sampler, Index steps);
  // Writes the options a head may change after construction (the sampler) back into `config`, so
  // that a saved model keeps them. Default: nothing.
  virtual void record_options(AmortizedConfig& /*config*/) const {}

  // Head-specific content of the model file (design/formats.md), after the common variables (the
  // dimension "state" exists): save_extra_state adds dimensions and variables of its own;
  // load_extra_state reads them back and refuses a file that does not match this head with
  // InvalidArgument naming file.where(). Every thread's copy of a head is built from the
  // configuration, so this content must follow from the configuration and the parameters: it is
  // stored for readers of the file and checked on load. Default: none.
  virtual void save_extra_state(NetcdfWriter& /*file*/) const {}
  virtual void load_extra_state(const NetcdfReader& /*file*/) {}

  // The deterministic sampling map x = G(z; c), one column of base noise z per column of c
  // (Gaussian: mu + L z; flow: the inverse flow; score: the probability-flow ODE from z), with its
  // derivatives with respect to c, column by column:
  //   push_jvp: (dG/dc) dc  (d x m);   push_vjp: (dG/dc)^T a  (C x m).
  virtual Matrix push(const Matrix& z, const Matrix& ctx) = 0;
  virtual Matrix push_jvp(const Matrix& z, const Matrix& ctx, const Matrix& dctx) = 0;
  virtual Matrix push_vjp(const Matrix& z, const Matrix& ctx, const Matrix& a) = 0;
  // The base draws that define the posterior mean m(c) = average_j G(z_j; c): for the Gaussian head
  // one zero column (G(0; c) = mu(c), the exact mean); for the flow and score heads mean_samples
  // fixed draws from mean_seed (common random numbers), so that m is a smooth, deterministic
  // function of c and its derivatives are exact derivatives of that estimator.
  virtual Matrix mean_draws() const = 0;

  // m(c) for one context, and its Jacobian-vector and vector-Jacobian products (from push*).
  Vector mean(const Vector& ctx);
  Vector mean_jvp(const Vector& ctx, const Vector& dctx);  // (dm/dc) dc
  Vector mean_vjp(const Vector& ctx, const Vector& a);     // (dm/dc)^T a
};

}  // namespace varflow::amortized
