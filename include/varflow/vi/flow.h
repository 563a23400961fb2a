#pragma once
// Unconditional normalizing flows for variational inference: bijective layers with both directions
// and the reverse mode of each, stacked into a Flow with base N(0, I).
//
// Directions. Every layer is a bijection y = f(x) whose `forward` is the DENSITY direction (data ->
// base) and whose `inverse` is the SAMPLING direction (base -> data). A Flow with layers f_0 .. f_{L-1}
// maps data x to z = f_{L-1}(... f_0(x)) and back, so that
//     log q(x) = log N(z; 0, I) + sum_l log|det df_l/dh_l|           (log_prob, density direction)
//     x = f_0^-1(... f_{L-1}^-1(z)),  log q(x) = log N(z; 0, I) - log|det dx/dz|   (sample)
// Which direction is cheap is a property of the layer: an autoregressive layer (MADE conditioner;
// Germain et al. 2015) is one network pass forward and d passes inverse. Used as it is, it is a
// masked autoregressive flow layer (MAF, Papamakarios, Pavlakou & Murray 2017: cheap density); wrapped
// in Inverted it is an inverse autoregressive flow layer (IAF, Kingma et al. 2016: cheap sampling).
//
// Layer contract (all passes batched, one sample per column; a layer is stateful and NOT thread-safe):
//  - forward(x, y, logdet): y = f(x); ADDS log|det df/dx| per column to logdet. Caches for backward.
//  - backward(gy, gl, gx, accumulate): reverse mode of the last forward(): gy = dL/dy, gl = dL/dlogdet
//    (per column) -> gx = dL/dx; with accumulate ADDS dL/dtheta to the parameters' gradient memory.
//  - inverse(y, x, logdet): x = f^-1(y); ADDS log|det df^-1/dy| (= -log|det df/dx| at x) to logdet.
//    Caches for inverse_backward (and leaves the layer as if forward(x) had run).
//  - inverse_backward(gx, gl, gy, accumulate): reverse mode of the last inverse(), by the implicit
//    function rule at x (never by unrolling an iterative inverse): with b = gx - gl * d(log|det f'|)/dx,
//    gy = J_f^-T b, and dL/dtheta = -(df/dtheta)^T gy - gl * d(log|det f'|)/dtheta.
// Every layer is checked against central finite differences, by the change-of-variables identity and
// by inversion (tests/vi/flow_layers_test.cpp).
#include <memory>
#include <string>
#include <vector>

#include "varflow/amortized/spline.h"
#include "varflow/core/random.h"
#include "varflow/core/types.h"
#include "varflow/nn/layers.h"
#include "varflow/nn/parameters.h"

namespace varflow::vi {

class FlowLayer : public nn::Parameterized {
 public:
  virtual std::string describe() const = 0;
  virtual Index size() const = 0;
  void bind(nn::ParameterBinder&, const std::string&) override {}
  virtual void initialize(Rng&) {}
  virtual void forward(const Matrix& x, Matrix& y, Vector& logdet) = 0;
  virtual void backward(const Matrix& gy, const Vector& gl, Matrix& gx, bool accumulate) = 0;
  virtual void inverse(const Matrix& y, Matrix& x, Vector& logdet) = 0;
  virtual void inverse_backward(const Matrix& gx, const Vector& gl, Matrix& gy, bool accumulate) = 0;
};

// y = (x - loc) * exp(-log_scale) per coordinate (density direction); sampling x = loc + exp(log_scale) y.
// Parameter blocks "loc" then "log_scale" (d each); both start at 0 (the identity) unless set().
class ElementwiseAffine final : public FlowLayer {
 public:
  explicit ElementwiseAffine(Index d);
  std::string describe() const override;
  Index size() const override { return d_; }
  void bind(nn::ParameterBinder& binder, const std::string& prefix) override;
  // Sets the layer so that it maps N(0, I) to N(loc, diag(scale^2)) (scale > 0). Call after binding.
  void set(const Vector& loc, const Vector& scale);
  void forward(const Matrix& x, Matrix& y, Vector& logdet) override;
  void backward(const Matrix& gy, const Vector& gl, Matrix& gx, bool accumulate) override;
  void inverse(const Matrix& y, Matrix& x, Vector& logdet) override;
  void inverse_backward(const Matrix& gx, const Vector& gl, Matrix& gy, bool accumulate) override;

