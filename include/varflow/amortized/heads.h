#pragma once
// Heads of an amortized posterior q(x | y): given a context c = encoder(y), a head is a conditional
// distribution over the (z-scored) state x. Three heads share one interface:
//   FlowHead      conditional normalizing flow: exact log-density and sampling
//   ScoreHead     conditional score-based diffusion: sampling only (no log-density)
//   GaussianHead  Gaussian regression N(mu(c), L(c) L(c)^T): log-density, sampling, closed form
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
#include "varflow/amortized/spline.h"
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
  // loss() plus penalty(m(ctx)): ctx has at least x.cols() columns; the likelihood term uses the
  // first x.cols() of them, the penalty all of them. Gradients as loss(), of the sum. `draws`: base
  // draws per column for heads whose mean is an average of the sampling map (flow: an even number,
  // antithetic pairs (z, -z) drawn from rng, the same draws for every column of the call); the
  // Gaussian head's mean is exact and ignores it. The default throws InvalidArgument naming the head.
  virtual double loss_with_mean_penalty(const Matrix& x, const Matrix& ctx, Rng& rng, bool gradient, Matrix* dctx,
                                        const MeanPenalty& penalty, Index draws);

  virtual bool has_log_prob() const { return false; }
  // log q(x_j | c_j) per column. Throws InvalidArgument for heads without a log-density.
  virtual Vector log_prob(const Matrix& x, const Matrix& ctx);

  // Whether q(x | c) is a Gaussian in closed form (closed_form_moments() is available).
  virtual bool has_closed_form_moments() const { return false; }
  // Its moments for one context (C values). The default throws InvalidArgument naming the head.
  virtual GaussianMoments closed_form_moments(const Vector& ctx);

  // One draw per column of ctx.
  virtual Matrix sample(const Matrix& ctx, Rng& rng) = 0;

  // Sampler settings of a head that integrates its draws (score: SDE or ODE sampler, `steps` steps).
  // The default throws InvalidArgument naming the head.
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

// ---- Gaussian regression ---------------------------------------------------------------------------

// q(x | c) = N(mu(c), L(c) L(c)^T), L lower triangular with diagonal exp(s(c)), s soft-clamped to
// [-7, 7] by 7 tanh(.); full form: the strictly lower entries free, diagonal form: L diagonal.
// One MLP c -> [mu (d); s (d); lower entries row by row (d(d-1)/2, full form only)]. Loss: the
// Gaussian negative log-likelihood 0.5 |L^-1 (x - mu)|^2 + sum s + d/2 log 2 pi.
// direct (the local encoder, diagonal form only): no MLP, the context is [mu; s] itself
// (context_size = 2 * state_size).
class GaussianHead final : public Head {
 public:
  GaussianHead(Index state_size, Index context_size, const GaussianOptions& options, bool direct = false);
  HeadType type() const override { return HeadType::kGaussian; }
  std::string describe() const override;
  Index state_size() const override { return d_; }
  Index context_size() const override { return c_; }
  void bind(nn::ParameterBinder& binder, const std::string& prefix) override;
  void initialize(Rng& rng) override;
  double loss(const Matrix& x, const Matrix& ctx, Rng& rng, bool gradient, Matrix* dctx) override;
  bool supports_mean_penalty() const override { return true; }
  double loss_with_mean_penalty(const Matrix& x, const Matrix& ctx, Rng& rng, bool gradient, Matrix* dctx,
                                const MeanPenalty& penalty, Index draws) override;
  bool has_log_prob() const override { return true; }
  Vector log_prob(const Matrix& x, const Matrix& ctx) override;
  Matrix sample(const Matrix& ctx, Rng& rng) override;
  Matrix push(const Matrix& z, const Matrix& ctx) override;
  Matrix push_jvp(const Matrix& z, const Matrix& ctx, const Matrix& dctx) override;
  Matrix push_vjp(const Matrix& z, const Matrix& ctx, const Matrix& a) override;
  Matrix mean_draws() const override { return Matrix::Zero(d_, 1); }
  bool has_closed_form_moments() const override { return true; }
  GaussianMoments closed_form_moments(const Vector& ctx) override;  // mu and L for one context
  CovarianceForm form() const { return o_.covariance; }

