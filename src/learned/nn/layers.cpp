#include "varflow/nn/layers.h"

#include <cassert>
#include <cmath>
#include <sstream>

#include "varflow/core/enum_text.h"
#include "varflow/core/error.h"
#include "varflow/nn/precision.h"

namespace varflow::nn {

namespace {
constexpr EnumNames<Activation, 5> kActivationNames{{{Activation::kIdentity, "identity"},
                                                     {Activation::kTanh, "tanh"},
                                                     {Activation::kSilu, "silu"},
                                                     {Activation::kRelu, "relu"},
                                                     {Activation::kSoftplus, "softplus"}}};
}  // namespace

std::string to_string(Activation a) { return std::string(to_text(kActivationNames, a)); }

Activation activation_from_string(const std::string& name, const std::string& what) {
  return from_text(kActivationNames, what, name);
}

std::string Layer::describe() const { return format_message(type(), "(", input_size(), " -> ", output_size(), ")"); }

std::string Layer::where() const {
  return format_message(type(), " layer (", input_size(), " -> ", output_size(), ")");
}

void Layer::forward(const Matrix& x, Matrix& y) {
  if (x.rows() != input_size()) {
    throw InvalidArgument(format_message(where(), ": rows of x = ", x.rows(), " must equal its input size ", input_size()));
  }
  do_forward(x, y);
  batch_ = x.cols();
}

void Layer::backward(const Matrix& dy, Matrix& dx, bool accumulate) {
  if (dy.rows() != output_size() || dy.cols() != batch_) {
    throw InvalidArgument(format_message(where(), ": backward: dy is ", dy.rows(), " x ", dy.cols(),
                                         ", must be output size x batch of the last forward() = ", output_size(),
                                         " x ", batch_));
  }
  do_backward(dy, dx, accumulate);
}

void Layer::tangent(const Matrix& dx, Matrix& dy) const {
  if (dx.rows() != input_size() || dx.cols() != batch_) {
    throw InvalidArgument(format_message(where(), ": tangent: dx is ", dx.rows(), " x ", dx.cols(),
                                         ", must be input size x batch of the last forward() = ", input_size(),
                                         " x ", batch_));
  }
  do_tangent(dx, dy);
}

void Layer::second_order_backward(const Matrix& dx, const Matrix& a, const Matrix& da, Matrix& a_in,
                                  Matrix& da_in) const {
  if (!has_second_order()) {
    throw InvalidArgument(format_message(where(), ": has no second-order pass (second_order_backward)"));
  }
  const auto check = [&](const char* name, const Matrix& m, Index rows, const char* size) {
    if (m.rows() != rows || m.cols() != batch_) {
      throw InvalidArgument(format_message(where(), ": second_order_backward: ", name, " is ", m.rows(), " x ",
                                           m.cols(), ", must be ", size, " x batch of the last forward() = ", rows,
                                           " x ", batch_));
    }
  };
  check("dx", dx, input_size(), "input size");
  check("a", a, output_size(), "output size");
  check("da", da, output_size(), "output size");
  do_second_order_backward(dx, a, da, a_in, da_in);
}

void Layer::do_second_order_backward(const Matrix&, const Matrix&, const Matrix&, Matrix&, Matrix&) const {
  throw InvalidArgument(format_message(where(), ": has no second-order pass (second_order_backward)"));
}

// ---- Dense -------------------------------------------------------------------------------------

Dense::Dense(Index in, Index out, Init init) : in_(in), out_(out), init_(init) {
  check_at_least("Dense", "input size", in, 1);
  check_at_least("Dense", "output size", out, 1);
}

std::string Dense::describe() const { return format_message("dense(", in_, " -> ", out_, ")"); }

void Dense::bind(ParameterBinder& binder, const std::string& prefix) {
  w_ = binder.take(prefix + ".W", out_, in_, true);
  b_ = binder.take(prefix + ".b", out_, 1, false);
}

void Dense::initialize(Rng& rng) {
  assert(w_.value != nullptr);
  double scale = 1.0;
  switch (init_) {
    case Init::kLecun: scale = 1.0; break;
    case Init::kHe: scale = std::sqrt(2.0); break;
    case Init::kSmall: scale = 0.1; break;
    case Init::kZero: scale = 0.0; break;
  }
  const double sd = scale / std::sqrt(static_cast<double>(in_));
  auto w = weight();
  for (Index j = 0; j < in_; ++j) {
    for (Index i = 0; i < out_; ++i) w(i, j) = sd * rng.normal();
  }
  bias().setZero();
}

void Dense::do_forward(const Matrix& x, Matrix& y) {
  assert(x.rows() == in_);
  x_ = x;
  // y starts as the bias and the product is added to it: one pass over y fewer than zeroing it for
  // the product and adding the bias after. The same bits: the product is accumulated in registers
  // over the whole depth (in_ is below Eigen's depth block) and added to y once, b + Wx = Wx + b.
  const Eigen::Map<const Vector> b(b_.value, out_);
  y.resize(out_, x.cols());
  for (Index j = 0; j < x.cols(); ++j) y.col(j) = b;  // (replicate() divides per element)
  multiply(Eigen::Map<const Matrix>(w_.value, out_, in_), x, y, true);
}

void Dense::do_backward(const Matrix& dy, Matrix& dx, bool accumulate) {
  assert(dy.rows() == out_ && dy.cols() == x_.cols());
  const Eigen::Map<const Matrix> w(w_.value, out_, in_);
  if (accumulate) {
    multiply(dy, x_.transpose(), Eigen::Map<Matrix>(w_.gradient, out_, in_), true);
    Eigen::Map<Vector>(b_.gradient, out_) += dy.rowwise().sum();
  }
  multiply(w.transpose(), dy, dx);
}

void Dense::do_tangent(const Matrix& dx, Matrix& dy) const {
  assert(dx.rows() == in_);
  multiply(Eigen::Map<const Matrix>(w_.value, out_, in_), dx, dy);
}

// Affine in x: no second-order term.
void Dense::do_second_order_backward(const Matrix&, const Matrix& a, const Matrix& da, Matrix& a_in,
                                     Matrix& da_in) const {
  const Eigen::Map<const Matrix> w(w_.value, out_, in_);
  multiply(w.transpose(), a, a_in);
  multiply(w.transpose(), da, da_in);
}

// ---- activations -------------------------------------------------------------------------------

ActivationLayer::ActivationLayer(Activation kind, Index size) : kind_(kind), size_(size) {
  check_at_least("ActivationLayer", "size", size, 1);
}

std::string ActivationLayer::describe() const { return format_message(to_string(kind_), "(", size_, ")"); }

namespace {
// The logistic function from e = exp(-|x|), the same value as 1 / (1 + exp(-x)) for x >= 0 and
// exp(x) / (1 + exp(x)) for x < 0 (each evaluated stably), without a branch on the sign of x (a
// select: random signs made the branch a misprediction per element).
inline double sigmoid_from(double x, double e) { return (x >= 0.0 ? 1.0 : e) / (1.0 + e); }

// f''(x) of each activation (0 for identity and, a.e., ReLU), by the formulas forward() used to
// cache: the second-order pass evaluates it at the cached input instead.
inline double second_derivative(Activation kind, double x) {
  switch (kind) {
    case Activation::kTanh: {
      const double t = std::tanh(x);
      const double d = 1.0 - t * t;
      return -2.0 * t * d;
    }
    case Activation::kSilu: {
      const double s = sigmoid_from(x, std::exp(-std::abs(x)));
      return s * (1.0 - s) * (2.0 + x * (1.0 - 2.0 * s));
    }
    case Activation::kSoftplus: {
      const double s = sigmoid_from(x, std::exp(-std::abs(x)));
      return s * (1.0 - s);
    }
    case Activation::kIdentity:
    case Activation::kRelu: return 0.0;
  }
  return 0.0;
}
}  // namespace

// One pass over the batch: y and f'(x) (what backward and tangent need), one exp per element for
// SiLU and softplus. f''(x) is not computed here (training never needs it); the input is kept for
// the second-order pass instead.
void ActivationLayer::do_forward(const Matrix& x, Matrix& y) {
  assert(x.rows() == size_);
  y.resize(x.rows(), x.cols());
  derivative_.resize(x.rows(), x.cols());
  input_ = x;
  const Index n = x.size();
  const double* px = x.data();
  double* py = y.data();
  double* pd = derivative_.data();
  switch (kind_) {
    case Activation::kIdentity:
      for (Index i = 0; i < n; ++i) { py[i] = px[i]; pd[i] = 1.0; }
      break;
    case Activation::kTanh:
      for (Index i = 0; i < n; ++i) {
        const double t = std::tanh(px[i]);
        py[i] = t;
        pd[i] = 1.0 - t * t;
      }
      break;
    case Activation::kSilu:
      // Two passes: the exponentials alone (library calls back to back), then the rest, which the
      // compiler vectorises (the select included); pd holds e = exp(-|x|) in between.
      for (Index i = 0; i < n; ++i) pd[i] = std::exp(-std::abs(px[i]));
      for (Index i = 0; i < n; ++i) {
        const double v = px[i];
        const double s = sigmoid_from(v, pd[i]);
        py[i] = v * s;
        pd[i] = s * (1.0 + v * (1.0 - s));
      }
      break;
    case Activation::kRelu:
      for (Index i = 0; i < n; ++i) {
        py[i] = px[i] > 0.0 ? px[i] : 0.0;
        pd[i] = px[i] > 0.0 ? 1.0 : 0.0;
      }
      break;
    case Activation::kSoftplus:
      for (Index i = 0; i < n; ++i) {
        const double v = px[i];
        const double e = std::exp(-std::abs(v));
        py[i] = std::max(v, 0.0) + std::log1p(e);
        pd[i] = sigmoid_from(v, e);
      }
      break;
  }
}

void ActivationLayer::do_backward(const Matrix& dy, Matrix& dx, bool) {
  assert(dy.rows() == derivative_.rows() && dy.cols() == derivative_.cols());
  dx.resize(dy.rows(), dy.cols());
  dx.array() = dy.array() * derivative_.array();
}

void ActivationLayer::do_tangent(const Matrix& dx, Matrix& dy) const {
  assert(dx.rows() == derivative_.rows() && dx.cols() == derivative_.cols());
  dy.resize(dx.rows(), dx.cols());
  dy.array() = dx.array() * derivative_.array();
}

// a_in = f'(x) a, da_in = f'(x) da + f''(x) a dx (elementwise).
void ActivationLayer::do_second_order_backward(const Matrix& dx, const Matrix& a, const Matrix& da, Matrix& a_in,
                                               Matrix& da_in) const {
  a_in = a.cwiseProduct(derivative_);
  da_in.resize(da.rows(), da.cols());
  const Index n = da.size();
  const double *pda = da.data(), *pa = a.data(), *pdx = dx.data(), *pd = derivative_.data(), *px = input_.data();
  double* out = da_in.data();
  for (Index i = 0; i < n; ++i) out[i] = pda[i] * pd[i] + pa[i] * second_derivative(kind_, px[i]) * pdx[i];
}

// ---- Sequential --------------------------------------------------------------------------------

Sequential& Sequential::add(std::unique_ptr<Layer> layer) {
  if (!layers_.empty() && layer->input_size() != output_size()) {
    throw InvalidArgument(format_message("Sequential::add: ", layer->describe(), " has input size ",
                                         layer->input_size(), ", expected ", output_size()));
  }
  layers_.push_back(std::move(layer));
  outputs_.resize(layers_.size());
  return *this;
}

std::string Sequential::describe() const {
  std::ostringstream os;
  for (std::size_t i = 0; i < layers_.size(); ++i) os << (i ? "; " : "") << layers_[i]->describe();
  return os.str();
}

Index Sequential::input_size() const { return layers_.empty() ? 0 : layers_.front()->input_size(); }
Index Sequential::output_size() const { return layers_.empty() ? 0 : layers_.back()->output_size(); }

void Sequential::bind(ParameterBinder& binder, const std::string& prefix) {
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    layers_[i]->bind(binder, format_message(prefix, ".", i, ".", layers_[i]->type()));
  }
}

