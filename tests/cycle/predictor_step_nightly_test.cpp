// Step 5 with its default settings on physics pairs and labels (the 48-channel local predictor with the
// oracle gain, every pair labelled, 40 epochs; about 7 minutes on one thread; label nightly). Measured
// on seed 1 (design/cycle.md, "Step 5"): agreement and SBC pass; adjoint calibration refuses it, one
// case's probe maximum 0.060 against 0.05 (the cycle's own run of seed 1, on the emulator's pairs, is
// promoted, and 60 epochs promote physics seeds 1-5). This test holds the gates that pass and prints
// the full line and the times (speed is measured by varflow_predictor_bench, not asserted here).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "varflow/cycle/predictor_step.h"
#include "varflow/nn/trainer.h"
#include "varflow/testing/conformance.h"

namespace varflow::cycle {
namespace {

TEST(PredictorStepNightly, DefaultsPassAgreementAndSbc) {
  if (std::getenv("VARFLOW_NIGHTLY") == nullptr) GTEST_SKIP() << "long run: set VARFLOW_NIGHTLY=1";
  const int saved = nn::thread_count();
  nn::set_thread_count(1);
  Rng rng = testing::seeded_rng(1);
  const auto file =
      std::filesystem::temp_directory_path() / ("varflow_predictor_nightly_" + std::to_string(::getpid()) + ".nc");
  const PredictorStepResult r = run_predictor_step(nullptr, PredictorStepOptions{}, rng, file, std::cout);
  nn::set_thread_count(saved);
  std::filesystem::remove(file);
  std::cout << "train " << r.train_seconds << " s, validate " << r.validate_seconds << " s\n" << r.gate_line() << "\n";
  ASSERT_TRUE(r.training_ok) << r.training_message;
  EXPECT_TRUE(r.validation.decision.passed(Gate::kPosteriorAgreement)) << r.gate_line();
  EXPECT_TRUE(r.validation.decision.passed(Gate::kSimulationBasedCalibration)) << r.gate_line();
}

}  // namespace
}  // namespace varflow::cycle