 private:
  Index output_size() const;
  void unpack(const Vector& out, Vector& mu, Matrix& l, Vector& s_raw) const;
  // dL from a tangent (or, transposed, the adjoint) of the network output; s_raw at the same column.
  void unpack_tangent(const Vector& dout, const Vector& s_raw, const Matrix& l, Vector& dmu, Matrix& dl) const;
  Index d_, c_;
  GaussianOptions o_;
  bool direct_ = false;
  std::unique_ptr<nn::Sequential> net_;
};

// ---- conditional normalizing flow ------------------------------------------------------------------

// ActNorm (Kingma & Dhariwal 2018, Glow): y = x * exp(s) + b per coordinate, log-det sum(s).
// Parameter blocks "log_scale" then "bias"; initialised from data so that y has zero mean and unit
// variance on the first batch.
class ActNorm final : public nn::Parameterized {
 public:
  explicit ActNorm(Index d) : d_(d) {}
  void bind(nn::ParameterBinder& binder, const std::string& prefix) override;
  void initialize_from_data(const Matrix& x);
  void forward(const Matrix& x, Matrix& y);  // caches x
  void inverse(const Matrix& y, Matrix& x) const;
  // Backward pass of inverse(): given x = inverse(y) and gx = dL/dx, writes dL/dy and accumulates
  // the parameter gradients if asked (x = (y - b) exp(-s): dx/ds = -x, dx/db = -exp(-s)).
  void inverse_backward(const Matrix& gx, const Matrix& x, Matrix& gy, bool accumulate);
  double log_det() const;
  // gy: dL/dy, gl: dL/dlogdet per column. Writes dL/dx; accumulates parameter gradients if asked.
  void backward(const Matrix& gy, const Vector& gl, Matrix& gx, bool accumulate);
  Eigen::Map<Vector> log_scale() { return {s_.value, d_}; }
  Eigen::Map<Vector> bias() { return {b_.value, d_}; }

 private:
  Index d_;
  nn::ParameterBinder::Block s_, b_;
  Matrix x_;
};

// Coupling layer (Dinh et al. 2017, RealNVP; Durkan et al. 2019 for the spline): u = [a; b] with
// a = the first d_a = floor(d/2) coordinates; a passes through, each coordinate of b goes through an
// elementwise transform (spline or affine) whose parameters theta = NN([a; c]) (an MLP with a zero
// last layer, so the layer starts as the identity).
class Coupling final : public nn::Parameterized {
 public:
  Coupling(Index d, Index context_size, const FlowOptions& options);
  void bind(nn::ParameterBinder& binder, const std::string& prefix) override;
  void initialize(Rng& rng) { conditioner_->initialize(rng); }
  std::string describe() const;
  // Density direction: v = T(u; c), logdet (per column) += log|det dv/du|. Caches for backward.
  void forward(const Matrix& u, const Matrix& ctx, Matrix& v, Vector& logdet);
  // gv: dL/dv, gl: dL/dlogdet. Writes dL/du; ADDS dL/dc to gctx; accumulates parameter gradients.
  void backward(const Matrix& gv, const Vector& gl, Matrix& gu, Matrix& gctx, bool accumulate);
  // Sampling direction: u = T^-1(v; c). Caches for inverse_tangent / inverse_adjoint.
  void inverse(const Matrix& v, const Matrix& ctx, Matrix& u);
  // Derivative of the last inverse(): du = (du/dv) dv + (du/dc) dc.
  void inverse_tangent(const Matrix& dv, const Matrix& dctx, Matrix& du) const;
  // Its adjoint: given gu = dL/du writes dL/dv and ADDS dL/dc to gctx; with accumulate = true also
  // accumulates the parameter gradients (implicit function rule: for u = f^-1(v; theta),
  // du/dtheta = -(df/dtheta) / (df/du) at u, then back through the conditioner).
  void inverse_adjoint(const Matrix& gu, Matrix& gv, Matrix& gctx, bool accumulate = false);