void Sequential::initialize(Rng& rng) {
  for (auto& l : layers_) l->initialize(rng);
}

void Sequential::do_forward(const Matrix& x, Matrix& y) {
  assert(!layers_.empty());
  const Matrix* in = &x;
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    layers_[i]->forward(*in, outputs_[i]);
    in = &outputs_[i];
  }
  y = outputs_.back();
}

// Each layer's input gradient goes to a buffer kept between calls (gradients_[i] for layer i >= 1,
// the caller's dx for layer 0): no allocation per batch once the shapes have been seen.
void Sequential::do_backward(const Matrix& dy, Matrix& dx, bool accumulate) {
  gradients_.resize(layers_.size());
  const Matrix* g = &dy;
  for (std::size_t i = layers_.size(); i-- > 1;) {
    layers_[i]->backward(*g, gradients_[i], accumulate);
    g = &gradients_[i];
  }
  if (g == &dx) {  // a caller passing the same matrix as dy and dx (one layer): keep dy intact
    Matrix in = dy;
    layers_[0]->backward(in, dx, accumulate);
  } else {
    layers_[0]->backward(*g, dx, accumulate);
  }
}

void Sequential::do_tangent(const Matrix& dx, Matrix& dy) const {
  Matrix t = dx, u;
  for (const auto& l : layers_) {
    l->tangent(t, u);
    t.swap(u);
  }
  dy.swap(t);
}