 private:
  Index d_;
  nn::ParameterBinder::Block loc_, log_scale_;
  Matrix y_;  // cached output of forward / input of inverse (the base-side values)
};

// y = x[perm] (y_i = x_{perm[i]}); log-det 0. Reverse(d) is the permutation d-1, ..., 0.
class Permutation final : public FlowLayer {
 public:
  explicit Permutation(std::vector<Index> perm);
  static std::unique_ptr<Permutation> reverse(Index d);
  std::string describe() const override;
  Index size() const override { return static_cast<Index>(perm_.size()); }
  void forward(const Matrix& x, Matrix& y, Vector& logdet) override;
  void backward(const Matrix& gy, const Vector& gl, Matrix& gx, bool accumulate) override;
  void inverse(const Matrix& y, Matrix& x, Vector& logdet) override;
  void inverse_backward(const Matrix& gx, const Vector& gl, Matrix& gy, bool accumulate) override;

 private:
  std::vector<Index> perm_;
};

// The elementwise transformer of an autoregressive layer: a rational-quadratic spline (amortized/
// spline.h, Durkan et al. 2019; identity tails outside [-B, B]) or an affine map with a soft-clamped
// log-scale. Both start as the identity at theta = 0.
enum class Transformer { kSpline, kAffine };
std::string to_string(Transformer t);
// Throws InvalidArgument "<what> = '<name>' is not one of: spline, affine".
Transformer transformer_from_string(const std::string& name, const std::string& what = "transformer");

struct AutoregressiveOptions {
  Transformer transformer = Transformer::kSpline;
  amortized::SplineShape spline;          // transformer spline
  double affine_clamp = 3.0;              // transformer affine: |log-scale| <= clamp
  std::vector<Index> hidden = {32, 32};   // MADE hidden layer widths
  nn::Activation activation = nn::Activation::kTanh;
  // Throws InvalidArgument naming the field.
  void validate() const;
};

// y = W_masked x + b: a dense layer whose weight is multiplied elementwise by a fixed 0/1 mask
// (MADE, Germain, Gregor, Murray & Larochelle 2015). Parameter blocks "W" (out x in, decayed), "b".
class MaskedDense final : public nn::Layer {
 public:
  MaskedDense(Matrix mask, nn::Init init);
  std::string type() const override { return "masked_dense"; }
  Index input_size() const override { return mask_.cols(); }
  Index output_size() const override { return mask_.rows(); }
  void bind(nn::ParameterBinder& binder, const std::string& prefix) override;
  void initialize(Rng& rng) override;

 protected:
  void do_forward(const Matrix& x, Matrix& y) override;
  void do_backward(const Matrix& dy, Matrix& dx, bool accumulate) override;
  void do_tangent(const Matrix& dx, Matrix& dy) const override;

 private:
  Matrix mask_;
  nn::Init init_;
  nn::ParameterBinder::Block w_, b_;
  Matrix x_;
};

// An autoregressive layer: y_i = tau(x_i; theta_i(x_1 .. x_{i-1})) with theta = MADE(x), a masked MLP
// whose last layer starts at zero (so the layer starts as the identity). Output row i * P + p holds
// parameter p of coordinate i (P = parameters per coordinate). forward: one MADE pass; inverse: d
// passes (coordinate i is fixed at pass i) and one more to cache; inverse_backward solves
// J^T g = b by d sweeps of the triangular system (each one MADE backward pass, exact after d sweeps
// since J is lower triangular).
class Autoregressive final : public FlowLayer {
 public:
  Autoregressive(Index d, const AutoregressiveOptions& options);
  std::string describe() const override;
  Index size() const override { return d_; }
  void bind(nn::ParameterBinder& binder, const std::string& prefix) override;
  void initialize(Rng& rng) override;
  void forward(const Matrix& x, Matrix& y, Vector& logdet) override;
  void backward(const Matrix& gy, const Vector& gl, Matrix& gx, bool accumulate) override;
  void inverse(const Matrix& y, Matrix& x, Vector& logdet) override;
  void inverse_backward(const Matrix& gx, const Vector& gl, Matrix& gy, bool accumulate) override;
  Index conditioner_passes() const { return passes_; }  // MADE forward passes so far (for benches)