 private:
  Index params_per_element() const;
  double element_forward(const double* theta, double x, double* logd) const;
  double element_inverse(const double* theta, double y) const;
  double element_backward(const double* theta, double x, double gy, double gl, double* gtheta) const;
  double element_tangent(const double* theta, double x, const double* dtheta, double* dydx) const;
  Index d_, da_, db_, c_;
  FlowOptions o_;
  SplineShape spline_;
  std::unique_ptr<nn::Sequential> conditioner_;
  Matrix u_, theta_;  // cached input (or output of inverse) and conditioner output
};

// A stack of [ActNorm] -> permutation -> coupling steps; base N(0, I). log q(x | c) =
// log N(z; 0, I) + sum of log-dets, z = T(x; c); sampling x = T^-1(z; c). Permutations are fixed:
// reversal for d <= 2, otherwise a pseudo-random permutation per layer from a fixed seed (the same
// on every platform; stored in model files and checked on load).
class FlowHead final : public Head {
 public:
  FlowHead(Index state_size, Index context_size, const FlowOptions& options, Index mean_samples,
           std::uint64_t mean_seed);
  HeadType type() const override { return HeadType::kFlow; }
  std::string describe() const override;
  Index state_size() const override { return d_; }
  Index context_size() const override { return c_; }
  void bind(nn::ParameterBinder& binder, const std::string& prefix) override;
  void initialize(Rng& rng) override;
  void initialize_from_data(const Matrix& x, const Matrix& ctx) override;
  double loss(const Matrix& x, const Matrix& ctx, Rng& rng, bool gradient, Matrix* dctx) override;
  // The mean in training: m(c) = average of T^-1(z; c) over `draws` base draws in antithetic pairs
  // (z, -z) (exact when the map is affine in z, as for a Gaussian posterior), fresh from rng at every
  // call and shared by all columns of ctx (common random numbers: the +-h columns of a J probe see
  // the draws of their base column, so their difference is smooth). Backward through the inverse
  // flow with parameter gradients (Coupling::inverse_adjoint, ActNorm::inverse_backward).
  bool supports_mean_penalty() const override { return true; }
  double loss_with_mean_penalty(const Matrix& x, const Matrix& ctx, Rng& rng, bool gradient, Matrix* dctx,
                                const MeanPenalty& penalty, Index draws) override;
  bool has_log_prob() const override { return true; }
  Vector log_prob(const Matrix& x, const Matrix& ctx) override;
  Matrix sample(const Matrix& ctx, Rng& rng) override;
  Matrix push(const Matrix& z, const Matrix& ctx) override { return transform_inverse(z, ctx); }
  Matrix push_jvp(const Matrix& z, const Matrix& ctx, const Matrix& dctx) override;
  Matrix push_vjp(const Matrix& z, const Matrix& ctx, const Matrix& a) override;
  Matrix mean_draws() const override;
  // flow_permutation(flow_layer, state), checked against this build's on load.
  void save_extra_state(NetcdfWriter& file) const override;
  void load_extra_state(const NetcdfReader& file) override;
  const std::vector<std::vector<Index>>& permutations() const { return perms_; }
  // The sampling map: x = T^-1(z; ctx) (ctx has one column per column of z).
  Matrix transform_inverse(const Matrix& z, const Matrix& ctx);

 private:
  // Density direction with caches; returns log q per column.
  Vector forward(const Matrix& x, const Matrix& ctx, Matrix& z);
  // Backward pass of the last transform_inverse(): given a = dL/dx, ADDS dL/dc to gctx and
  // accumulates the parameter gradients if asked.
  void inverse_backward(const Matrix& a, Matrix& gctx, bool accumulate);
  Index d_, c_;
  FlowOptions o_;
  Index mean_samples_;
  std::uint64_t mean_seed_;
  std::vector<Matrix> actnorm_out_;  // per layer, the output of its ActNorm inverse in transform_inverse()
  std::vector<std::unique_ptr<ActNorm>> actnorms_;
  std::vector<std::unique_ptr<Coupling>> couplings_;
  std::vector<std::vector<Index>> perms_;
};

