#pragma once
// Optimisation of a flat parameter vector: AdamW, gradient-norm clipping, cosine learning-rate
// schedule with linear warm-up.
#include "varflow/core/types.h"

namespace varflow::nn {

struct AdamWOptions {
  double beta1 = 0.9;
  double beta2 = 0.999;
  double epsilon = 1e-8;
  double weight_decay = 0.0;  // decoupled: theta <- theta - lr * weight_decay * theta (masked)
  // Throws InvalidArgument naming the field: betas in [0, 1), epsilon > 0, weight_decay >= 0.
  void validate() const;
};

// Adam (Kingma & Ba 2015) with decoupled weight decay (Loshchilov & Hutter 2019, "Decoupled weight
// decay regularization"), in the form of their Algorithm 2 with the schedule folded into lr:
//   m <- b1 m + (1-b1) g;  v <- b2 v + (1-b2) g^2;  m^ = m/(1-b1^t);  v^ = v/(1-b2^t)
//   theta <- theta - lr * (m^ / (sqrt(v^) + eps) + weight_decay * mask * theta)
// `decay_mask` (1 = decay, 0 = not; e.g. biases and scales are not decayed) has the size of theta.
class AdamW {
 public:
  AdamW(Index size, AdamWOptions options, Vector decay_mask);
  // One step with learning rate lr on params (in place) given gradient g.
  void step(Eigen::Ref<Vector> params, const Eigen::Ref<const Vector>& g, double lr);
  Index steps() const { return t_; }
  // The moments and step count, for checkpoints: restore(state()) continues bit-identically.
  struct State {
    Vector m, v;
    Index t = 0;
    double b1t = 1.0, b2t = 1.0;
  };
  State state() const { return {m_, v_, t_, b1t_, b2t_}; }
  // Throws InvalidArgument when the moments do not have this optimizer's size.
  void restore(const State& s);

 private:
  AdamWOptions o_;
  Vector m_, v_, mask_;
  Index t_ = 0;
  double b1t_ = 1.0, b2t_ = 1.0;
};

// Scales g in place so that ||g||_2 <= max_norm; returns the norm before clipping. max_norm <= 0
// disables clipping. A non-finite norm is returned unchanged (the caller reports it).
double clip_gradient_norm(Eigen::Ref<Vector> g, double max_norm);

// Linear warm-up from peak/warmup to peak over `warmup` steps, then cosine decay to
// final_fraction * peak at step `total` (Loshchilov & Hutter 2017, SGDR, without restarts).
class CosineSchedule {
 public:
  CosineSchedule(double peak, Index warmup, Index total, double final_fraction);
  double operator()(Index step) const;  // step = 0, 1, ...

 private:
  double peak_;
  Index warmup_, total_;
  double final_fraction_;
};

}  // namespace varflow::nn