bool Sequential::has_second_order() const {
  if (layers_.empty()) return false;
  for (const auto& l : layers_) {
    if (!l->has_second_order()) return false;
  }
  return true;
}

// Tangent forward pass for the tangents of every layer's input, then the backward pass of (a, da).
void Sequential::do_second_order_backward(const Matrix& dx, const Matrix& a, const Matrix& da, Matrix& a_in,
                                          Matrix& da_in) const {
  const std::size_t count = layers_.size();
  std::vector<Matrix> tangents(count);  // tangents[i]: the tangent of layer i's input (i >= 1)
  for (std::size_t i = 1; i < count; ++i) layers_[i - 1]->tangent(i == 1 ? dx : tangents[i - 1], tangents[i]);
  Matrix g = a, dg = da, h, dh;
  for (std::size_t i = count; i-- > 0;) {
    layers_[i]->second_order_backward(i == 0 ? dx : tangents[i], g, dg, h, dh);
    g.swap(h);
    dg.swap(dh);
  }
  a_in.swap(g);
  da_in.swap(dg);
}

// ---- Residual ----------------------------------------------------------------------------------

Residual::Residual(std::unique_ptr<Sequential> branch) : branch_(std::move(branch)) {
  if (branch_->input_size() != branch_->output_size()) {
    throw InvalidArgument(format_message("Residual: branch maps ", branch_->input_size(), " to ",
                                         branch_->output_size(), " values; they must be equal"));
  }
}

