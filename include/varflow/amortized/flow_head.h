#pragma once
// Conditional normalizing flow head (head.h): exact log-density and sampling; ActNorm and coupling
// layers.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "varflow/amortized/head.h"
#include "varflow/amortized/head_registry.h"
#include "varflow/amortized/spline.h"

namespace varflow::amortized {

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

// Registration (head_registry.cpp): name "flow", keys flow.*.
HeadRegistration flow_head_registration();

}  // namespace varflow::amortized
