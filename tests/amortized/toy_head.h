#pragma once
// A head written the way a user would write one outside the library, registered with
// register_head(): q(x | c) = N(W c + b, s^2 I) with s the head's own option "toy.scale". Used by the
// registry tests and, with planted faults, by the head conformance tests.
#include <cmath>
#include <memory>
#include <numbers>
#include <string>

#include "varflow/amortized/head.h"
#include "varflow/amortized/head_registry.h"
#include "varflow/core/error.h"
#include "varflow/nn/layers.h"

namespace varflow::amortized::test {

class ToyHead final : public Head {
 public:
  // Planted faults for the conformance tests: a context gradient with the wrong sign, or a
  // log-density off by a constant from the closed form.
  enum class Fault { kNone, kContextGradientSign, kLogProbOffset };

  ToyHead(HeadType type, Index state_size, Index context_size, double scale, Fault fault = Fault::kNone)
      : type_(type), d_(state_size), c_(context_size), scale_(scale), fault_(fault), dense_(context_size, state_size) {}
  HeadType type() const override { return type_; }
  std::string describe() const override { return format_message("toy head (scale ", scale_, "): ", dense_.describe()); }
  Index state_size() const override { return d_; }
  Index context_size() const override { return c_; }
  void bind(nn::ParameterBinder& binder, const std::string& prefix) override { dense_.bind(binder, prefix + ".mean"); }
  void initialize(Rng& rng) override { dense_.initialize(rng); }

  double loss(const Matrix& x, const Matrix& ctx, Rng&, bool gradient, Matrix* dctx) override {
    const Matrix r = (x - mu(ctx)) / scale_;
    const double b = static_cast<double>(x.cols());
    if (gradient) {
      Matrix gin;
      dense_.backward(-r / (scale_ * b), gin, true);
      if (dctx) *dctx = fault_ == Fault::kContextGradientSign ? Matrix(-gin) : gin;
    }
    return 0.5 * r.squaredNorm() / b + static_cast<double>(d_) * log_norm();
  }
  bool has_log_prob() const override { return true; }
  Vector log_prob(const Matrix& x, const Matrix& ctx) override {
    const double offset = fault_ == Fault::kLogProbOffset ? 0.1 : 0.0;
    const Matrix r = (x - mu(ctx)) / scale_;
    return (-0.5 * r.colwise().squaredNorm().array() - static_cast<double>(d_) * log_norm() + offset).matrix().transpose();
  }
  bool has_closed_form_moments() const override { return true; }
  GaussianMoments closed_form_moments(const Vector& ctx) override {
    return {mu(ctx), scale_ * Matrix::Identity(d_, d_), true};
  }
  Matrix sample(const Matrix& ctx, Rng& rng) override {
    Matrix z(d_, ctx.cols());
    for (Index j = 0; j < ctx.cols(); ++j) z.col(j) = rng.normal_vector(d_);
    return push(z, ctx);
  }
  Matrix push(const Matrix& z, const Matrix& ctx) override { return mu(ctx) + scale_ * z; }
  Matrix push_jvp(const Matrix&, const Matrix& ctx, const Matrix& dctx) override {
    mu(ctx);
    Matrix out;
    dense_.tangent(dctx, out);
    return out;
  }
  Matrix push_vjp(const Matrix&, const Matrix& ctx, const Matrix& a) override {
    mu(ctx);
    Matrix g;
    dense_.backward(a, g, false);
    return g;
  }
  Matrix mean_draws() const override { return Matrix::Zero(d_, 1); }

 private:
  Matrix mu(const Matrix& ctx) {
    Matrix m;
    dense_.forward(ctx, m);
    return m;
  }
  double log_norm() const { return std::log(scale_) + 0.5 * std::log(2.0 * std::numbers::pi); }
  HeadType type_;
  Index d_, c_;
  double scale_;
  Fault fault_;
  nn::Dense dense_;
};

// Registers the toy head once per process ("toy", option toy.scale, default 0.5, must be positive).
inline HeadType toy_head_type() {
  static const HeadType type = register_head(
      {"toy",
       [](const AmortizedConfig& config, Index state_size) -> std::unique_ptr<Head> {
         return std::make_unique<ToyHead>(config.head, state_size, config.encoder.context,
                                          head_option_number(config, "toy.scale"));
       },
       [](const AmortizedConfig& config) {
         const double scale = head_option_number(config, "toy.scale");
         if (!(scale > 0.0)) throw InvalidArgument(format_message("AmortizedConfig: toy.scale = ", scale, " must be positive"));
       },
       nullptr,
       {{"toy.scale", HeadOption::Kind::kNumber, "0.5"}}});
  return type;
}

}  // namespace varflow::amortized::test