std::string Residual::describe() const { return "residual[" + branch_->describe() + "]"; }

void Residual::bind(ParameterBinder& binder, const std::string& prefix) { branch_->bind(binder, prefix); }

void Residual::do_forward(const Matrix& x, Matrix& y) {
  branch_->forward(x, y);
  y += x;
}

void Residual::do_backward(const Matrix& dy, Matrix& dx, bool accumulate) {
  branch_->backward(dy, dx, accumulate);
  dx += dy;
}

void Residual::do_tangent(const Matrix& dx, Matrix& dy) const {
  branch_->tangent(dx, dy);
  dy += dx;
}

bool Residual::has_second_order() const { return branch_->has_second_order(); }

void Residual::do_second_order_backward(const Matrix& dx, const Matrix& a, const Matrix& da, Matrix& a_in,
                                        Matrix& da_in) const {
  branch_->second_order_backward(dx, a, da, a_in, da_in);
  a_in += a;
  da_in += da;
}

// ---- LinearSkip --------------------------------------------------------------------------------

LinearSkip::LinearSkip(std::unique_ptr<Sequential> branch, Init init)
    : branch_(std::move(branch)), skip_(branch_->input_size(), branch_->output_size(), init) {}

std::string LinearSkip::describe() const {
  return format_message("[", branch_->describe(), "] + linear skip ", skip_.describe());
}

void LinearSkip::bind(ParameterBinder& binder, const std::string& prefix) {
  branch_->bind(binder, prefix);
  skip_.bind(binder, prefix + ".skip");
}

void LinearSkip::initialize(Rng& rng) {
  branch_->initialize(rng);
  skip_.initialize(rng);
}

void LinearSkip::do_forward(const Matrix& x, Matrix& y) {
  branch_->forward(x, y);
  skip_.forward(x, scratch_);
  y += scratch_;
}

void LinearSkip::do_backward(const Matrix& dy, Matrix& dx, bool accumulate) {
  branch_->backward(dy, dx, accumulate);
  skip_.backward(dy, scratch_, accumulate);
  dx += scratch_;
}

void LinearSkip::do_tangent(const Matrix& dx, Matrix& dy) const {
  Matrix dy_skip;
  branch_->tangent(dx, dy);
  skip_.tangent(dx, dy_skip);
  dy += dy_skip;
}

bool LinearSkip::has_second_order() const { return branch_->has_second_order(); }

