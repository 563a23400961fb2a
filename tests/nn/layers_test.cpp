// Every layer's backward (input and parameter gradients) and tangent against central differences,
// relative error <= 1e-6 in double precision (GradientCheckTolerances).
#include <gtest/gtest.h>

#include <cmath>
#include <iostream>

#include "varflow/core/error.h"
#include "varflow/nn/gradient_check.h"
#include "varflow/nn/layers.h"
#include "varflow/testing/conformance.h"

namespace varflow::nn {
namespace {

Matrix random_matrix(Index rows, Index cols, Rng& rng, double scale = 1.0) {
  Matrix m(rows, cols);
  for (Index i = 0; i < m.size(); ++i) m.data()[i] = scale * rng.normal();
  return m;
}

// Binds `layer` to a fresh parameter set, initialises it with random (not zero) parameters and
// checks it at a random batch of 5 inputs.
GradientCheckResult check(Layer& layer, Rng& rng, double input_scale = 1.0) {
  ParameterSet params;
  params.add("layer", layer);
  params.bind();
  layer.initialize(rng);
  // Random parameters everywhere (zero-initialised biases would hide bias-gradient errors).
  for (Index i = 0; i < params.size(); ++i) params.values()[i] += 0.3 * rng.normal();
  const Matrix x = random_matrix(layer.input_size(), 5, rng, input_scale);
  const GradientCheckResult r = check_layer(layer, params.size() > 0 ? &params : nullptr, x, rng);
  std::cout << layer.describe() << ": " << r.report() << "\n";
  return r;
}

TEST(Layers, DenseGradients) {
  Rng rng = testing::seeded_rng(501);
  Dense d(7, 4);
  const auto r = check(d, rng);
  EXPECT_TRUE(r.passed) << r.report();
}

class ActivationGradients : public ::testing::TestWithParam<Activation> {};

TEST_P(ActivationGradients, MatchFiniteDifferences) {
  Rng rng = testing::seeded_rng(502);
  ActivationLayer a(GetParam(), 6);
  const auto r = check(a, rng, 2.0);
  EXPECT_TRUE(r.passed) << to_string(GetParam()) << ": " << r.report();
}

INSTANTIATE_TEST_SUITE_P(All, ActivationGradients,
                         ::testing::Values(Activation::kIdentity, Activation::kTanh, Activation::kSilu,
                                           Activation::kRelu, Activation::kSoftplus),
                         [](const ::testing::TestParamInfo<Activation>& p) { return to_string(p.param); });

TEST(Layers, ActivationValues) {
  Matrix x(1, 3), y;
  x << -2.0, 0.5, 40.0;
  ActivationLayer sp(Activation::kSoftplus, 1);
  sp.forward(x, y);
  EXPECT_NEAR(y(0, 0), std::log1p(std::exp(-2.0)), 1e-15);
  EXPECT_NEAR(y(0, 2), 40.0, 1e-15);  // stable for large inputs
  ActivationLayer silu(Activation::kSilu, 1);
  silu.forward(x, y);
  EXPECT_NEAR(y(0, 1), 0.5 / (1.0 + std::exp(-0.5)), 1e-15);
}

TEST(Layers, MlpAndResidualMlpGradients) {
  Rng rng = testing::seeded_rng(503);
  auto mlp = make_mlp(5, 8, 2, 3, Activation::kTanh);
  const auto r1 = check(*mlp, rng);
  EXPECT_TRUE(r1.passed) << "mlp: " << r1.report();
  auto res = make_residual_mlp(4, 6, 2, 3, Activation::kSilu);
  const auto r2 = check(*res, rng);
  EXPECT_TRUE(r2.passed) << "residual mlp: " << r2.report();
}

// y = F(x) + W x + b: backward (input and parameter gradients) and tangent against central
// differences, and the value against the branch and the dense path computed separately.
TEST(Layers, LinearSkipGradientsAndValue) {
  Rng rng = testing::seeded_rng(508);
  LinearSkip skip(make_mlp(5, 8, 2, 3, Activation::kSilu));
  const auto r = check(skip, rng);
  EXPECT_TRUE(r.passed) << r.report();
  EXPECT_NE(skip.describe().find("linear skip dense(5 -> 3)"), std::string::npos) << skip.describe();

  // The same parameters in a plain MLP and a Dense layer give the two terms of the sum.
  ParameterSet params;
  params.add("s", skip);
  params.bind();
  skip.initialize(rng);
  for (Index i = 0; i < params.size(); ++i) params.values()[i] = rng.normal();
  auto branch = make_mlp(5, 8, 2, 3, Activation::kSilu);
  Dense dense(5, 3);
  ParameterSet plain;
  plain.add("s", *branch);
  plain.add("skip", dense);
  plain.bind();
  ASSERT_EQ(plain.size(), params.size());
  plain.values() = params.values();  // the branch's blocks first, then the skip's W and b
  const Matrix x = random_matrix(5, 4, rng);
  Matrix y, yb, yd;
  skip.forward(x, y);
  branch->forward(x, yb);
  dense.forward(x, yd);
  EXPECT_LT((y - yb - yd).cwiseAbs().maxCoeff(), 1e-12);
}

TEST(Layers, PeriodicConvolutionGradients) {
  Rng rng = testing::seeded_rng(504);
  PeriodicConv1d c(3, 4, 7, 5);  // kernel wider than half the grid: wrap-around on both sides
  const auto r = check(c, rng);
  EXPECT_TRUE(r.passed) << r.report();
}

TEST(Layers, PeriodicConvolutionMatchesDirectSum) {
  Rng rng = testing::seeded_rng(505);
  const Index cin = 2, cout = 3, n = 6, k = 3;
  PeriodicConv1d c(cin, cout, n, k);
  ParameterSet params;
  params.add("c", c);
  params.bind();
  c.initialize(rng);
  for (Index i = 0; i < params.size(); ++i) params.values()[i] = rng.normal();
  const Matrix x = random_matrix(cin * n, 2, rng);
  Matrix y;
  c.forward(x, y);
  const Eigen::Map<const Matrix> w(params.values().data(), cout, cin * k);
  const Eigen::Map<const Vector> b(params.values().data() + cout * cin * k, cout);
  double worst = 0.0;
  for (Index s = 0; s < 2; ++s) {
    for (Index o = 0; o < cout; ++o) {
      for (Index i = 0; i < n; ++i) {
        double v = b[o];
        for (Index ch = 0; ch < cin; ++ch) {
          for (Index j = 0; j < k; ++j) v += w(o, ch * k + j) * x(ch * n + ((i + j - 1 + n) % n), s);
        }
        worst = std::max(worst, std::abs(v - y(o * n + i, s)));
      }
    }
  }
  EXPECT_LT(worst, 1e-13);
}

TEST(Layers, MaskChannelsZeroesMissingValuesAndTheirGradient) {
  Rng rng = testing::seeded_rng(506);
  MaskChannels m(2, 4);
  Matrix x = random_matrix(8, 3, rng);
  x(1, 0) = std::nan("");
  x(6, 2) = std::nan("");
  Matrix y;
  m.forward(x, y);
  ASSERT_EQ(y.rows(), 16);
  EXPECT_EQ(y(1, 0), 0.0);       // value channel of slot 0, point 1
  EXPECT_EQ(y(4 + 1, 0), 0.0);   // its mask channel
  EXPECT_EQ(y(4 + 0, 0), 1.0);
  EXPECT_EQ(y(8 + 2, 2), 0.0);   // slot 1 point 2 missing in sample 2
  EXPECT_EQ(y(12 + 2, 2), 0.0);
  Matrix dy = random_matrix(16, 3, rng), dx;
  m.backward(dy, dx);
  EXPECT_EQ(dx(1, 0), 0.0);
  EXPECT_EQ(dx(0, 0), dy(0, 0));
  EXPECT_EQ(dx(6, 2), 0.0);
  // On present values it is a plain selection: check it like any layer.
  MaskChannels full(2, 4);
  const auto r = check(full, rng);
  EXPECT_TRUE(r.passed) << r.report();
}

TEST(Layers, ConvolutionalEncoderGradients) {
  Rng rng = testing::seeded_rng(507);
  Sequential s;
  s.emplace<PeriodicConv1d>(2, 4, 8, 3);
  s.emplace<ActivationLayer>(Activation::kSilu, 32);
  s.emplace<PeriodicConv1d>(4, 2, 8, 3);
  s.emplace<ActivationLayer>(Activation::kTanh, 16);
  s.emplace<Dense>(16, 3);
  const auto r = check(s, rng);
  EXPECT_TRUE(r.passed) << r.report();
}

// The local encoder's stack: constant channels appended to the input, periodic convolutions, a
// pointwise output convolution; checked like any layer (the constants carry no derivative).
TEST(Layers, ConstantChannelsAndAFullyConvolutionalStack) {
  Rng rng = testing::seeded_rng(509);
  ConstantChannels c(8, 2, 4);
  Matrix k = random_matrix(2, 4, rng);
  c.set_constants(k);
  Matrix x = random_matrix(8, 3, rng), y;
  c.forward(x, y);
  ASSERT_EQ(y.rows(), 16);
  EXPECT_EQ(y.topRows(8), x);
  EXPECT_EQ(y(8 + 4 * 1 + 2, 2), k(1, 2));  // channel 1, point 2
  EXPECT_THROW(c.set_constants(Matrix::Zero(4, 2)), InvalidArgument);
  const auto r0 = check(c, rng);
  EXPECT_TRUE(r0.passed) << r0.report();
  Sequential s;
  s.emplace<ConstantChannels>(8, 1, 4);
  s.emplace<PeriodicConv1d>(3, 4, 4, 3);
  s.emplace<ActivationLayer>(Activation::kSilu, 16);
  s.emplace<PeriodicConv1d>(4, 2, 4, 1);
  dynamic_cast<ConstantChannels&>(s.layer(0)).set_constants(random_matrix(1, 4, rng));
  const auto r = check(s, rng);
  EXPECT_TRUE(r.passed) << r.report();
}

TEST(Layers, CheckerCatchesAWrongGradient) {
  // A layer whose backward drops a factor: the checker must fail it.
  class Broken final : public Layer {
   public:
    std::string type() const override { return "broken"; }
    Index input_size() const override { return 3; }
    Index output_size() const override { return 3; }
    void forward(const Matrix& x, Matrix& y) override { x_ = x; y = x.array().square(); }
    void backward(const Matrix& dy, Matrix& dx, bool) override { dx = dy.cwiseProduct(x_); }  // missing 2
    void tangent(const Matrix& dx, Matrix& dy) const override { dy = 2.0 * dx.cwiseProduct(x_); }
   private:
    Matrix x_;
  } broken;
  Rng rng = testing::seeded_rng(508);
  const auto r = check(broken, rng);
  EXPECT_FALSE(r.passed) << r.report();
  EXPECT_GT(r.input_error, 0.1);
  EXPECT_GT(r.adjoint_error, 0.1);
}

TEST(Layers, BadConstructionIsAClearError) {
  EXPECT_THROW(PeriodicConv1d(1, 1, 8, 4), InvalidArgument);
  EXPECT_THROW(Dense(0, 3), InvalidArgument);
  Sequential s;
  s.emplace<Dense>(3, 4);
  EXPECT_THROW(s.emplace<Dense>(5, 2), InvalidArgument);
  EXPECT_THROW(activation_from_string("gelu"), InvalidArgument);
}

TEST(Parameters, LayoutIsContiguousAndNamed) {
  auto mlp = make_mlp(3, 4, 1, 2, Activation::kTanh);
  ParameterSet p;
  p.add("net", *mlp);
  p.bind();
  ASSERT_EQ(p.blocks().size(), 4u);
  EXPECT_EQ(p.blocks()[0].name, "net.0.dense.W");
  EXPECT_EQ(p.blocks()[1].name, "net.0.dense.b");
  EXPECT_EQ(p.blocks()[2].offset, 16);
  EXPECT_EQ(p.size(), 3 * 4 + 4 + 4 * 2 + 2);
  const Vector m = p.decay_mask();
  EXPECT_EQ(m.sum(), 12.0 + 8.0);
}

}  // namespace
}  // namespace varflow::nn