// ---- score-based diffusion -------------------------------------------------------------------------

// Conditional denoising score matching (Vincent 2011; Song et al. 2021, "Score-based generative
// modeling through stochastic differential equations") with an epsilon-network: for t ~ U[t_min, 1]
// and eps ~ N(0, I), x_t = alpha(t) x + sigma(t) eps and the loss is |eps_net(x_t, t, c) - eps|^2
// (the sigma(t)^2-weighted score-matching loss with score s = -eps_net / sigma).
//   VP: beta(t) = beta_min + t (beta_max - beta_min), alpha = exp(-int_0^t beta / 2),
//       sigma^2 = 1 - alpha^2; reverse SDE dx = [-beta x / 2 - beta s] dt + sqrt(beta) dw,
//       probability-flow ODE dx/dt = -beta (x + s) / 2; start x(1) ~ N(0, I).
//   VE: sigma(t) = sigma_min (sigma_max / sigma_min)^t, alpha = 1, g^2 = d sigma^2/dt; reverse SDE
//       dx = -g^2 s dt + g dw, ODE dx/dt = -g^2 s / 2; start x(1) ~ N(0, sigma_max^2 I); the
//       network sees x_t / sqrt(1 + sigma^2).
// Network input: [x_t (scaled); time features (t - 1/2, sin(pi 2^k t), cos(pi 2^k t)); c], a residual
// MLP. Samplers integrate from t = 1 to t_min in `steps` equal steps (Euler-Maruyama for the SDE,
// the last step without noise; Euler for the ODE). There is no log-density.
class ScoreHead final : public Head {
 public:
  ScoreHead(Index state_size, Index context_size, const ScoreOptions& options, Index mean_samples,
            std::uint64_t mean_seed);
  HeadType type() const override { return HeadType::kScore; }
  std::string describe() const override;
  Index state_size() const override { return d_; }
  Index context_size() const override { return c_; }
  void bind(nn::ParameterBinder& binder, const std::string& prefix) override;
  void initialize(Rng& rng) override;
  double loss(const Matrix& x, const Matrix& ctx, Rng& rng, bool gradient, Matrix* dctx) override;
  Matrix sample(const Matrix& ctx, Rng& rng) override;  // with the configured sampler
  Matrix sample(const Matrix& ctx, Rng& rng, Sampler sampler, Index steps);
  // push: the probability-flow ODE (Euler, `steps` steps) from z at t = 1 to t_min.
  Matrix push(const Matrix& z, const Matrix& ctx) override;
  Matrix push_jvp(const Matrix& z, const Matrix& ctx, const Matrix& dctx) override;
  Matrix push_vjp(const Matrix& z, const Matrix& ctx, const Matrix& a) override;
  Matrix mean_draws() const override;
  void set_sampler(Sampler sampler, Index steps) override;
  void record_options(AmortizedConfig& config) const override;  // score.sampler, score.steps

  double alpha(double t) const;
  double sigma(double t) const;

 private:
  Index time_size() const { return 2 * o_.time_features + 1; }
  Index input_size() const { return d_ + time_size() + c_; }
  double input_scale(double t) const;  // c_in(t)
  void time_features(double t, double* out) const;
  // Coefficients of one backward Euler step from t to t - h of the ODE (noise = false) or of the
  // reverse SDE: x <- p x + q eps_net(c_in x, t, c) [+ r z].
  void step_coefficients(double t, double h, bool sde, double& p, double& q, double& r) const;
  void fill_input(const Matrix& x, double t, const Matrix& ctx, Matrix& in) const;
  Matrix base_draws(Index n, Rng& rng) const;
  Index d_, c_;
  ScoreOptions o_;
  Index mean_samples_;
  std::uint64_t mean_seed_;
  std::unique_ptr<nn::Sequential> net_;
};

// Builds the configured head.
std::unique_ptr<Head> make_head(const AmortizedConfig& config, Index state_size);

}  // namespace varflow::amortized