void LinearSkip::do_second_order_backward(const Matrix& dx, const Matrix& a, const Matrix& da, Matrix& a_in,
                                          Matrix& da_in) const {
  Matrix a_skip, da_skip;
  branch_->second_order_backward(dx, a, da, a_in, da_in);
  skip_.second_order_backward(dx, a, da, a_skip, da_skip);
  a_in += a_skip;
  da_in += da_skip;
}

// ---- MaskChannels ------------------------------------------------------------------------------

MaskChannels::MaskChannels(Index slots, Index grid) : slots_(slots), n_(grid) {
  check_at_least("MaskChannels", "slots", slots, 1);
  check_at_least("MaskChannels", "grid", grid, 1);
}

std::string MaskChannels::describe() const {
  return format_message("mask_channels(", slots_, " x ", n_, " -> ", 2 * slots_, " x ", n_, ")");
}

void MaskChannels::do_forward(const Matrix& x, Matrix& y) {
  assert(x.rows() == slots_ * n_);
  const Index b = x.cols();
  present_.resize(x.rows(), b);
  y.resize(2 * slots_ * n_, b);
  for (Index j = 0; j < b; ++j) {
    for (Index s = 0; s < slots_; ++s) {
      for (Index i = 0; i < n_; ++i) {
        const double v = x(s * n_ + i, j);
        const bool ok = std::isfinite(v);
        present_(s * n_ + i, j) = ok;
        y((2 * s) * n_ + i, j) = ok ? v : 0.0;
        y((2 * s + 1) * n_ + i, j) = ok ? 1.0 : 0.0;
      }
    }
  }
}

void MaskChannels::do_backward(const Matrix& dy, Matrix& dx, bool) { values_transpose(dy, dx); }

void MaskChannels::values_transpose(const Matrix& dy, Matrix& dx) const {
  const Index b = dy.cols();
  assert(b == present_.cols());
  dx.resize(slots_ * n_, b);
  for (Index j = 0; j < b; ++j) {
    for (Index s = 0; s < slots_; ++s) {
      for (Index i = 0; i < n_; ++i) {
        dx(s * n_ + i, j) = present_(s * n_ + i, j) ? dy((2 * s) * n_ + i, j) : 0.0;
      }
    }
  }
}

// Linear in the present values: no second-order term.
void MaskChannels::do_second_order_backward(const Matrix&, const Matrix& a, const Matrix& da, Matrix& a_in,
                                            Matrix& da_in) const {
  values_transpose(a, a_in);
  values_transpose(da, da_in);
}

void MaskChannels::do_tangent(const Matrix& dx, Matrix& dy) const {
  const Index b = dx.cols();
  assert(b == present_.cols());
  dy = Matrix::Zero(2 * slots_ * n_, b);
  for (Index j = 0; j < b; ++j) {
    for (Index s = 0; s < slots_; ++s) {
      for (Index i = 0; i < n_; ++i) {
        if (present_(s * n_ + i, j)) dy((2 * s) * n_ + i, j) = dx(s * n_ + i, j);
      }
    }
  }
}

// ---- ConstantChannels --------------------------------------------------------------------------

ConstantChannels::ConstantChannels(Index input_size, Index channels, Index grid)
    : in_(input_size), k_(channels), n_(grid), c_(Matrix::Zero(channels, grid)) {
  check_at_least("ConstantChannels", "input_size", input_size, 0);
  check_at_least("ConstantChannels", "channels", channels, 1);
  check_at_least("ConstantChannels", "grid", grid, 1);
}

std::string ConstantChannels::describe() const {
  return format_message("constant_channels(", in_, " + ", k_, " x ", n_, " -> ", output_size(), ")");
}

void ConstantChannels::set_constants(const Matrix& c) {
  if (c.rows() != k_ || c.cols() != n_) {
    throw InvalidArgument(format_message("ConstantChannels::set_constants: constants are ", c.rows(), " x ", c.cols(),
                                         ", expected ", k_, " x ", n_));
  }
  if (!c.allFinite()) throw InvalidArgument("ConstantChannels::set_constants: a constant is not finite");
  c_ = c;
}

void ConstantChannels::do_forward(const Matrix& x, Matrix& y) {
  assert(x.rows() == in_);
  const Index b = x.cols();
  y.resize(output_size(), b);
  y.topRows(in_) = x;
  const Matrix ct = c_.transpose();  // n x k: column c holds channel c
  const Eigen::Map<const Vector> flat(ct.data(), k_ * n_);
  y.bottomRows(k_ * n_) = flat.replicate(1, b);
}

