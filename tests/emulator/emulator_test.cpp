// The stencil emulator: TL/AD/SOA conformance (both architectures), training reduces the one-step error, save / load round
// trip with checksum, and the step-3 gate refusing a faulty emulator.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "varflow/core/error.h"
#include "varflow/io/netcdf_guard.h"
#include "varflow/validation/analysis_comparison.h"
#include "varflow/validation/emulator_gate.h"
#include "varflow/emulator/product_layer.h"
#include "varflow/nn/gradient_check.h"
#include "varflow/emulator/stencil_emulator.h"
#include "varflow/model/lorenz96.h"
#include "varflow/testing/conformance.h"

namespace varflow {
namespace {

using emulator::StencilEmulator;
using emulator::StencilEmulatorConfig;

constexpr Index kGrid = 20;

StencilEmulatorConfig small_config() {
  StencilEmulatorConfig c;
  c.grid = kGrid;
  c.radius = 3;
  c.hidden = 12;
  c.layers = 1;
  return c;
}

Vector attractor_state(Rng& rng) {
  const Lorenz96 physics(kGrid);
  Vector x = Vector::Constant(kGrid, 8.0) + 0.01 * rng.normal_vector(kGrid);
  for (int k = 0; k < 300; ++k) physics.step(x);
  return x;
}

std::shared_ptr<const Model> random_emulator() {
  // The bounded (tanh) architecture: a random polynomial network diverges over a 50-step window.
  StencilEmulatorConfig c = small_config();
  c.architecture = "mlp";
  auto e = std::make_shared<StencilEmulator>(c);
  Rng rng(7);
  e->initialize(rng);
  e->set_normalization(2.3, 3.6, 0.5);
  // A read-out of ordinary (not small) size so that the Taylor test sees the nonlinearity.
  const auto& last = e->parameters().blocks()[e->parameters().blocks().size() - 2];
  e->parameters().values().segment(last.offset, last.size()) *= 10.0;
  return e;
}

struct Trained {
  Lorenz96 physics{kGrid};
  std::unique_ptr<StencilEmulator> emulator;
  emulator::TrajectoryPairs held_out;
  double untrained_error = 0.0;
  nn::TrainingSummary summary;
};

// One small emulator, trained once for the tests below (a few seconds).
const Trained& trained() {
  static const Trained instance = [] {
    Trained r;
    Rng rng = testing::seeded_rng(20261122);
    const Vector x0 = Vector::Constant(kGrid, 8.0);
    const auto pairs = emulator::simulate_pairs(r.physics, x0, 600, 500, 3, rng);
    r.held_out = emulator::simulate_pairs(r.physics, x0, 50, 500, 5, rng);
    r.emulator = std::make_unique<StencilEmulator>(small_config());
    r.emulator->initialize(rng);
    r.emulator->set_normalization(pairs.states.mean(), 3.6, 0.5);
    EmulatorGateOptions o;
    o.jacobian_states = 1;
    r.untrained_error = emulator_gate(*r.emulator, r.physics, r.held_out.states, rng, o).mean_forward_error;
    const nn::TrainingOptions t = emulator::fixed_budget_training(30, 1e-2);
    r.summary = emulator::train_emulator(*r.emulator, pairs, t, rng);
    return r;
  }();
  return instance;
}

// The trained (polynomial) emulator as a Model, not owned (the instance above lives to the end).
std::shared_ptr<const Model> trained_polynomial_emulator() {
  return std::shared_ptr<const Model>(std::shared_ptr<const Model>(), trained().emulator.get());
}

}  // namespace
}  // namespace varflow

