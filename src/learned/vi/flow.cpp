#include "varflow/vi/flow.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
#include <numbers>

#include "varflow/core/enum_text.h"
#include "varflow/core/error.h"

namespace varflow::vi {

namespace {
constexpr double kHalfLog2Pi = 0.91893853320467274178;  // log(2 pi) / 2

// The reverse-mode check of a layer's shapes, naming it.
void check_shape(const std::string& where, const char* what, const Matrix& m, Index rows, Index cols) {
  if (m.rows() != rows || m.cols() != cols) {
    throw InvalidArgument(format_message(where, ": ", what, " is ", m.rows(), " x ", m.cols(), ", expected ", rows,
                                         " x ", cols));
  }
}
}  // namespace

// ---- ElementwiseAffine ------------------------------------------------------------------------------

ElementwiseAffine::ElementwiseAffine(Index d) : d_(d) { check_at_least("ElementwiseAffine", "d", d, 1); }

std::string ElementwiseAffine::describe() const { return format_message("affine(", d_, ")"); }

void ElementwiseAffine::bind(nn::ParameterBinder& binder, const std::string& prefix) {
  loc_ = binder.take(prefix + ".loc", d_, 1, false);
  log_scale_ = binder.take(prefix + ".log_scale", d_, 1, false);
}

void ElementwiseAffine::set(const Vector& loc, const Vector& scale) {
  check_size("ElementwiseAffine::set", "loc", loc.size(), d_);
  check_size("ElementwiseAffine::set", "scale", scale.size(), d_);
  for (Index i = 0; i < d_; ++i) check_positive("ElementwiseAffine::set", format_message("scale[", i, "]"), scale[i]);
  Eigen::Map<Vector>(loc_.value, d_) = loc;
  Eigen::Map<Vector>(log_scale_.value, d_) = scale.array().log().matrix();
}

void ElementwiseAffine::forward(const Matrix& x, Matrix& y, Vector& logdet) {
  check_shape("affine forward", "x", x, d_, x.cols());
  const Eigen::Map<const Vector> b(loc_.value, d_), s(log_scale_.value, d_);
  y = ((x.colwise() - b).array().colwise() * (-s.array()).exp()).matrix();
  logdet.array() -= s.sum();
  y_ = y;
}

void ElementwiseAffine::backward(const Matrix& gy, const Vector& gl, Matrix& gx, bool accumulate) {
  check_shape("affine backward", "gy", gy, d_, y_.cols());
  const Eigen::Map<const Vector> s(log_scale_.value, d_);
  const Vector inv = (-s.array()).exp().matrix();
  gx = (gy.array().colwise() * inv.array()).matrix();
  if (accumulate) {
    Eigen::Map<Vector>(loc_.gradient, d_) -= gx.rowwise().sum();
    Eigen::Map<Vector>(log_scale_.gradient, d_) -=
        (gy.array() * y_.array()).rowwise().sum().matrix() + Vector::Constant(d_, gl.sum());
  }
}

void ElementwiseAffine::inverse(const Matrix& y, Matrix& x, Vector& logdet) {
  check_shape("affine inverse", "y", y, d_, y.cols());
  const Eigen::Map<const Vector> b(loc_.value, d_), s(log_scale_.value, d_);
  x = ((y.array().colwise() * s.array().exp()).matrix()).colwise() + b;
  logdet.array() += s.sum();
  y_ = y;
}

void ElementwiseAffine::inverse_backward(const Matrix& gx, const Vector& gl, Matrix& gy, bool accumulate) {
  check_shape("affine inverse_backward", "gx", gx, d_, y_.cols());
  const Eigen::Map<const Vector> s(log_scale_.value, d_);
  gy = (gx.array().colwise() * s.array().exp()).matrix();
  if (accumulate) {
    Eigen::Map<Vector>(loc_.gradient, d_) += gx.rowwise().sum();
    Eigen::Map<Vector>(log_scale_.gradient, d_) +=
        (gy.array() * y_.array()).rowwise().sum().matrix() + Vector::Constant(d_, gl.sum());
  }
}

// ---- Permutation -----------------------------------------------------------------------------------

Permutation::Permutation(std::vector<Index> perm) : perm_(std::move(perm)) {
  const Index d = static_cast<Index>(perm_.size());
  check_at_least("Permutation", "size", d, 1);
  std::vector<bool> seen(perm_.size(), false);
  for (Index i = 0; i < d; ++i) {
    const Index p = perm_[static_cast<std::size_t>(i)];
    if (p < 0 || p >= d || seen[static_cast<std::size_t>(p)]) {
      throw InvalidArgument(format_message("Permutation: perm[", i, "] = ", p, " is out of range or repeated"));
    }
    seen[static_cast<std::size_t>(p)] = true;
  }
}

std::unique_ptr<Permutation> Permutation::reverse(Index d) {
  std::vector<Index> p(static_cast<std::size_t>(d));
  for (Index i = 0; i < d; ++i) p[static_cast<std::size_t>(i)] = d - 1 - i;
  return std::make_unique<Permutation>(std::move(p));
}

std::string Permutation::describe() const { return format_message("permutation(", perm_.size(), ")"); }

void Permutation::forward(const Matrix& x, Matrix& y, Vector&) {
  y.resize(x.rows(), x.cols());
  for (std::size_t i = 0; i < perm_.size(); ++i) y.row(static_cast<Index>(i)) = x.row(perm_[i]);
}
void Permutation::backward(const Matrix& gy, const Vector&, Matrix& gx, bool) {
  gx.resize(gy.rows(), gy.cols());
  for (std::size_t i = 0; i < perm_.size(); ++i) gx.row(perm_[i]) = gy.row(static_cast<Index>(i));
}
void Permutation::inverse(const Matrix& y, Matrix& x, Vector&) {
  x.resize(y.rows(), y.cols());
  for (std::size_t i = 0; i < perm_.size(); ++i) x.row(perm_[i]) = y.row(static_cast<Index>(i));
}
void Permutation::inverse_backward(const Matrix& gx, const Vector&, Matrix& gy, bool) {
  gy.resize(gx.rows(), gx.cols());
  for (std::size_t i = 0; i < perm_.size(); ++i) gy.row(static_cast<Index>(i)) = gx.row(perm_[i]);
}

// ---- options -----------------------------------------------------------------------------------------

namespace {
constexpr EnumNames<Transformer, 2> kTransformerNames{{{Transformer::kSpline, "spline"}, {Transformer::kAffine, "affine"}}};
constexpr EnumNames<FlowDirection, 2> kDirectionNames{{{FlowDirection::kMaf, "maf"}, {FlowDirection::kIaf, "iaf"}}};
}  // namespace

std::string to_string(Transformer t) { return std::string(to_text(kTransformerNames, t)); }
Transformer transformer_from_string(const std::string& name, const std::string& what) {
  return from_text(kTransformerNames, what, name);
}
std::string to_string(FlowDirection d) { return std::string(to_text(kDirectionNames, d)); }
FlowDirection flow_direction_from_string(const std::string& name, const std::string& what) {
  return from_text(kDirectionNames, what, name);
}

void AutoregressiveOptions::validate() const {
  if (transformer == Transformer::kSpline) spline.validate();
  check_positive("autoregressive", "affine_clamp", affine_clamp);
  if (hidden.empty()) throw InvalidArgument("autoregressive: hidden is empty (at least one hidden layer)");
  for (std::size_t i = 0; i < hidden.size(); ++i) {
    check_at_least("autoregressive", format_message("hidden[", i, "]"), hidden[i], 1);
  }
}

void FlowSpec::validate() const {
  check_at_least("flow", "layers", layers, 1);
  if (mixture_components < 0) {
    throw InvalidArgument(format_message("flow: mixture_components = ", mixture_components, " must be at least 0"));
  }
  autoregressive.validate();
}

// ---- MaskedDense -----------------------------------------------------------------------------------

MaskedDense::MaskedDense(Matrix mask, nn::Init init) : mask_(std::move(mask)), init_(init) {
  check_at_least("MaskedDense", "inputs", mask_.cols(), 1);
  check_at_least("MaskedDense", "outputs", mask_.rows(), 1);
}

void MaskedDense::bind(nn::ParameterBinder& binder, const std::string& prefix) {
  w_ = binder.take(prefix + ".W", mask_.rows(), mask_.cols(), true);
  b_ = binder.take(prefix + ".b", mask_.rows(), 1, false);
}

void MaskedDense::initialize(Rng& rng) {
  const double scale = init_ == nn::Init::kZero ? 0.0 : init_ == nn::Init::kHe ? std::sqrt(2.0) : init_ == nn::Init::kSmall ? 0.1 : 1.0;
  const double sd = scale / std::sqrt(static_cast<double>(mask_.cols()));
  Eigen::Map<Matrix> w(w_.value, mask_.rows(), mask_.cols());
  for (Index j = 0; j < w.cols(); ++j)
    for (Index i = 0; i < w.rows(); ++i) w(i, j) = sd * rng.normal() * mask_(i, j);
  Eigen::Map<Vector>(b_.value, mask_.rows()).setZero();
}

void MaskedDense::do_forward(const Matrix& x, Matrix& y) {
  x_ = x;
  const Eigen::Map<const Matrix> w(w_.value, mask_.rows(), mask_.cols());
  y.noalias() = w.cwiseProduct(mask_) * x;
  y.colwise() += Eigen::Map<const Vector>(b_.value, mask_.rows());
}

void MaskedDense::do_backward(const Matrix& dy, Matrix& dx, bool accumulate) {
  const Eigen::Map<const Matrix> w(w_.value, mask_.rows(), mask_.cols());
  if (accumulate) {
    Eigen::Map<Matrix>(w_.gradient, mask_.rows(), mask_.cols()) += (dy * x_.transpose()).cwiseProduct(mask_);
    Eigen::Map<Vector>(b_.gradient, mask_.rows()) += dy.rowwise().sum();
  }
  dx.noalias() = w.cwiseProduct(mask_).transpose() * dy;
}

void MaskedDense::do_tangent(const Matrix& dx, Matrix& dy) const {
  const Eigen::Map<const Matrix> w(w_.value, mask_.rows(), mask_.cols());
  dy.noalias() = w.cwiseProduct(mask_) * dx;
}

// ---- Autoregressive --------------------------------------------------------------------------------

Autoregressive::Autoregressive(Index d, const AutoregressiveOptions& options) : d_(d), o_(options) {
  check_at_least("Autoregressive", "d", d, 1);
  o_.validate();
  p_ = o_.transformer == Transformer::kSpline ? o_.spline.parameter_count() : 2;
  // MADE degrees: input i has degree i + 1; hidden unit k has 1 + (k mod max(1, d - 1)); output row
  // i * P + p has degree i + 1. A hidden unit sees inputs of degree <= its own; an output sees hidden
  // units of degree < its own, so theta_i depends on x_1 .. x_{i-1} only.
  auto hidden_degree = [d](Index k) { return 1 + k % std::max<Index>(1, d - 1); };
  made_ = std::make_unique<nn::Sequential>();
  Index in = d;
  std::vector<Index> in_degree(static_cast<std::size_t>(d));
  for (Index i = 0; i < d; ++i) in_degree[static_cast<std::size_t>(i)] = i + 1;
  for (Index width : o_.hidden) {
    Matrix mask(width, in);
    std::vector<Index> degree(static_cast<std::size_t>(width));
    for (Index k = 0; k < width; ++k) {
      degree[static_cast<std::size_t>(k)] = hidden_degree(k);
      for (Index j = 0; j < in; ++j) mask(k, j) = degree[static_cast<std::size_t>(k)] >= in_degree[static_cast<std::size_t>(j)] ? 1.0 : 0.0;
    }
    made_->add(std::make_unique<MaskedDense>(std::move(mask), nn::Init::kLecun));
    made_->emplace<nn::ActivationLayer>(o_.activation, width);
    in = width;
    in_degree = std::move(degree);
  }
  Matrix mask(d * p_, in);
  for (Index r = 0; r < d * p_; ++r) {
    const Index degree = r / p_ + 1;
    for (Index j = 0; j < in; ++j) mask(r, j) = degree > in_degree[static_cast<std::size_t>(j)] ? 1.0 : 0.0;
  }
  made_->add(std::make_unique<MaskedDense>(std::move(mask), nn::Init::kZero));
}

std::string Autoregressive::describe() const {
  std::string h;
  for (std::size_t i = 0; i < o_.hidden.size(); ++i) h += (i ? "x" : "") + std::to_string(o_.hidden[i]);
  return format_message("autoregressive(", d_, ", ", to_string(o_.transformer),
                        o_.transformer == Transformer::kSpline ? format_message(" ", o_.spline.bins, " bins") : std::string(),
                        ", MADE ", h, ")");
}

void Autoregressive::bind(nn::ParameterBinder& binder, const std::string& prefix) { made_->bind(binder, prefix + ".made"); }
void Autoregressive::initialize(Rng& rng) { made_->initialize(rng); }

double Autoregressive::element_forward(const double* theta, double x, double* logd) const {
  return o_.transformer == Transformer::kSpline ? amortized::rqs_forward(o_.spline, theta, x, logd)
                                                : amortized::affine_forward(o_.affine_clamp, theta, x, logd);
}
double Autoregressive::element_inverse(const double* theta, double y) const {
  return o_.transformer == Transformer::kSpline ? amortized::rqs_inverse(o_.spline, theta, y)
                                                : amortized::affine_inverse(o_.affine_clamp, theta, y);
}
double Autoregressive::element_backward(const double* theta, double x, double gy, double gl, double* gtheta) const {
  return o_.transformer == Transformer::kSpline ? amortized::rqs_backward(o_.spline, theta, x, gy, gl, gtheta)
                                                : amortized::affine_backward(o_.affine_clamp, theta, x, gy, gl, gtheta);
}

void Autoregressive::forward(const Matrix& x, Matrix& y, Vector& logdet) {
  check_shape("autoregressive forward", "x", x, d_, x.cols());
  const Index n = x.cols();
  x_ = x;
  made_->forward(x, theta_);
  ++passes_;
  y.resize(d_, n);
  logd_.resize(d_, n);
#pragma omp parallel for schedule(static) if (n >= 64)
  for (Index j = 0; j < n; ++j) {
    for (Index i = 0; i < d_; ++i) y(i, j) = element_forward(theta_.col(j).data() + i * p_, x(i, j), &logd_(i, j));
  }
  logdet += logd_.colwise().sum().transpose();
}

void Autoregressive::backward(const Matrix& gy, const Vector& gl, Matrix& gx, bool accumulate) {
  const Index n = x_.cols();
  check_shape("autoregressive backward", "gy", gy, d_, n);
  check_size("autoregressive backward", "gl", gl.size(), n);
  Matrix gtheta(d_ * p_, n);
  gx.resize(d_, n);
#pragma omp parallel for schedule(static) if (n >= 64)
  for (Index j = 0; j < n; ++j) {
    for (Index i = 0; i < d_; ++i) {
      gx(i, j) = element_backward(theta_.col(j).data() + i * p_, x_(i, j), gy(i, j), gl[j], gtheta.col(j).data() + i * p_);
    }
  }
  Matrix gin;
  made_->backward(gtheta, gin, accumulate);
  gx += gin;
}

void Autoregressive::inverse(const Matrix& y, Matrix& x, Vector& logdet) {
  check_shape("autoregressive inverse", "y", y, d_, y.cols());
  const Index n = y.cols();
  Matrix xc = Matrix::Zero(d_, n);
  for (Index i = 0; i < d_; ++i) {
    made_->forward(xc, theta_);  // theta_i depends on x_1 .. x_{i-1}, fixed by the earlier passes
    ++passes_;
#pragma omp parallel for schedule(static) if (n >= 64)
    for (Index j = 0; j < n; ++j) xc(i, j) = element_inverse(theta_.col(j).data() + i * p_, y(i, j));
  }
  Matrix yy;
  Vector ld = Vector::Zero(n);
  forward(xc, yy, ld);  // caches at the final x for inverse_backward
  logdet -= ld;
  x = std::move(xc);
}

void Autoregressive::inverse_backward(const Matrix& gx, const Vector& gl, Matrix& gy, bool accumulate) {
  const Index n = x_.cols();
  check_shape("autoregressive inverse_backward", "gx", gx, d_, n);
  check_size("autoregressive inverse_backward", "gl", gl.size(), n);
  // b = gx + gl d(-log det f')/dx.
  Matrix t;
  backward(Matrix::Zero(d_, n), gl, t, false);
  const Matrix b = gx - t;
  // J^T lambda = b with J = D + N (D the diagonal dy_i/dx_i, N strictly lower triangular): the
  // sweeps lambda += D^-1 (b - J^T lambda) are exact after d of them (D^-1 N^T is nilpotent).
  // J^T l = D l + MADE^T (dy/dtheta . l): the elementwise derivatives dy_i/dtheta_i are computed
  // once, so a sweep costs one MADE backward pass.
  const Matrix dinv = (-logd_.array()).exp().matrix();
  Matrix dydtheta(d_ * p_, n);
#pragma omp parallel for schedule(static) if (n >= 64)
  for (Index j = 0; j < n; ++j) {
    for (Index i = 0; i < d_; ++i) element_backward(theta_.col(j).data() + i * p_, x_(i, j), 1.0, 0.0, dydtheta.col(j).data() + i * p_);
  }
  Matrix lambda = b.cwiseProduct(dinv), gtheta(d_ * p_, n), gin;
  for (Index sweep = 1; sweep < d_; ++sweep) {
    for (Index i = 0; i < d_; ++i) {
      gtheta.middleRows(i * p_, p_) = (dydtheta.middleRows(i * p_, p_).array().rowwise() * lambda.row(i).array()).matrix();
    }
    made_->backward(gtheta, gin, false);
    lambda += (b - lambda.cwiseQuotient(dinv) - gin).cwiseProduct(dinv);
  }
  if (accumulate) {
    Matrix unused;
    backward(-lambda, -gl, unused, true);  // dL/dtheta = -(df/dtheta)^T lambda - gl dlogdet/dtheta
  }
  gy = std::move(lambda);
}

// ---- Flow ------------------------------------------------------------------------------------------

Flow::Flow(Index d) : d_(d) { check_at_least("Flow", "d", d, 1); }

Flow& Flow::add(std::unique_ptr<FlowLayer> layer) {
  if (bound_) throw InvalidArgument("Flow::add: the flow is already initialised");
  check_size("Flow::add", "layer size", layer->size(), d_);
  layers_.push_back(std::move(layer));
  return *this;
}

void Flow::initialize(Rng& rng) {
  if (bound_) throw InvalidArgument("Flow::initialize: called twice");
  for (std::size_t l = 0; l < layers_.size(); ++l) params_.add(format_message("flow.", l), *layers_[l]);
  params_.bind();
  for (auto& l : layers_) l->initialize(rng);
  bound_ = true;
}

std::string Flow::describe() const {
  std::string s = format_message("flow(", d_, "): ");
  for (std::size_t l = 0; l < layers_.size(); ++l) s += (l ? " -> " : "") + layers_[l]->describe();
  return s;
}

Vector Flow::log_prob(const Matrix& x) {
  check_shape("Flow::log_prob", "x", x, d_, x.cols());
  Vector logdet = Vector::Zero(x.cols());
  Matrix h = x, next;
  for (auto& l : layers_) {
    l->forward(h, next, logdet);
    std::swap(h, next);
  }
  z_ = h;
  return logdet - 0.5 * h.colwise().squaredNorm().transpose() - Vector::Constant(x.cols(), d_ * kHalfLog2Pi);
}

void Flow::log_prob_backward(const Vector& w, Matrix& gx, bool accumulate) {
  check_size("Flow::log_prob_backward", "w", w.size(), z_.cols());
  Matrix g = -(z_.array().rowwise() * w.transpose().array()).matrix(), prev;
  for (std::size_t l = layers_.size(); l-- > 0;) {
    layers_[l]->backward(g, w, prev, accumulate);
    std::swap(g, prev);
  }
  gx = std::move(g);
}

void Flow::sample(const Matrix& z, Matrix& x, Vector& log_q) {
  check_shape("Flow::sample", "z", z, d_, z.cols());
  z_ = z;
  Vector logdet = Vector::Zero(z.cols());
  Matrix h = z, next;
  for (std::size_t l = layers_.size(); l-- > 0;) {
    layers_[l]->inverse(h, next, logdet);
    std::swap(h, next);
  }
  x = std::move(h);
  log_q = -0.5 * z.colwise().squaredNorm().transpose() - Vector::Constant(z.cols(), d_ * kHalfLog2Pi) - logdet;
}

void Flow::sample_backward(const Matrix& gx, const Vector& glq, Matrix& gz, bool accumulate) {
  check_shape("Flow::sample_backward", "gx", gx, d_, z_.cols());
  check_size("Flow::sample_backward", "glq", glq.size(), z_.cols());
  const Vector gl = -glq;
  Matrix g = gx, next;
  for (auto& l : layers_) {
    l->inverse_backward(g, gl, next, accumulate);
    std::swap(g, next);
  }
  gz = g - (z_.array().rowwise() * glq.transpose().array()).matrix();
}

void add_spec_layers(Flow& flow, Index d, const FlowSpec& spec) {
  if (spec.mixture_components > 0) flow.add(std::make_unique<MixtureCdf>(d, spec.mixture_components));
  for (Index l = 0; l < spec.layers; ++l) {
    if (l > 0 && d > 1) flow.add(Permutation::reverse(d));
    std::unique_ptr<FlowLayer> ar = std::make_unique<Autoregressive>(d, spec.autoregressive);
    if (spec.direction == FlowDirection::kIaf) ar = std::make_unique<Inverted>(std::move(ar));
    flow.add(std::move(ar));
  }
}

std::unique_ptr<Flow> make_flow(Index d, const FlowSpec& spec, ElementwiseAffine** affine) {
  spec.validate();
  auto flow = std::make_unique<Flow>(d);
  auto first = std::make_unique<ElementwiseAffine>(d);
  if (affine) *affine = first.get();
  flow->add(std::move(first));
  add_spec_layers(*flow, d, spec);
  return flow;
}

}  // namespace varflow::vi
