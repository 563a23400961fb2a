// A reduced model (closure) of a multi-scale physics in steps 3 and 4: with the coupling switched off
// (h = 0) the slow variables of two-scale Lorenz-96 evolve exactly as single-scale Lorenz-96, so that
// model run `m` steps at a time is an exact reduced model and must pass; with the coupling on, the
// same model (the truncated model, no closure) is refused.
#include <gtest/gtest.h>

#include <cmath>

#include "varflow/core/error.h"
#include "varflow/emulator/stencil_emulator.h"
#include "varflow/model/lorenz96.h"
#include "varflow/model/lorenz96_two_scale.h"
#include "varflow/testing/conformance.h"
#include "varflow/validation/analysis_comparison.h"
#include "varflow/validation/emulator_gate.h"

namespace varflow {
namespace {

constexpr Index kMultiple = 5;

// `m` steps of a model as one step; TL and AD through the intermediate states.
class MultiStep final : public Model {
 public:
  MultiStep(std::shared_ptr<const Model> inner, Index m) : inner_(std::move(inner)), m_(m) {}
  Index state_size() const override { return inner_->state_size(); }
  std::string name() const override { return format_message(inner_->name(), " x ", m_); }

 protected:
  void do_step(Vector& x) const override {
    for (Index k = 0; k < m_; ++k) inner_->step(x);
  }
  void do_step_tangent(const Vector& x, Vector& dx) const override {
    Vector s = x;
    for (Index k = 0; k < m_; ++k) {
      inner_->step_tangent(s, dx);
      inner_->step(s);
    }
  }
  void do_step_adjoint(const Vector& x, Vector& ax) const override {
    std::vector<Vector> s{x};
    for (Index k = 1; k < m_; ++k) {
      s.push_back(s.back());
      inner_->step(s.back());
    }
    for (Index k = m_ - 1; k >= 0; --k) inner_->step_adjoint(s[static_cast<std::size_t>(k)], ax);
  }

