// Every built-in layer through the LayerConformance suite (backward and tangent against central
// differences, relative error <= 1e-6 in double precision, GradientCheckTolerances; the dot-product
// test; refusal of wrong shapes), planted faults the checks must catch, and layer values.
#include <gtest/gtest.h>

#include <cmath>
#include <iostream>

#include "varflow/core/error.h"
#include "varflow/nn/gradient_check.h"
#include "varflow/nn/layers.h"
#include "varflow/nn/precision.h"
#include "varflow/testing/conformance.h"

namespace varflow::nn {
namespace {

Matrix random_matrix(Index rows, Index cols, Rng& rng, double scale = 1.0) {
  Matrix m(rows, cols);
  for (Index i = 0; i < m.size(); ++i) m.data()[i] = scale * rng.normal();
  return m;
}

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

// y = F(x) + W x + b: the value against the branch and the dense path computed separately.
TEST(Layers, LinearSkipValue) {
  Rng rng = testing::seeded_rng(508);
  LinearSkip skip(make_mlp(5, 8, 2, 3, Activation::kSilu));
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

// float32 products (nn/precision.h): every product of Dense and PeriodicConv1d (forward, backward
// with the weight gradient, tangent) agrees with float64 to float rounding, relative to the largest
// entry (depth <= 37 here: a few 1e-7), and does differ from it (the float path ran). The scope
// restores float64, whose results are bit for bit those before it.
TEST(Layers, Float32ProductsAgreeWithFloat64WithinFloatRounding) {
  ASSERT_EQ(product_precision(), ProductPrecision::kFloat64);
  Rng rng = testing::seeded_rng(506);
  Dense dense(37, 23);
  PeriodicConv1d conv(3, 5, 16, 5);
  for (Layer* layer : std::vector<Layer*>{&dense, &conv}) {
    ParameterSet params;
    params.add("l", *layer);
    params.bind();
    layer->initialize(rng);
    const Matrix x = random_matrix(layer->input_size(), 9, rng);
    const Matrix dy = random_matrix(layer->output_size(), 9, rng);
    struct Results {
      Matrix y, dx, tangent;
      Vector gradient;
    };
    const auto run = [&] {
      Results r;
      params.zero_gradients();
      layer->forward(x, r.y);
      layer->backward(dy, r.dx, true);
      layer->tangent(x, r.tangent);
      r.gradient = params.gradients();
      return r;
    };
    const Results before = run();
    Results single;
    {
      const ScopedProductPrecision scope(ProductPrecision::kFloat32);
      single = run();
    }
    EXPECT_EQ(product_precision(), ProductPrecision::kFloat64);
    const Results after = run();
    const auto relative = [](const auto& a, const auto& b) { return (a - b).cwiseAbs().maxCoeff() / b.cwiseAbs().maxCoeff(); };
    for (const auto& [name, got, want] : {std::tuple{"forward", relative(single.y, before.y), 0.0},
                                          std::tuple{"backward", relative(single.dx, before.dx), 0.0},
                                          std::tuple{"tangent", relative(single.tangent, before.tangent), 0.0},
                                          std::tuple{"weight gradient", relative(single.gradient, before.gradient), 0.0}}) {
      std::cout << layer->describe() << " " << name << ": float32 against float64 " << got << "\n";
      EXPECT_LT(got, 2e-6) << name;
      EXPECT_GT(got, want) << name << ": the float32 products were not used";
    }
    EXPECT_EQ(after.y, before.y);
    EXPECT_EQ(after.gradient, before.gradient);
  }
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
}

// Constant channels appended to the input (the local encoder's stack is checked by the suite).
TEST(Layers, ConstantChannelsValues) {
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
}

// Linear channels appended to the input (derivatives are checked by the suite).
TEST(Layers, LinearChannelsValues) {
  Rng rng = testing::seeded_rng(510);
  LinearChannels c(6, 1, 4);
  const Matrix a = random_matrix(4, 6, rng);
  c.set_map(a);
  Matrix x = random_matrix(6, 3, rng), y;
  c.forward(x, y);
  ASSERT_EQ(y.rows(), 10);
  EXPECT_EQ(y.topRows(6), x);
  EXPECT_NEAR(y(6 + 2, 1), a.row(2).dot(x.col(1)), 1e-14);  // point 2 of the channel, column 1
  EXPECT_THROW(c.set_map(Matrix::Zero(6, 4)), InvalidArgument);
  Matrix bad = a;
  bad(0, 0) = std::nan("");
  EXPECT_THROW(c.set_map(bad), InvalidArgument);
}

// Planted faults: y = x^2 elementwise with one wrong term. The suite's check (the structured result
// of testing::check_layer_case) must fail each.
class Square final : public Layer {
 public:
  enum class Fault {
    kNone,
    kBackwardSign,
    kBackwardFactor,
    kTangentSign,
    kSecondOrderFactor,   // the second-order term a dx without its factor 2
    kSecondOrderDropsDa,  // da not propagated
    kSecondOrderCross,    // an extra, asymmetric cross term between components 0 and 1
  };
  explicit Square(Fault fault) : fault_(fault) {}
  std::string type() const override { return "square"; }
  Index input_size() const override { return 3; }
  Index output_size() const override { return 3; }
  bool has_second_order() const override { return true; }

 protected:
  void do_forward(const Matrix& x, Matrix& y) override {
    x_ = x;
    y = x.array().square();
  }
  void do_backward(const Matrix& dy, Matrix& dx, bool) override {
    dx = 2.0 * dy.cwiseProduct(x_);
    if (fault_ == Fault::kBackwardSign) dx.row(1) *= -1.0;  // one component with the wrong sign
    if (fault_ == Fault::kBackwardFactor) dx = dy.cwiseProduct(x_);  // missing factor 2
  }
  void do_tangent(const Matrix& dx, Matrix& dy) const override {
    dy = 2.0 * dx.cwiseProduct(x_);
    if (fault_ == Fault::kTangentSign) dy.row(2) *= -1.0;
  }
  // a_in = 2 x a, da_in = 2 x da + 2 a dx.
  void do_second_order_backward(const Matrix& dx, const Matrix& a, const Matrix& da, Matrix& a_in,
                                Matrix& da_in) const override {
    a_in = 2.0 * a.cwiseProduct(x_);
    da_in = 2.0 * da.cwiseProduct(x_) + 2.0 * a.cwiseProduct(dx);
    if (fault_ == Fault::kSecondOrderFactor) da_in = 2.0 * da.cwiseProduct(x_) + a.cwiseProduct(dx);
    if (fault_ == Fault::kSecondOrderDropsDa) da_in = 2.0 * a.cwiseProduct(dx);
    if (fault_ == Fault::kSecondOrderCross) da_in.row(0) += a.row(0).cwiseProduct(dx.row(1));
  }

 private:
  Fault fault_;
  Matrix x_;
};

// A linear layer without a second-order pass (the default refusal).
class ScaledByTwo final : public Layer {
 public:
  std::string type() const override { return "scaled_by_two"; }
  Index input_size() const override { return 2; }
  Index output_size() const override { return 2; }

 protected:
  void do_forward(const Matrix& x, Matrix& y) override { y = 2.0 * x; }
  void do_backward(const Matrix& dy, Matrix& dx, bool) override { dx = 2.0 * dy; }
  void do_tangent(const Matrix& dx, Matrix& dy) const override { dy = 2.0 * dx; }
};

testing::LayerCase square_case(Square::Fault fault) {
  return {"square", [fault] { return std::make_unique<Square>(fault); }};
}

TEST(Layers, TheChecksPassAnHonestLayer) {
  Rng rng = testing::seeded_rng(510);
  const auto r = testing::check_layer_case(square_case(Square::Fault::kNone), rng);
  EXPECT_TRUE(r.passed) << r.report();
}

TEST(Layers, TheSecondOrderCheckPassesAnHonestLayer) {
  Rng rng = testing::seeded_rng(512);
  const auto r = testing::check_layer_second_order_case(square_case(Square::Fault::kNone), rng);
  EXPECT_TRUE(r.passed) << r.report();
}

TEST(Layers, SecondOrderPassesWithAWrongTermFailTheCheck) {
  struct Planted {
    Square::Fault fault;
    const char* name;
    double SecondOrderCheckResult::*error;  // the measure that must see it
  };
  for (const Planted& p : {Planted{Square::Fault::kSecondOrderFactor, "factor", &SecondOrderCheckResult::second_order_error},
                           Planted{Square::Fault::kSecondOrderDropsDa, "drops da", &SecondOrderCheckResult::adjoint_error},
                           Planted{Square::Fault::kSecondOrderCross, "cross term", &SecondOrderCheckResult::symmetry_error}}) {
    Rng rng = testing::seeded_rng(513);
    const auto r = testing::check_layer_second_order_case(square_case(p.fault), rng);
    std::cout << "planted second-order fault (" << p.name << "): " << r.report() << "\n";
    EXPECT_FALSE(r.passed) << p.name << ": " << r.report();
    EXPECT_GT(r.*p.error, 1e-3) << p.name << ": " << r.report();
  }
}

TEST(Layers, ALayerWithoutASecondOrderPassRefusesIt) {
  ScaledByTwo layer;
  Matrix y, a_in, da_in;
  layer.forward(Matrix::Ones(2, 3), y);
  try {
    layer.second_order_backward(Matrix::Ones(2, 3), y, y, a_in, da_in);
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("scaled_by_two layer (2 -> 2): has no second-order pass"), std::string::npos)
        << e.what();
  }
  Sequential s;
  s.emplace<Dense>(2, 2);
  s.add(std::make_unique<ScaledByTwo>());
  EXPECT_FALSE(s.has_second_order());
}

TEST(Layers, ABackwardWithOneWrongSignFailsTheChecks) {
  Rng rng = testing::seeded_rng(511);
  const auto r = testing::check_layer_case(square_case(Square::Fault::kBackwardSign), rng);
  std::cout << "planted kBackwardSign: " << r.report() << "\n";
  EXPECT_FALSE(r.passed) << r.report();
  EXPECT_GT(r.input_error, 0.1) << r.report();
  EXPECT_GT(r.adjoint_error, 1e-3) << r.report();
  EXPECT_LE(r.tangent_error, 1e-6) << "the tangent is right: " << r.report();
}

TEST(Layers, ABackwardMissingAFactorFailsTheChecks) {
  Rng rng = testing::seeded_rng(508);
  const auto r = testing::check_layer_case(square_case(Square::Fault::kBackwardFactor), rng);
  std::cout << "planted kBackwardFactor: " << r.report() << "\n";
  EXPECT_FALSE(r.passed) << r.report();
  EXPECT_GT(r.input_error, 0.1);
  EXPECT_GT(r.adjoint_error, 0.1);
}

TEST(Layers, ATangentWithOneWrongSignFailsTheChecks) {
  Rng rng = testing::seeded_rng(512);
  const auto r = testing::check_layer_case(square_case(Square::Fault::kTangentSign), rng);
  std::cout << "planted kTangentSign: " << r.report() << "\n";
  EXPECT_FALSE(r.passed) << r.report();
  EXPECT_GT(r.tangent_error, 0.1) << r.report();
  EXPECT_GT(r.adjoint_error, 1e-3) << r.report();
  EXPECT_LE(r.input_error, 1e-6) << "the backward pass is right: " << r.report();
}

// Every layer refuses inputs of the wrong shape (the checked entry points of Layer), naming it.
TEST(Layers, WrongShapesAreAClearError) {
  Dense d(7, 4);
  Matrix y, dx;
  try {
    d.forward(Matrix::Zero(6, 2), y);
    FAIL() << "accepted 6 rows";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("dense layer (7 -> 4): rows of x = 6 must equal its input size 7"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(d.backward(Matrix::Zero(4, 2), dx), InvalidArgument) << "backward before any forward";
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

// ---- every built-in layer through the conformance suite --------------------------------------------

Matrix scaled_normal(Rng& rng, Index rows, Index cols, double scale) { return random_matrix(rows, cols, rng, scale); }

// Observations with missing values (NaN) for the mask channels: the derivative at a missing value
// is zero, and a central difference there sees no change (NaN +- h stays missing).
Matrix with_missing(Rng& rng, Index rows, Index cols) {
  Matrix x = random_matrix(rows, cols, rng);
  x(1, 0) = std::nan("");
  x(rows - 2, cols - 1) = std::nan("");
  return x;
}

testing::LayerCase activation_case(Activation a) {
  return {"activation_" + to_string(a), [a] { return std::make_unique<ActivationLayer>(a, 6); },
          [](Rng& rng, Index rows, Index cols) { return scaled_normal(rng, rows, cols, 2.0); }};
}

// Constant channels with fixed random constants, alone or in the local encoder's stack.
std::unique_ptr<Layer> constant_channels(Index in, Index channels, Index grid, std::uint64_t seed) {
  auto c = std::make_unique<ConstantChannels>(in, channels, grid);
  Rng rng(seed);
  c->set_constants(random_matrix(channels, grid, rng));
  return c;
}

// Linear channels with a fixed random map.
std::unique_ptr<Layer> linear_channels(Index in, Index channels, Index grid, std::uint64_t seed) {
  auto c = std::make_unique<LinearChannels>(in, channels, grid);
  Rng rng(seed);
  c->set_map(random_matrix(channels * grid, in, rng));
  return c;
}

std::vector<testing::LayerCase> builtin_layers() {
  std::vector<testing::LayerCase> cases = {
      {"dense", [] { return std::make_unique<Dense>(7, 4); }},
      {"mlp", [] { return make_mlp(5, 8, 2, 3, Activation::kTanh); }},
      {"residual_mlp", [] { return make_residual_mlp(4, 6, 2, 3, Activation::kSilu); }},
      {"linear_skip", [] { return std::make_unique<LinearSkip>(make_mlp(5, 8, 2, 3, Activation::kSilu)); }},
      // Kernel wider than half the grid: wrap-around on both sides.
      {"periodic_conv", [] { return std::make_unique<PeriodicConv1d>(3, 4, 7, 5); }},
      {"mask_channels", [] { return std::make_unique<MaskChannels>(2, 4); }},
      {"mask_channels_missing", [] { return std::make_unique<MaskChannels>(2, 4); }, with_missing},
      {"constant_channels", [] { return constant_channels(8, 2, 4, 11); }},
      {"linear_channels", [] { return linear_channels(8, 2, 4, 13); }},
      {"conv_encoder",
       [] {
         auto s = std::make_unique<Sequential>();
         s->emplace<PeriodicConv1d>(2, 4, 8, 3);
         s->emplace<ActivationLayer>(Activation::kSilu, 32);
         s->emplace<PeriodicConv1d>(4, 2, 8, 3);
         s->emplace<ActivationLayer>(Activation::kTanh, 16);
         s->emplace<Dense>(16, 3);
         return s;
       }},
      // The local encoder's stack: constant channels, periodic convolutions, a pointwise output
      // convolution (the constants carry no derivative).
      {"local_encoder_stack",
       [] {
         auto s = std::make_unique<Sequential>();
         s->add(constant_channels(8, 1, 4, 12));
         s->emplace<PeriodicConv1d>(3, 4, 4, 3);
         s->emplace<ActivationLayer>(Activation::kSilu, 16);
         s->emplace<PeriodicConv1d>(4, 2, 4, 1);
         return s;
       }},
  };
  for (Activation a : {Activation::kIdentity, Activation::kTanh, Activation::kSilu, Activation::kRelu,
                       Activation::kSoftplus}) {
    cases.push_back(activation_case(a));
  }
  return cases;
}

}  // namespace

using testing::LayerConformance;
INSTANTIATE_TEST_SUITE_P(Builtin, LayerConformance, ::testing::ValuesIn(builtin_layers()), testing::CaseName());

}  // namespace varflow::nn
