// A user's plug-ins checked by the installed conformance suites: a model, a network layer and an
// amortized head (registered by name, as a user adds a head without touching the library).
#include <varflow/amortized/head_registry.h>
#include <varflow/testing/conformance.h>

#include <numbers>

namespace {
// x <- 0.9 x + 0.1 x^2 componentwise: a toy nonlinear model standing in for a user's code.
class ToyModel final : public varflow::Model {
 public:
  varflow::Index state_size() const override { return 5; }
  std::string name() const override { return "toy"; }
  bool has_second_order() const override { return true; }

 protected:
  void do_step(varflow::Vector& x) const override { x = 0.9 * x + 0.1 * x.cwiseProduct(x); }
  void do_step_tangent(const varflow::Vector& x, varflow::Vector& dx) const override {
    dx = (0.9 + 0.2 * x.array()).matrix().cwiseProduct(dx);
  }
  void do_step_adjoint(const varflow::Vector& x, varflow::Vector& ax) const override {
    ax = (0.9 + 0.2 * x.array()).matrix().cwiseProduct(ax);
  }
  // d/dx [(0.9 + 0.2 x) .* a] dx = 0.2 dx .* a
  void do_step_second_order_adjoint(const varflow::Vector&, const varflow::Vector& dx, const varflow::Vector& a,
                                    varflow::Vector& out) const override {
    out = 0.2 * dx.cwiseProduct(a);
  }
};
}  // namespace

using varflow::testing::ModelConformance;
INSTANTIATE_TEST_SUITE_P(Downstream, ModelConformance,
                         ::testing::Values(varflow::testing::ModelCase{
                             "toy", [] { return std::make_shared<ToyModel>(); },
                             [](varflow::Rng& rng) { return varflow::Vector(0.1 * rng.normal_vector(5)); }}),
                         varflow::testing::CaseName());

// A user's network layer: y = a * tanh(x) elementwise with a trained vector a.
namespace {
class ScaledTanh final : public varflow::nn::Layer {
 public:
  explicit ScaledTanh(varflow::Index n) : n_(n) {}
  std::string type() const override { return "scaled_tanh"; }
  varflow::Index input_size() const override { return n_; }
  varflow::Index output_size() const override { return n_; }
  void bind(varflow::nn::ParameterBinder& binder, const std::string& prefix) override {
    a_ = binder.take(prefix + ".a", n_, 1, false);
  }
  void initialize(varflow::Rng& rng) override { scale() = rng.normal_vector(n_); }

 protected:
  void do_forward(const varflow::Matrix& x, varflow::Matrix& y) override {
    t_ = x.array().tanh();
    y = t_.array().colwise() * scale().array();
  }
  void do_backward(const varflow::Matrix& dy, varflow::Matrix& dx, bool accumulate) override {
    dx = (dy.array().colwise() * scale().array()) * (1.0 - t_.array().square());
    if (accumulate) varflow::Vector::Map(a_.gradient, n_) += dy.cwiseProduct(t_).rowwise().sum();
  }
  void do_tangent(const varflow::Matrix& dx, varflow::Matrix& dy) const override {
    dy = (dx.array().colwise() * scale().array()) * (1.0 - t_.array().square());
  }