 private:
  double element_forward(const double* theta, double x, double* logd) const;
  double element_inverse(const double* theta, double y) const;
  double element_backward(const double* theta, double x, double gy, double gl, double* gtheta) const;
  Index d_, p_;
  AutoregressiveOptions o_;
  std::unique_ptr<nn::Sequential> made_;
  Matrix x_, theta_, logd_;  // cached input, MADE output and log dy_i/dx_i
  Index passes_ = 0;
};

// A layer used the other way round: forward is the wrapped layer's inverse and vice versa
// (Inverted(Autoregressive) is an IAF layer).
class Inverted final : public FlowLayer {
 public:
  explicit Inverted(std::unique_ptr<FlowLayer> layer) : layer_(std::move(layer)) {}
  std::string describe() const override { return "inverted(" + layer_->describe() + ")"; }
  Index size() const override { return layer_->size(); }
  void bind(nn::ParameterBinder& binder, const std::string& prefix) override { layer_->bind(binder, prefix); }
  void initialize(Rng& rng) override { layer_->initialize(rng); }
  void forward(const Matrix& x, Matrix& y, Vector& logdet) override { layer_->inverse(x, y, logdet); }
  void backward(const Matrix& gy, const Vector& gl, Matrix& gx, bool accumulate) override {
    layer_->inverse_backward(gy, gl, gx, accumulate);
  }
  void inverse(const Matrix& y, Matrix& x, Vector& logdet) override { layer_->forward(y, x, logdet); }
  void inverse_backward(const Matrix& gx, const Vector& gl, Matrix& gy, bool accumulate) override {
    layer_->backward(gx, gl, gy, accumulate);
  }
  FlowLayer& wrapped() { return *layer_; }

 private:
  std::unique_ptr<FlowLayer> layer_;
};

// Gaussianization marginal layer (Chen & Gopinath 2000; Meng, Song, Song & Ermon 2020, "Gaussianization
// flows"): per coordinate y = Phi^-1(F(x)), F(x) = sum_k pi_k Phi((x - mu_k) / sigma_k), a mixture of
// K Gaussian CDFs (pi = softmax(logits), sigma = exp(log_sigma)); log dy/dx = log f(x) - log phi(y).
// Forward in closed form (F and 1 - F summed separately, so both tails keep their digits); inverse by
// safeguarded Newton in y inside the exact bracket [min_k (mu_k + sigma_k y), max_k (mu_k + sigma_k y)]
// to |dx| <= 1e-10 (1 + |x|); its derivatives by the implicit-function rule. Parameter block
// "mixture" (3K x d: per coordinate [K logits, K means, K log-sigmas]). Valid while
// |x - mu_k| / sigma_k < ~37 for some k (beyond that F or 1 - F underflows: the output is then
// non-finite and the caller's loss reports it).
class MixtureCdf final : public FlowLayer {
 public:
  MixtureCdf(Index d, Index components);
  std::string describe() const override;
  Index size() const override { return d_; }
  void bind(nn::ParameterBinder& binder, const std::string& prefix) override;
  // Means from N(0, 0.3^2), log-sigmas 0, equal weights: close to the identity, symmetry broken.
  void initialize(Rng& rng) override;
  void forward(const Matrix& x, Matrix& y, Vector& logdet) override;
  void backward(const Matrix& gy, const Vector& gl, Matrix& gx, bool accumulate) override;
  void inverse(const Matrix& y, Matrix& x, Vector& logdet) override;
  void inverse_backward(const Matrix& gx, const Vector& gl, Matrix& gy, bool accumulate) override;
  // Newton steps of the last inverse() (all coordinates and columns) and the most in one solve.
  Index root_iterations() const { return iterations_; }
  Index max_root_iterations() const { return max_iterations_; }