namespace varflow::testing {
// The mlp architecture with random weights; the polynomial one trained (a random polynomial network
// diverges over the 50-step window).
INSTANTIATE_TEST_SUITE_P(
    Emulator, ModelConformance,
    ::testing::Values(ModelCase{"stencil_emulator", [] { return varflow::random_emulator(); },
                                [](Rng& rng) { return varflow::attractor_state(rng); }, 50},
                      ModelCase{"stencil_emulator_polynomial_trained",
                                [] { return varflow::trained_polynomial_emulator(); },
                                [](Rng& rng) { return varflow::attractor_state(rng); }, 50}),
    CaseName());
// The product layer (no parameters): inputs of order one, as in the emulator.
INSTANTIATE_TEST_SUITE_P(Emulator, LayerConformance,
                         ::testing::Values(LayerCase{"product", [] { return std::make_unique<emulator::ProductLayer>(3, 7); },
                                                     {}, 4}),
                         CaseName());
}  // namespace varflow::testing

namespace varflow {
namespace {

// The whole stencil network (both architectures) against finite differences, weights included.
TEST(StencilEmulator, NetworkGradientsMatchFiniteDifferences) {
  for (const char* arch : {"polynomial", "mlp"}) {
    Rng rng = testing::seeded_rng(6);
    StencilEmulatorConfig c = small_config();
    c.architecture = arch;
    StencilEmulator e(c);
    e.initialize(rng);
    const Matrix x = Matrix::Random(kGrid, 3);
    const auto r = nn::check_layer(e.network(), &e.parameters(), x, rng);
    EXPECT_TRUE(r.passed) << arch << ": " << r.report();
  }
}

// The network's second-order pass (both architectures) against central differences of its backward
// pass, and its symmetry; the emulator declares a second-order adjoint.
TEST(StencilEmulator, NetworkSecondOrderPassMatchesFiniteDifferences) {
  for (const char* arch : {"polynomial", "mlp"}) {
    Rng rng = testing::seeded_rng(8);
    StencilEmulatorConfig c = small_config();
    c.architecture = arch;
    StencilEmulator e(c);
    e.initialize(rng);
    EXPECT_TRUE(e.has_second_order()) << arch;
    const Matrix x = Matrix::Random(kGrid, 3);
    const auto r = nn::check_layer_second_order(e.network(), x, rng);
    std::cout << arch << ": " << r.report() << "\n";
    EXPECT_TRUE(r.passed) << arch << ": " << r.report();
  }
}

TEST(StencilEmulator, ConfigErrorsNameTheField) {
  StencilEmulatorConfig c = small_config();
  c.radius = 20;
  try {
    StencilEmulator e(c);
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("radius = 20"), std::string::npos) << e.what();
  }
  c = small_config();
  c.activation = "sigmoidish";
  EXPECT_THROW(StencilEmulator{c}, InvalidArgument);
}

TEST(StencilEmulator, TrainingReducesTheOneStepErrorSeveralFold) {
  const Trained& t = trained();
  ASSERT_TRUE(t.summary.ok()) << t.summary.message;
  Rng rng = testing::seeded_rng(3);
  EmulatorGateOptions o;
  o.jacobian_states = 2;
  const auto g = emulator_gate(*t.emulator, t.physics, t.held_out.states, rng, o);
  std::printf("untrained mean error %.4g\n%s", t.untrained_error, g.report().c_str());
  EXPECT_LT(g.mean_forward_error, 0.2 * t.untrained_error);
  EXPECT_TRUE(g.adjoint_passed);
}

TEST(StencilEmulator, SaveLoadRoundTripIsExactAndChecksummed) {
  const Trained& t = trained();
  const auto dir = std::filesystem::temp_directory_path() / "varflow_emulator_test";
  std::filesystem::create_directories(dir);
  const auto file = dir / "emulator.nc";
  t.emulator->save(file);
  const auto loaded = StencilEmulator::load(file);
  EXPECT_EQ(loaded->checksum(), t.emulator->checksum());
  EXPECT_EQ(loaded->name(), t.emulator->name());
  Vector a = t.held_out.states.col(0), b = a;
  t.emulator->step(a);
  loaded->step(b);
  EXPECT_EQ((a - b).norm(), 0.0);

  // A file whose weights were changed after writing is refused, naming the checksum.
  {
    std::ifstream in(file, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    in.close();
    ASSERT_GT(bytes.size(), 100u);
    // Flip a byte of one weight, found by its stored bytes (raw little-endian doubles).
    const Vector& w = t.emulator->parameters().values();
    Index largest = 0;  // a weight whose bytes occur nowhere else (not a zero bias)
    w.cwiseAbs().maxCoeff(&largest);
    const std::string weight(reinterpret_cast<const char*>(w.data() + largest), sizeof(double));
    const auto at = bytes.find(weight);
    ASSERT_NE(at, std::string::npos);
    bytes[at + 3] = static_cast<char>(bytes[at + 3] ^ 0x5a);
    std::ofstream out(dir / "corrupt.nc", std::ios::binary);
    out << bytes;
  }
  try {
    StencilEmulator::load(dir / "corrupt.nc");
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("checksum"), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(dir);
}

// The gate's logic, with the physics itself as a perfect "emulator" and a model with the wrong
// forcing as a faulty one.
// Model calls run concurrently on leased replicas of the network: step, TL, AD and SOA from several
// threads at once give the bits of the same calls made one after another, and a weight changed
// after the replicas exist reaches them (they share the owner's values).
TEST(StencilEmulator, ConcurrentModelCallsEqualSerialOnesBitForBit) {
  const Trained& t = trained();
  const StencilEmulator& e = *t.emulator;
  const Index calls = 64;
  Rng rng = testing::seeded_rng(77);
  std::vector<Vector> xs, dxs;
  for (Index k = 0; k < calls; ++k) {
    xs.push_back(t.held_out.states.col(k % t.held_out.states.cols()));
    dxs.push_back(rng.normal_vector(e.state_size()));
  }
  const auto run = [&](Index k) {
    Vector x = xs[k], dx = dxs[k], ax = dxs[k], soa;
    e.step_tangent(xs[k], dx);
    e.step_adjoint(xs[k], ax);
    e.step_second_order_adjoint(xs[k], dxs[k], dxs[(k + 1) % calls], soa);
    e.step(x);
    Vector all(4 * x.size());
    all << x, dx, ax, soa;
    return all;
  };
  std::vector<Vector> serial(calls), concurrent(calls);
  for (Index k = 0; k < calls; ++k) serial[k] = run(k);
  std::vector<std::thread> threads;
  for (Index t0 = 0; t0 < 4; ++t0) {
    threads.emplace_back([&, t0] {
      for (Index k = t0; k < calls; k += 4) concurrent[k] = run(k);
    });
  }
  for (auto& th : threads) th.join();
  for (Index k = 0; k < calls; ++k) EXPECT_EQ((serial[k] - concurrent[k]).norm(), 0.0) << "call " << k;

  auto copy = StencilEmulator::load([&] {
    const auto file = std::filesystem::temp_directory_path() / "varflow_emulator_concurrent.nc";
    e.save(file);
    return file;
  }());
  Vector before = xs[0];
  copy->step(before);  // creates a replica
  copy->parameters().values()[0] += 0.5;
  Vector after = xs[0];
  copy->step(after);
  EXPECT_GT((after - before).norm(), 0.0);
}

TEST(EmulatorGate, PassesThePhysicsAndRefusesAWrongModel) {
  Rng rng = testing::seeded_rng(11);
  const Lorenz96 physics(kGrid), wrong(kGrid, 8.4);
  Matrix states(kGrid, 20);
  for (Index j = 0; j < states.cols(); ++j) states.col(j) = attractor_state(rng);
  const auto good = emulator_gate(physics, physics, states, rng);
  EXPECT_TRUE(good.passed()) << good.report();
  EXPECT_LT(good.max_forward_error, 1e-14);
  EXPECT_LT(good.max_jacobian_difference, 1e-12);
  const auto bad = emulator_gate(wrong, physics, states, rng);
  EXPECT_FALSE(bad.forward_passed) << bad.report();
  EXPECT_GT(bad.forward_error, 0.01);
}

// A planted fault: corrupted weights of the trained emulator are refused at step 3, and the
// forward error grows.
TEST(EmulatorGate, RefusesCorruptedWeights) {
  const Trained& t = trained();
  Rng rng = testing::seeded_rng(13);
  auto copy = std::make_unique<StencilEmulator>(t.emulator->config());
  copy->set_normalization(t.emulator->x_mean(), t.emulator->x_std(), t.emulator->increment_std());
  copy->parameters().values() = t.emulator->parameters().values();
  EmulatorGateOptions o;
  o.jacobian_states = 2;
  const auto before = emulator_gate(*copy, t.physics, t.held_out.states, rng, o);
  // Corrupt the stencil layer's weights: 20% multiplicative noise.
  const auto& block = copy->parameters().blocks().front();
  auto values = copy->parameters().values();
  for (Index i = 0; i < block.size(); ++i) values[block.offset + i] *= 1.0 + 0.2 * rng.normal();
  const auto after = emulator_gate(*copy, t.physics, t.held_out.states, rng, o);
  EXPECT_FALSE(after.passed()) << after.report();
  EXPECT_FALSE(after.forward_passed);
  EXPECT_GT(after.mean_forward_error, 2.0 * before.mean_forward_error);
  EXPECT_TRUE(after.adjoint_passed);  // the fault is in the function, not in its derivatives
}

TEST(EmulatorGate, NonFiniteOutputFailsWithoutThrowing) {
  Rng rng = testing::seeded_rng(17);
  StencilEmulator e(small_config());
  e.initialize(rng);
  e.parameters().values().setConstant(std::numeric_limits<double>::quiet_NaN());
  Matrix states(kGrid, 3);
  for (Index j = 0; j < 3; ++j) states.col(j) = attractor_state(rng);
  EmulatorGateOptions o;
  o.jacobian_states = 1;
  const Lorenz96 physics(kGrid);
  EmulatorGateResult r;
  EXPECT_NO_THROW(r = emulator_gate(e, physics, states, rng, o));
  EXPECT_FALSE(r.passed());
  EXPECT_TRUE(std::isinf(r.forward_error));
}

}  // namespace
}  // namespace varflow

namespace varflow {
namespace {

AnalysisComparisonOptions small_comparison() {
  AnalysisComparisonOptions o;
  o.windows = 3;
  o.window.steps = 4;
  o.window.obs_every = 2;
  o.spinup = 300;
  return o;
}

// Step 4's comparison: the physics compared with itself agrees exactly; a model with a 10% error in
// twice the time step moves the analyses by more than one posterior standard deviation and is refused.
TEST(AnalysisComparison, AgreesWithItselfAndRefusesAWrongModel) {
  Rng rng = testing::seeded_rng(19);
  const auto physics = std::make_shared<Lorenz96>(kGrid);
  const auto same = compare_analyses(physics, physics, small_comparison(), rng);
  EXPECT_TRUE(same.passed()) << same.report();
  EXPECT_LT(std::abs(same.agreement.worst_difference.value), 1e-6);
  EXPECT_GT(same.physics_seconds, 0.0);
  EXPECT_GT(same.emulator_seconds, 0.0);
  const auto wrong = std::make_shared<Lorenz96>(kGrid, 8.0, 0.1);
  const auto bad = compare_analyses(physics, wrong, small_comparison(), rng);
  EXPECT_FALSE(bad.passed()) << bad.report();
}

TEST(AnalysisComparison, RunsTheSolverWithTheTrainedEmulator) {
  const Trained& t = trained();
  Rng rng = testing::seeded_rng(23);
  std::shared_ptr<const Model> physics = std::make_shared<Lorenz96>(kGrid);
  std::shared_ptr<const Model> emu(t.emulator.get(), [](const Model*) {});
  const auto c = compare_analyses(physics, emu, small_comparison(), rng);
  std::printf("%s", c.report().c_str());
  EXPECT_EQ(c.failed_solves, 0);
  EXPECT_EQ(c.agreement.events, 3);
  EXPECT_TRUE(std::isfinite(c.agreement.worst_difference.value));
}

TEST(AnalysisComparison, OptionErrorsNameTheField) {
  auto o = small_comparison();
  o.window.obs_every = 9;
  try {
    o.validate();
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("obs_every = 9"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace varflow