void ConstantChannels::do_backward(const Matrix& dy, Matrix& dx, bool) { dx = dy.topRows(in_); }

void ConstantChannels::do_tangent(const Matrix& dx, Matrix& dy) const {
  dy = Matrix::Zero(output_size(), dx.cols());
  dy.topRows(in_) = dx;
}

void ConstantChannels::do_second_order_backward(const Matrix&, const Matrix& a, const Matrix& da, Matrix& a_in,
                                                Matrix& da_in) const {
  a_in = a.topRows(in_);
  da_in = da.topRows(in_);
}

// ---- LinearChannels ----------------------------------------------------------------------------

LinearChannels::LinearChannels(Index input_size, Index channels, Index grid)
    : in_(input_size), k_(channels), n_(grid), a_(Matrix::Zero(channels * grid, input_size)) {
  check_at_least("LinearChannels", "input_size", input_size, 1);
  check_at_least("LinearChannels", "channels", channels, 1);
  check_at_least("LinearChannels", "grid", grid, 1);
}

std::string LinearChannels::describe() const {
  return format_message("linear_channels(", in_, " + ", k_, " x ", n_, " -> ", output_size(), ")");
}

void LinearChannels::set_map(const Matrix& a) {
  if (a.rows() != k_ * n_ || a.cols() != in_) {
    throw InvalidArgument(format_message("LinearChannels::set_map: the map is ", a.rows(), " x ", a.cols(),
                                         ", expected ", k_ * n_, " x ", in_));
  }
  if (!a.allFinite()) throw InvalidArgument("LinearChannels::set_map: an entry of the map is not finite");
  a_ = a;
}

void LinearChannels::apply(const Matrix& x, Matrix& y) const {
  y.resize(output_size(), x.cols());
  y.topRows(in_) = x;
  y.bottomRows(k_ * n_).noalias() = a_ * x;
}

void LinearChannels::do_forward(const Matrix& x, Matrix& y) {
  assert(x.rows() == in_);
  apply(x, y);
}

void LinearChannels::transpose_apply(const Matrix& dy, Matrix& dx) const {
  dx = dy.topRows(in_);
  dx.noalias() += a_.transpose() * dy.bottomRows(k_ * n_);
}

void LinearChannels::do_backward(const Matrix& dy, Matrix& dx, bool) { transpose_apply(dy, dx); }

void LinearChannels::do_tangent(const Matrix& dx, Matrix& dy) const { apply(dx, dy); }  // linear

void LinearChannels::do_second_order_backward(const Matrix&, const Matrix& a, const Matrix& da, Matrix& a_in,
                                              Matrix& da_in) const {
  transpose_apply(a, a_in);
  transpose_apply(da, da_in);
}

// ---- builders ----------------------------------------------------------------------------------

namespace {
Init hidden_init(Activation act) { return act == Activation::kRelu ? Init::kHe : Init::kLecun; }
}  // namespace

std::unique_ptr<Sequential> make_mlp(Index in, Index width, Index depth, Index out, Activation act, Init last) {
  check_at_least("make_mlp", "depth", depth, 0);
  auto s = std::make_unique<Sequential>();
  Index prev = in;
  for (Index l = 0; l < depth; ++l) {
    s->emplace<Dense>(prev, width, hidden_init(act));
    s->emplace<ActivationLayer>(act, width);
    prev = width;
  }
  s->emplace<Dense>(prev, out, last);
  return s;
}

std::unique_ptr<Sequential> make_residual_mlp(Index in, Index width, Index blocks, Index out, Activation act,
                                              Init last) {
  check_at_least("make_residual_mlp", "blocks", blocks, 0);
  auto s = std::make_unique<Sequential>();
  s->emplace<Dense>(in, width, Init::kLecun);
  for (Index l = 0; l < blocks; ++l) {
    auto branch = std::make_unique<Sequential>();
    branch->emplace<ActivationLayer>(act, width);
    branch->emplace<Dense>(width, width, hidden_init(act));
    branch->emplace<ActivationLayer>(act, width);
    branch->emplace<Dense>(width, width, Init::kSmall);
    s->emplace<Residual>(std::move(branch));
  }
  s->emplace<ActivationLayer>(act, width);
  s->emplace<Dense>(width, out, last);
  return s;
}

}  // namespace varflow::nn
