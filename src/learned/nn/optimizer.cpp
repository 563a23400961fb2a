#include "varflow/nn/optimizer.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <numbers>

#include "varflow/core/error.h"
#include "varflow/nn/parallel.h"

namespace varflow::nn {

void AdamWOptions::validate() const {
  if (!(beta1 >= 0.0 && beta1 < 1.0)) throw InvalidArgument(format_message("AdamW: beta1 = ", beta1, " must be in [0, 1)"));
  if (!(beta2 >= 0.0 && beta2 < 1.0)) throw InvalidArgument(format_message("AdamW: beta2 = ", beta2, " must be in [0, 1)"));
  check_positive("AdamW", "epsilon", epsilon);
  check_nonnegative("AdamW", "weight_decay", weight_decay);
}

AdamW::AdamW(Index size, AdamWOptions options, Vector decay_mask)
    : o_(options), m_(Vector::Zero(size)), v_(Vector::Zero(size)), mask_(std::move(decay_mask)) {
  o_.validate();
  check_size("AdamW", "decay mask", mask_.size(), size);
}

void AdamW::restore(const State& s) {
  check_size("AdamW::restore", "first moment", s.m.size(), m_.size());
  check_size("AdamW::restore", "second moment", s.v.size(), v_.size());
  m_ = s.m;
  v_ = s.v;
  t_ = s.t;
  b1t_ = s.b1t;
  b2t_ = s.b2t;
}

void AdamW::step(Eigen::Ref<Vector> params, const Eigen::Ref<const Vector>& g, double lr) {
  assert(params.size() == m_.size() && g.size() == m_.size());
  ++t_;
  b1t_ *= o_.beta1;
  b2t_ *= o_.beta2;
  const double c1 = 1.0 / (1.0 - b1t_), c2 = 1.0 / (1.0 - b2t_);
  const Index n = params.size();
  // Elementwise, so the bits do not depend on the threads. Split over them when large enough: a
  // serial update also leaves the other threads spinning at the barrier they last left, which on
  // cores that share a physical core slowed it 4x (design/performance.md, "Two threads").
#pragma omp parallel for schedule(static) if (parallel_worth_it(16 * n))
  for (Index i = 0; i < n; ++i) {
    m_[i] = o_.beta1 * m_[i] + (1.0 - o_.beta1) * g[i];
    v_[i] = o_.beta2 * v_[i] + (1.0 - o_.beta2) * g[i] * g[i];
    const double update = (m_[i] * c1) / (std::sqrt(v_[i] * c2) + o_.epsilon);
    params[i] -= lr * (update + o_.weight_decay * mask_[i] * params[i]);
  }
}

double clip_gradient_norm(Eigen::Ref<Vector> g, double max_norm) {
  const double norm = g.norm();
  if (max_norm > 0.0 && std::isfinite(norm) && norm > max_norm) g *= max_norm / norm;
  return norm;
}

CosineSchedule::CosineSchedule(double peak, Index warmup, Index total, double final_fraction)
    : peak_(peak), warmup_(std::max<Index>(warmup, 0)), total_(std::max<Index>(total, 1)),
      final_fraction_(final_fraction) {
  check_positive("CosineSchedule", "peak learning rate", peak);
  if (!(final_fraction >= 0.0 && final_fraction <= 1.0)) {
    throw InvalidArgument(format_message("CosineSchedule: final fraction = ", final_fraction, " must be in [0, 1]"));
  }
}

double CosineSchedule::operator()(Index step) const {
  if (step < warmup_) return peak_ * static_cast<double>(step + 1) / static_cast<double>(warmup_);
  const Index span = std::max<Index>(total_ - warmup_, 1);
  const double progress = std::min(1.0, static_cast<double>(step - warmup_) / static_cast<double>(span));
  const double cosine = 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
  return peak_ * (final_fraction_ + (1.0 - final_fraction_) * cosine);
}

}  // namespace varflow::nn
