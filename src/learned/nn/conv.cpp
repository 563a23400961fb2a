// Periodic 1-D convolution by im2col (one matrix product per batch).
#include <cassert>
#include <cmath>

#include "varflow/core/error.h"
#include "varflow/nn/layers.h"
#include "varflow/nn/parallel.h"
#include "varflow/nn/precision.h"

namespace varflow::nn {

PeriodicConv1d::PeriodicConv1d(Index channels_in, Index channels_out, Index grid, Index kernel, Init init)
    : c_in_(channels_in), c_out_(channels_out), n_(grid), k_(kernel), init_(init) {
  check_at_least("PeriodicConv1d", "input channels", channels_in, 1);
  check_at_least("PeriodicConv1d", "output channels", channels_out, 1);
  check_at_least("PeriodicConv1d", "grid", grid, 1);
  check_at_least("PeriodicConv1d", "kernel", kernel, 1);
  if (kernel % 2 == 0) {
    throw InvalidArgument(format_message("PeriodicConv1d: kernel = ", kernel, " must be odd"));
  }
  // The periodic wrap once, so the im2col and col2im loops do no integer division.
  const Index r = (k_ - 1) / 2;
  source_.resize(static_cast<std::size_t>(n_ * k_));
  for (Index i = 0; i < n_; ++i) {
    for (Index j = 0; j < k_; ++j) {
      Index src = (i + j - r) % n_;
      if (src < 0) src += n_;
      source_[static_cast<std::size_t>(i * k_ + j)] = src;
    }
  }
}

std::string PeriodicConv1d::describe() const {
  return format_message("conv1d(", c_in_, " x ", n_, " -> ", c_out_, " x ", n_, ", kernel ", k_, ", periodic)");
}

void PeriodicConv1d::bind(ParameterBinder& binder, const std::string& prefix) {
  w_ = binder.take(prefix + ".W", c_out_, c_in_ * k_, true);
  b_ = binder.take(prefix + ".b", c_out_, 1, false);
}

void PeriodicConv1d::initialize(Rng& rng) {
  double scale = 1.0;
  switch (init_) {
    case Init::kLecun: scale = 1.0; break;
    case Init::kHe: scale = std::sqrt(2.0); break;
    case Init::kSmall: scale = 0.1; break;
    case Init::kZero: scale = 0.0; break;
  }
  const double sd = scale / std::sqrt(static_cast<double>(c_in_ * k_));
  Eigen::Map<Matrix> w(w_.value, c_out_, c_in_ * k_);
  for (Index j = 0; j < w.cols(); ++j) {
    for (Index i = 0; i < w.rows(); ++i) w(i, j) = sd * rng.normal();
  }
  Eigen::Map<Vector>(b_.value, c_out_).setZero();
}

void PeriodicConv1d::im2col(const Matrix& x, Matrix& p) const {
  const Index b = x.cols();
  p.resize(c_in_ * k_, n_ * b);
#pragma omp parallel for schedule(static) if (parallel_worth_it(b * n_ * c_in_ * k_))
  for (Index s = 0; s < b; ++s) {
    for (Index i = 0; i < n_; ++i) {
      const Index col = s * n_ + i;
      const Index* src = source_.data() + i * k_;
      double* out = &p(0, col);
      for (Index c = 0; c < c_in_; ++c) {
        const double* in = &x(c * n_, s);
        for (Index j = 0; j < k_; ++j) out[c * k_ + j] = in[src[j]];
      }
    }
  }
}

namespace {
// big(o, s*n + i) <-> y(o*n + i, s)
void big_to_layout(const Matrix& big, Index channels, Index n, Index batch, Matrix& y) {
  y.resize(channels * n, batch);
#pragma omp parallel for schedule(static) if (parallel_worth_it(batch * n * channels))
  for (Index s = 0; s < batch; ++s) {
    for (Index o = 0; o < channels; ++o) {
      for (Index i = 0; i < n; ++i) y(o * n + i, s) = big(o, s * n + i);
    }
  }
}
void layout_to_big(const Matrix& y, Index channels, Index n, Matrix& big) {
  const Index batch = y.cols();
  big.resize(channels, n * batch);
#pragma omp parallel for schedule(static) if (parallel_worth_it(batch * n * channels))
  for (Index s = 0; s < batch; ++s) {
    for (Index o = 0; o < channels; ++o) {
      for (Index i = 0; i < n; ++i) big(o, s * n + i) = y(o * n + i, s);
    }
  }
}
}  // namespace

void PeriodicConv1d::do_forward(const Matrix& x, Matrix& y) {
  assert(x.rows() == c_in_ * n_);
  im2col(x, patches_);
  multiply(Eigen::Map<const Matrix>(w_.value, c_out_, c_in_ * k_), patches_, big_);
  big_.colwise() += Eigen::Map<const Vector>(b_.value, c_out_);
  big_to_layout(big_, c_out_, n_, x.cols(), y);
}

void PeriodicConv1d::do_backward(const Matrix& dy, Matrix& dx, bool accumulate) {
  const Index b = dy.cols();
  assert(dy.rows() == c_out_ * n_ && patches_.cols() == n_ * b);
  layout_to_big(dy, c_out_, n_, big_);
  if (accumulate) {
    multiply(big_, patches_.transpose(), Eigen::Map<Matrix>(w_.gradient, c_out_, c_in_ * k_), true);
    Eigen::Map<Vector>(b_.gradient, c_out_) += big_.rowwise().sum();
  }
  transpose_big(big_, b, dx, columns_);
}

void PeriodicConv1d::transpose_apply(const Matrix& dy, Matrix& dx) const {
  Matrix dbig, dp;
  layout_to_big(dy, c_out_, n_, dbig);
  transpose_big(dbig, dy.cols(), dx, dp);
}

void PeriodicConv1d::transpose_big(const Matrix& dbig, Index b, Matrix& dx, Matrix& dp) const {
  const Eigen::Map<const Matrix> w(w_.value, c_out_, c_in_ * k_);
  multiply(w.transpose(), dbig, dp);
  dx.setZero(c_in_ * n_, b);
  // col2im: each sample's scatter touches only its own column of dx.
#pragma omp parallel for schedule(static) if (parallel_worth_it(b * n_ * c_in_ * k_))
  for (Index s = 0; s < b; ++s) {
    for (Index i = 0; i < n_; ++i) {
      const Index col = s * n_ + i;
      const Index* src = source_.data() + i * k_;
      const double* in = &dp(0, col);
      for (Index c = 0; c < c_in_; ++c) {
        double* out = &dx(c * n_, s);
        for (Index j = 0; j < k_; ++j) out[src[j]] += in[c * k_ + j];
      }
    }
  }
}

void PeriodicConv1d::do_tangent(const Matrix& dx, Matrix& dy) const {
  Matrix p, big;
  im2col(dx, p);
  multiply(Eigen::Map<const Matrix>(w_.value, c_out_, c_in_ * k_), p, big);
  big_to_layout(big, c_out_, n_, dx.cols(), dy);
}

// Linear in x: no second-order term.
void PeriodicConv1d::do_second_order_backward(const Matrix&, const Matrix& a, const Matrix& da, Matrix& a_in,
                                              Matrix& da_in) const {
  transpose_apply(a, a_in);
  transpose_apply(da, da_in);
}

}  // namespace varflow::nn