 private:
  Index d_, k_;
  nn::ParameterBinder::Block theta_;
  Matrix x_;
  Index iterations_ = 0, max_iterations_ = 0;
};

// A stack of layers with base N(0, I) and its own ParameterSet (see the top of this file).
class Flow {
 public:
  explicit Flow(Index d);
  Flow(const Flow&) = delete;
  Flow& operator=(const Flow&) = delete;
  // Appends a layer (before bind(); its size must be d).
  Flow& add(std::unique_ptr<FlowLayer> layer);
  // Binds the parameters and draws their initial values. Call once, after the last add().
  void initialize(Rng& rng);
  Index dim() const { return d_; }
  Index layer_count() const { return static_cast<Index>(layers_.size()); }
  FlowLayer& layer(Index i) { return *layers_[static_cast<std::size_t>(i)]; }
  nn::ParameterSet& parameters() { return params_; }
  std::string describe() const;

  // Density direction: log q per column of x (d x n). Caches for log_prob_backward.
  Vector log_prob(const Matrix& x);
  // Reverse mode of the last log_prob(): gx = d(sum_j w_j log q(x_j))/dx; ADDS the parameter
  // gradient when accumulate.
  void log_prob_backward(const Vector& w, Matrix& gx, bool accumulate);
  // Sampling direction: x = T^-1(z) (d x n) and log q(x) per column. Caches for sample_backward.
  void sample(const Matrix& z, Matrix& x, Vector& log_q);
  // Reverse mode of the last sample() for a loss L(x, log q): gx = dL/dx, glq = dL/dlog q per column.
  // Writes gz = dL/dz (the total, through log N(z) too); ADDS the parameter gradient when accumulate.
  void sample_backward(const Matrix& gx, const Vector& glq, Matrix& gz, bool accumulate);

 private:
  Index d_;
  std::vector<std::unique_ptr<FlowLayer>> layers_;
  nn::ParameterSet params_;
  Matrix z_;  // base draws of the last sample()
  bool bound_ = false;
};

// Builders. A MAF of `layers` autoregressive layers (with a reversal between consecutive ones) whose
// first layer is an ElementwiseAffine (location and scale of the data); an IAF is the same with every
// autoregressive layer Inverted. mixture_components > 0 adds a MixtureCdf layer after the affine one.
enum class FlowDirection { kMaf, kIaf };
std::string to_string(FlowDirection d);
// Throws InvalidArgument "<what> = '<name>' is not one of: maf, iaf".
FlowDirection flow_direction_from_string(const std::string& name, const std::string& what = "flow");

struct FlowSpec {
  FlowDirection direction = FlowDirection::kIaf;
  Index layers = 4;
  AutoregressiveOptions autoregressive;
  Index mixture_components = 0;
  void validate() const;
};
// The flow is not yet initialised: call initialize(rng), then place it with (*affine)->set(loc, scale)
// (when `affine` is not null it receives the flow's location-scale layer, owned by the flow).
std::unique_ptr<Flow> make_flow(Index d, const FlowSpec& spec, ElementwiseAffine** affine = nullptr);
// Appends the layers of `spec` that follow a flow's first (location-scale) layer: the optional
// mixture-CDF layer, then `layers` autoregressive layers (MAF, or IAF by inversion) with reversing
// permutations between them. Shared by make_flow and make_conditional_flow (vi/amortized.h).
void add_spec_layers(Flow& flow, Index d, const FlowSpec& spec);

}  // namespace varflow::vi