 private:
  std::shared_ptr<const Model> inner_;
  Index m_;
};

TwoScaleLorenz96Parameters small(double h) {
  TwoScaleLorenz96Parameters p;
  p.k = 8;
  p.j = 4;
  p.h = h;
  return p;
}

// Held-out physics states: spun up, then every 3 m steps.
Matrix held_out(const Model& physics, Index count, Rng& rng) {
  Vector x = Vector::Constant(physics.state_size(), 1.0) + 0.01 * rng.normal_vector(physics.state_size());
  const auto p = emulator::simulate_pairs(physics, x, count, 800, 3 * kMultiple, rng, kMultiple);
  return p.states;
}

TEST(ClosureGate, ExactReducedModelPassesAndTheTruncatedModelIsRefusedWhenCoupled) {
  Rng rng = testing::seeded_rng(31);
  const auto reduced = std::make_shared<MultiStep>(std::make_shared<Lorenz96>(8, 20.0, 0.0025), kMultiple);
  EmulatorGateOptions o;
  o.step_multiple = kMultiple;
  o.jacobian_states = 3;

  const TwoScaleLorenz96 uncoupled(small(0.0));
  const Matrix states0 = held_out(uncoupled, 30, rng);
  const auto exact = emulator_gate(*reduced, uncoupled, states0, rng, o);
  EXPECT_TRUE(exact.passed()) << exact.report();
  EXPECT_LT(exact.forward_error, 1e-12);
  EXPECT_LT(exact.max_jacobian_difference, 1e-10);

  const TwoScaleLorenz96 coupled;  // Arnold et al. 2013: J = 32, h = 1
  const Matrix states1 = held_out(coupled, 30, rng);
  const auto truncated = emulator_gate(*reduced, coupled, states1, rng, o);
  EXPECT_FALSE(truncated.forward_passed) << truncated.report();
  EXPECT_GT(truncated.forward_error, 0.01);
  // The same step-multiple without a reduced physics: sizes must agree.
  EXPECT_THROW(emulator_gate(*reduced, coupled, Matrix(states1.topRows(8)), rng, o), InvalidArgument);
}

TEST(ClosureGate, ForecastSkillIsZeroForTheExactModelAndGrowsForTheTruncatedOne) {
  Rng rng = testing::seeded_rng(37);
  const auto l96 = std::make_shared<Lorenz96>(8, 20.0, 0.0025);
  const MultiStep reduced(l96, kMultiple);
  const TwoScaleLorenz96 uncoupled(small(0.0)), coupled(small(1.0));
  const auto exact = forecast_skill(reduced, *l96, kMultiple, uncoupled, kMultiple, 0.0025,
                                    held_out(uncoupled, 20, rng), 4);
  ASSERT_EQ(exact.model_rmse.size(), 4u);
  EXPECT_NEAR(exact.lead_time.back(), 4 * kMultiple * 0.0025, 1e-15);
  for (std::size_t l = 0; l < 4; ++l) {
    EXPECT_LT(exact.model_rmse[l], 1e-12);
    EXPECT_LT(exact.baseline_rmse[l], 1e-12);
  }
  const auto skill = forecast_skill(reduced, *l96, kMultiple, coupled, kMultiple, 0.0025, held_out(coupled, 20, rng), 4);
  EXPECT_GT(skill.baseline_rmse[0], 1e-3);
  EXPECT_GT(skill.baseline_rmse[3], skill.baseline_rmse[0]);
  // The model is the baseline here: as good, not better by any factor above 1.
  EXPECT_TRUE(skill.model_better(1.0));
  EXPECT_FALSE(skill.model_better(1.01));
}

// Step 4 on the slow variables: with h = 0 the oracle's posterior of the slow variables (full model,
// slow and fast controlled) is the reduced model's, so they agree to solver precision; a reduced
// model with twice the time step is refused.
TEST(ClosureAnalyses, ReducedModelAgreesOnTheSlowMarginalAndAWrongOneIsRefused) {
  Rng rng = testing::seeded_rng(41);
  const auto physics = std::make_shared<TwoScaleLorenz96>(small(0.0));
  const Matrix states = held_out(*physics, 3, rng);
  WindowOptions wo;
  wo.resolved = 8;
  wo.step_multiple = kMultiple;
  wo.fast_background_sd = 0.1;
  const HeldOutWindows windows = make_held_out_windows(*physics, states, wo, rng);
  EXPECT_EQ(windows.observations.rows(), wo.slots() * 8);
  const OracleAnalyses oracle = solve_oracle(windows, physics);
  ASSERT_EQ(oracle.converged_count(), 3);
  const auto exact = std::make_shared<MultiStep>(std::make_shared<Lorenz96>(8, 20.0, 0.0025), kMultiple);
  const AnalysisComparison c = compare_with_oracle(windows, oracle, physics, exact);
  EXPECT_TRUE(c.passed()) << c.report();
  EXPECT_LT(std::abs(c.agreement.worst_difference.value), 1e-4) << c.report();
  EXPECT_EQ(c.physics_steps, 4 * kMultiple);
  EXPECT_EQ(c.model_steps, 4);
  EXPECT_EQ(c.physics_size, 8 * 5);
  EXPECT_EQ(c.model_size, 8);
  const auto wrong = std::make_shared<MultiStep>(std::make_shared<Lorenz96>(8, 20.0, 0.005), kMultiple);
  const AnalysisComparison bad = compare_with_oracle(windows, oracle, physics, wrong);
  EXPECT_FALSE(bad.passed()) << bad.report();
  // A model of neither size is refused, naming both.
  const auto other = std::make_shared<Lorenz96>(10, 20.0, 0.0025);
  EXPECT_THROW(compare_with_oracle(windows, oracle, physics, other), InvalidArgument);
}

TEST(ClosureAnalyses, StepMultipleNeedsAReducedModel) {
  Rng rng = testing::seeded_rng(43);
  const auto physics = std::make_shared<Lorenz96>(8, 8.0, 0.05);
  WindowOptions wo;
  wo.step_multiple = 3;  // resolved = 0: every component, so no reduced model
  try {
    make_held_out_windows(*physics, Matrix::Constant(8, 1, 8.0), wo, rng);
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("step_multiple = 3"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace varflow
