// The full-size Lorenz-96 emulator (n = 40, F = 8, dt = 0.05): trained on a physics trajectory, it must
// pass the step-3 gate (relative one-step error < 0.01, Jacobian operator-norm difference < 0.05,
// TL/AD tests) on held-out states, and its 4D-Var analyses must agree with the physics ones within
// one physics posterior sigma (step 4). Prints the measured numbers quoted in design/cycle.md.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>

#include "varflow/validation/analysis_comparison.h"
#include "varflow/validation/emulator_gate.h"
#include "varflow/emulator/stencil_emulator.h"
#include "varflow/model/lorenz96.h"
#include "varflow/testing/conformance.h"

namespace varflow {
namespace {

TEST(EmulatorNightly, Lorenz96EmulatorPassesStepsThreeAndFour) {
  Rng rng = testing::seeded_rng(42);
  const auto physics = std::make_shared<Lorenz96>(40, 8.0, 0.05);
  const Vector x0 = Vector::Constant(40, 8.0);
  const auto pairs = emulator::simulate_pairs(*physics, x0, 6000, 1000, 5, rng);
  const auto held_out = emulator::simulate_pairs(*physics, x0, 200, 1000, 7, rng);
  emulator::StencilEmulatorConfig c;
  c.hidden = 16;
  c.radius = 4;
  auto e = std::make_shared<emulator::StencilEmulator>(c);
  e->initialize(rng);
  const nn::TrainingOptions t = emulator::fixed_budget_training(150, 1e-2);
  const auto start = std::chrono::steady_clock::now();
  const auto summary = emulator::train_emulator(*e, pairs, t, rng);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%s\ntraining: %.1f s\n", summary.brief_report().c_str(), seconds);
  ASSERT_TRUE(summary.ok()) << summary.message;

  const auto gate = emulator_gate(*e, *physics, held_out.states, rng);
  std::printf("%s", gate.report().c_str());
  EXPECT_TRUE(gate.passed());

  AnalysisComparisonOptions o;
  o.windows = 10;
  const auto cmp = compare_analyses(physics, e, o, rng);
  std::printf("%s", cmp.report().c_str());
  EXPECT_TRUE(cmp.passed());
}

}  // namespace
}  // namespace varflow