 private:
  Eigen::Map<varflow::Vector> scale() const { return {a_.value, n_}; }
  varflow::Index n_;
  varflow::nn::ParameterBinder::Block a_;
  varflow::Matrix t_;
};

// A user's amortized head: q(x | c) = N(tanh(W c), diag(exp(2 s))), W and s trained.
varflow::amortized::HeadType tanh_gaussian_type();

class TanhGaussianHead final : public varflow::amortized::Head {
 public:
  TanhGaussianHead(varflow::Index d, varflow::Index c) : d_(d), c_(c), w_(c, d) {}
  varflow::amortized::HeadType type() const override { return tanh_gaussian_type(); }
  std::string describe() const override { return "tanh gaussian head"; }
  varflow::Index state_size() const override { return d_; }
  varflow::Index context_size() const override { return c_; }
  void bind(varflow::nn::ParameterBinder& binder, const std::string& prefix) override {
    w_.bind(binder, prefix + ".w");
    s_ = binder.take(prefix + ".log_sd", d_, 1, false);
  }
  void initialize(varflow::Rng& rng) override { w_.initialize(rng); }
  double loss(const varflow::Matrix& x, const varflow::Matrix& ctx, varflow::Rng&, bool gradient,
              varflow::Matrix* dctx) override {
    const varflow::Matrix m = mean_of(ctx);
    const varflow::Vector sd = log_sd().array().exp();
    const varflow::Matrix r = (x - m).array().colwise() / sd.array();
    const double b = static_cast<double>(x.cols());
    if (gradient) {
      const varflow::Matrix gm = -(r.array().colwise() / sd.array()) / b;  // dL/dm
      varflow::Matrix gin;
      w_.backward(gm.cwiseProduct((1.0 - m.array().square()).matrix()), gin, true);
      if (dctx) *dctx = gin;
      varflow::Vector::Map(s_.gradient, d_) += (1.0 - r.array().square()).matrix().rowwise().sum() / b;
    }
    return 0.5 * r.squaredNorm() / b + log_sd().sum() + 0.5 * static_cast<double>(d_) * std::log(2.0 * std::numbers::pi);
  }
  bool has_log_prob() const override { return true; }
  varflow::Vector log_prob(const varflow::Matrix& x, const varflow::Matrix& ctx) override {
    const varflow::Matrix r = (x - mean_of(ctx)).array().colwise() / log_sd().array().exp();
    return (-0.5 * r.colwise().squaredNorm().array() - log_sd().sum() - 0.5 * static_cast<double>(d_) * std::log(2.0 * std::numbers::pi))
        .matrix()
        .transpose();
  }
  varflow::Matrix sample(const varflow::Matrix& ctx, varflow::Rng& rng) override {
    varflow::Matrix z(d_, ctx.cols());
    for (varflow::Index j = 0; j < ctx.cols(); ++j) z.col(j) = rng.normal_vector(d_);
    return push(z, ctx);
  }
  varflow::Matrix push(const varflow::Matrix& z, const varflow::Matrix& ctx) override {
    return mean_of(ctx) + (z.array().colwise() * log_sd().array().exp()).matrix();
  }
  varflow::Matrix push_jvp(const varflow::Matrix&, const varflow::Matrix& ctx, const varflow::Matrix& dctx) override {
    const varflow::Matrix m = mean_of(ctx);
    varflow::Matrix out;
    w_.tangent(dctx, out);
    return out.cwiseProduct((1.0 - m.array().square()).matrix());
  }
  varflow::Matrix push_vjp(const varflow::Matrix&, const varflow::Matrix& ctx, const varflow::Matrix& a) override {
    const varflow::Matrix m = mean_of(ctx);
    varflow::Matrix g;
    w_.backward(a.cwiseProduct((1.0 - m.array().square()).matrix()), g, false);
    return g;
  }
  varflow::Matrix mean_draws() const override { return varflow::Matrix::Zero(d_, 1); }

 private:
  varflow::Matrix mean_of(const varflow::Matrix& ctx) {
    varflow::Matrix pre;
    w_.forward(ctx, pre);
    return pre.array().tanh();
  }
  Eigen::Map<const varflow::Vector> log_sd() const { return {s_.value, d_}; }
  varflow::Index d_, c_;
  varflow::nn::Dense w_;
  varflow::nn::ParameterBinder::Block s_;
};

// Registered once: the head is then known by name to configurations, model files and `varflow train`.
varflow::amortized::HeadType tanh_gaussian_type() {
  static const varflow::amortized::HeadType type = [] {
    varflow::amortized::HeadRegistration r;
    r.name = "tanh_gaussian";
    r.make = [](const varflow::amortized::AmortizedConfig& c, varflow::Index d) {
      return std::unique_ptr<varflow::amortized::Head>(std::make_unique<TanhGaussianHead>(d, c.encoder.context));
    };
    return varflow::amortized::register_head(r);
  }();
  return type;
}
}  // namespace

using varflow::testing::LayerConformance;
INSTANTIATE_TEST_SUITE_P(Downstream, LayerConformance,
                         ::testing::Values(varflow::testing::LayerCase{
                             "scaled_tanh", [] { return std::make_unique<ScaledTanh>(4); }}),
                         varflow::testing::CaseName());

using varflow::testing::HeadConformance;
INSTANTIATE_TEST_SUITE_P(Downstream, HeadConformance,
                         ::testing::Values(varflow::testing::HeadCase{
                             "tanh_gaussian",
                             [] {
                               varflow::amortized::AmortizedConfig c;
                               c.head = tanh_gaussian_type();
                               c.encoder.context = 3;
                               return varflow::amortized::make_head(c, 2);
                             }}),
                         varflow::testing::CaseName());
