// The promotion decision: runs the three gates and names the ones that failed.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "linear_gaussian.h"
#include "varflow/core/error.h"
#include "varflow/testing/conformance.h"
#include "varflow/validation/limit_text.h"
#include "varflow/validation/promotion.h"
#include "../test_messages.h"

namespace varflow {
namespace {

using test::Fault;

PromotionDecision decide(Fault f, Rng& rng) {
  auto candidate = std::make_shared<const test::Candidate>(f, rng);
  const auto in = test::make_inputs(candidate, rng);
  return decide_promotion(in.inputs, rng);
}

bool failed(const PromotionDecision& d, Gate g) {
  const auto f = d.failed_gates();
  return std::find(f.begin(), f.end(), g) != f.end();
}

TEST(Promotion, CorrectPosteriorIsPromoted) {
  // A correct posterior is refused with the false-alarm probability (about 2%, gate_rates_test):
  // require promotion in at least two of three independent runs.
  Rng rng = testing::seeded_rng(901);
  for (Fault f : {Fault::kNone, Fault::kApproximate}) {
    int promoted = 0;
    std::string reports;
    for (int k = 0; k < 3; ++k) {
      const PromotionDecision d = decide(f, rng);
      promoted += d.promote();
      reports += d.report();
      EXPECT_TRUE(d.adjoint_calibration.passed()) << d.adjoint_calibration.report();  // deterministic
      EXPECT_TRUE(d.agreement.passed()) << d.agreement.report();
    }
    EXPECT_GE(promoted, 2) << test::fault_name(f) << "\n" << reports;
  }
}

TEST(Promotion, EachFaultIsRefusedByItsGate) {
  Rng rng = testing::seeded_rng(902);
  const std::vector<std::pair<Fault, std::vector<Gate>>> cases = {
      {Fault::kStdHalf, {Gate::kPosteriorAgreement, Gate::kSimulationBasedCalibration}},
      {Fault::kStdDouble, {Gate::kPosteriorAgreement, Gate::kSimulationBasedCalibration}},
      {Fault::kMeanShift, {Gate::kPosteriorAgreement, Gate::kSimulationBasedCalibration}},
      {Fault::kPrior, {Gate::kSimulationBasedCalibration}},
      {Fault::kJacobianScaled, {Gate::kAdjointCalibration}},
      {Fault::kAdjointWrongSign, {Gate::kAdjointCalibration}},
      {Fault::kAdjointMissingTerm, {Gate::kAdjointCalibration}},
  };
  for (const auto& [fault, gates] : cases) {
    const PromotionDecision d = decide(fault, rng);
    EXPECT_FALSE(d.promote()) << test::fault_name(fault);
    EXPECT_NE(d.report().find("DO NOT PROMOTE"), std::string::npos);
    for (Gate g : gates) {
      EXPECT_TRUE(failed(d, g)) << test::fault_name(fault) << " passed " << to_string(g) << "\n" << d.report();
    }
  }
}

TEST(Promotion, JacobianFaultPassesTheOtherGates) {
  // A 10% Jacobian error leaves the held-out means within 0.1 sigma and the ranks nearly uniform:
  // only Jacobian probing sees it. This is why the adjoint-calibration gate exists.
  Rng rng = testing::seeded_rng(903);
  const PromotionDecision d = decide(Fault::kJacobianScaled, rng);
  EXPECT_TRUE(d.agreement.passed()) << d.agreement.report();
  EXPECT_FALSE(d.adjoint_calibration.passed());
  EXPECT_EQ(d.failed_gates().front(), Gate::kAdjointCalibration);
}

TEST(Promotion, ReportNamesEveryGate) {
  Rng rng = testing::seeded_rng(904);
  const std::string report = decide(Fault::kMeanShift, rng).report();
  EXPECT_NE(report.find("DO NOT PROMOTE"), std::string::npos);
  for (Gate g : {Gate::kPosteriorAgreement, Gate::kAdjointCalibration, Gate::kSimulationBasedCalibration}) {
    EXPECT_NE(report.find(to_string(g)), std::string::npos) << to_string(g);
    EXPECT_EQ(gate_from_string(to_string(g)), g);
  }
  EXPECT_THROW(gate_from_string("agreement"), InvalidArgument);
}

TEST(Promotion, NeedsEnoughSbcSimulations) {
  Rng rng = testing::seeded_rng(905);
  auto candidate = std::make_shared<const test::Candidate>(Fault::kNone, rng);
  const auto in = test::make_inputs(candidate, rng);
  PromotionOptions options;
  options.sbc.simulations = 100;  // valid for SBC itself (5 per bin), too few for a decision
  std::string error;
  EXPECT_NO_THROW(options.sbc.validate());
  error = test::message_of([&] { options.validate(); });
  EXPECT_NE(error, "(no exception)");
  EXPECT_NE(error.find("min_sbc_simulations"), std::string::npos) << error;
  EXPECT_THROW(decide_promotion(in.inputs, rng, options), InvalidArgument);
}

}  // namespace
}  // namespace varflow

namespace varflow {
namespace {

// Console lines say the value, the limit and the verdict, so that none reads as a contradiction.
TEST(LimitText, SaysValueLimitAndVerdict) {
  EXPECT_EQ(limit_text("probe error", 0.164, Limit::kBelow, 0.05), "probe error 0.164, must be < 0.05: FAIL");
  EXPECT_EQ(limit_text("probe error", 0.03, Limit::kBelow, 0.05), "probe error 0.03, must be < 0.05: pass");
  EXPECT_EQ(limit_text("max |d|", 1.0, Limit::kAtMost, 1.0), "max |d| 1, must be <= 1: pass");
  EXPECT_EQ(limit_text("min p", 0.01, Limit::kAbove, 0.01), "min p 0.01, must be > 0.01: FAIL");
  EXPECT_EQ(limit_text("contraction", 0.5, Limit::kAtLeast, 0.5), "contraction 0.5, must be >= 0.5: pass");
  EXPECT_EQ(limit_text("rho", std::nan(""), Limit::kBelow, 0.1), "rho nan, must be < 0.1: FAIL");
  EXPECT_EQ(band_text("spread", 0.93, 1.04, 0.8, 1.25), "spread 0.93..1.04, must be in [0.8, 1.25]: pass");
  EXPECT_EQ(band_text("spread", 0.7, 1.04, 0.8, 1.25), "spread 0.7..1.04, must be in [0.8, 1.25]: FAIL");
}

}  // namespace
}  // namespace varflow
