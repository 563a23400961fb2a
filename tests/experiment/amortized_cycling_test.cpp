// The amortized analysis in the cycle (TwinExperimentConfig::amortized): a Gaussian-head posterior of
// the background-prior window problem replaces 4D-Var in the cycles whose check passes; cycle 0 (which
// also assimilates the observation at the window start) falls back on its layout, an untrained
// network falls back on the chi-square check in every cycle (the run is then the 4D-Var run, bit for
// bit), and a model trained for another B, window or prior is refused by name.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "../test_messages.h"
#include "varflow/amortized/amortized_posterior.h"
#include "varflow/amortized/config.h"
#include "varflow/amortized/problems.h"
#include "varflow/core/error.h"
#include "varflow/experiment/twin_experiment.h"
#include "varflow/model/lorenz96.h"
#include "varflow/testing/conformance.h"

namespace varflow {
namespace {

constexpr Index kN = 12;

// Lorenz-96 n = 12, back-to-back 8-step windows, every variable observed every 4 steps, R = I,
// B = 0.4 I: each cycle after the first assimilates steps 4 and 8 of its window.
TwinExperimentConfig experiment(const std::string& model_file) {
  TwinExperimentConfig c = default_twin_experiment_config();
  c.model = std::make_shared<Lorenz96>(kN, 8.0, 0.05);
  c.truth_start = Vector::Constant(kN, 8.0);
  c.truth_start[kN / 2 - 1] += 0.01;
  c.cycles = 30;
  c.burn_in = 5;
  c.incremental.posterior_lanczos_vectors = 0;
  c.amortized.model = model_file;
  return c;
}

amortized::AmortizedSetup cycled_setup() {
  amortized::AmortizedSetup s = amortized::default_setup("lorenz96", amortized::HeadType::kGaussian);
  amortized::WindowProblemOptions& p = s.window_problem;
  p.model.parameters["n"] = kN;
  p.window = 8;
  p.obs_every = 4;
  p.obs_first = 4;
  p.obs_stride = 1;
  p.missing = 0.0;
  p.obs_noise = 1.0;
  p.prior = amortized::WindowPrior::kBackground;
  p.prior_sd = std::sqrt(0.4);
  // validation/amortized-cycling/train.yaml's network, smaller: the local predictor with the oracle
  // gain and derivative-informed training on 4D-Var labels.
  s.network.encoder.type = amortized::EncoderType::kLocal;
  s.network.encoder.channels = 24;
  s.network.encoder.conv_layers = 3;
  s.network.encoder.kernel = 5;
  s.network.gaussian.covariance = amortized::CovarianceForm::kDiagonal;
  s.network.linear_gain = amortized::LinearGain::kOracle;
  s.labels.pairs = 1000;
  s.training.schedule = nn::LearningRateSchedule::kCosine;
  s.training.batch_size = 64;
  s.training.learning_rate = 6e-3;
  return s;
}

// A model file of the setup's problem, trained for `epochs` (0: initialised only).
std::string model_file(const amortized::AmortizedSetup& s, Index epochs, const std::string& name) {
  Rng rng = testing::seeded_rng(2301);
  const amortized::WindowProblem problem(s.window_problem);
  amortized::AmortizedPosterior q(s.network, problem.shape(), rng, problem.name());
  if (epochs > 0) {
    nn::TrainingOptions t = s.training;
    t.epochs = epochs;
    q.train(problem, 1000, t, rng, {}, s.labels);
  }
  q.set_problem_definition(problem.definition());
  const auto file = std::filesystem::temp_directory_path() /
                    ("varflow_amortized_cycling_" + name + "_" + std::to_string(::getpid()) + ".nc");
  q.save(file);
  return file.string();
}

TEST(AmortizedCycling, TrainedModelReplaces4DVarWhereItsCheckPasses) {
  const std::string file = model_file(cycled_setup(), 30, "trained");
  const TwinExperimentConfig c = experiment(file);
  const TwinExperimentResult r = run_twin_experiment(c);
  TwinExperimentConfig var = c;
  var.amortized.model.clear();
  const TwinExperimentResult v = run_twin_experiment(var);
  // Resumed after 10 cycles from a checkpoint file: the same records, flags and reasons included.
  const TwinData data = simulate_twin_data(c);
  const std::filesystem::path checkpoint = file + ".checkpoint";
  TwinCheckpointing save;
  save.every = 10;
  save.save = [&](const TwinState& st) {
    if (st.cycles_done == 10) save_twin_state(checkpoint, st, "fingerprint");
  };
  (void)run_twin_experiment(c, data, {}, save);
  const TwinState state = load_twin_state(checkpoint, "fingerprint");
  TwinCheckpointing resume;
  resume.resume = &state;
  const TwinExperimentResult resumed = run_twin_experiment(c, data, {}, resume);
  std::filesystem::remove(checkpoint);
  std::filesystem::remove(file);
  ASSERT_EQ(resumed.cycles.size(), r.cycles.size());
  EXPECT_EQ(resumed.cycles_amortized, r.cycles_amortized);
  for (std::size_t i = 0; i < r.cycles.size(); ++i) {
    EXPECT_EQ(resumed.cycles[i].amortized, r.cycles[i].amortized) << "cycle " << i;
    EXPECT_EQ(resumed.cycles[i].fallback_reason, r.cycles[i].fallback_reason) << "cycle " << i;
    EXPECT_EQ(resumed.cycles[i].analysis, r.cycles[i].analysis) << "cycle " << i;
    EXPECT_EQ(resumed.cycles[i].spread, r.cycles[i].spread) << "cycle " << i;
  }
  ASSERT_EQ(r.cycles.size(), 30u);
  // Cycle 0 also assimilates step 0: not the model's layout.
  EXPECT_FALSE(r.cycles[0].amortized);
  EXPECT_EQ(r.cycles[0].fallback_reason.rfind("layout: observations at steps [0, 4, 8]", 0), 0u)
      << r.cycles[0].fallback_reason;
  Index chi2_fallbacks = 0;
  for (std::size_t i = 1; i < r.cycles.size(); ++i) {
    const CycleRecord& rec = r.cycles[i];
    if (rec.amortized) {
      EXPECT_TRUE(rec.fallback_reason.empty());
      // The check: 2 J(x_a) <= m + 4 sqrt(2 m), m = 2 x 12.
      const double m = static_cast<double>(rec.innovations.count);
      EXPECT_EQ(rec.innovations.count, 24);
      EXPECT_LE(rec.innovations.chi2_per_obs * m, m + 4.0 * std::sqrt(2.0 * m));
      EXPECT_TRUE(std::isfinite(rec.spread));
      EXPECT_GT(rec.spread, 0.0);
      EXPECT_LT(rec.spread, std::sqrt(0.4));  // the observations inform the state
    } else {
      EXPECT_EQ(rec.fallback_reason.rfind("chi2: ", 0), 0u) << rec.fallback_reason;
      ++chi2_fallbacks;
    }
  }
  std::cout << "amortized cycling: " << r.cycles_amortized << " of 30 cycles amortized (" << chi2_fallbacks
            << " chi2 fallbacks); filter RMSE " << r.mean_filter_rmse << " (4D-Var " << v.mean_filter_rmse
            << "), spread " << r.mean_spread << " (4D-Var " << v.mean_spread << "), chi2/m "
            << r.mean_innovations.chi2_per_obs << "\n"
            << r.summary() << "\n";
  EXPECT_GE(r.cycles_amortized, 20);
  EXPECT_NE(r.summary().find(std::to_string(r.cycles_amortized) + " of 30 cycles amortized"), std::string::npos);
  // The cycle stays on the truth (below the observation error, within 2x 4D-Var's filter RMSE) with
  // this small network and budget; validation/amortized-cycling's model at n = 40 comes within 15% of
  // 4D-Var (design/solvers.md; nightly).
  EXPECT_LT(r.mean_filter_rmse, 1.0);
  EXPECT_LT(r.mean_filter_rmse, 2.0 * v.mean_filter_rmse);
}

TEST(AmortizedCycling, UntrainedModelFallsBackEveryCycleToThe4DVarRun) {
  const std::string file = model_file(cycled_setup(), 0, "untrained");
  TwinExperimentConfig c = experiment(file);
  c.cycles = 8;
  c.burn_in = 1;
  const TwinExperimentResult r = run_twin_experiment(c);
  c.amortized.model.clear();
  const TwinExperimentResult v = run_twin_experiment(c);
  std::filesystem::remove(file);
  EXPECT_EQ(r.cycles_amortized, 0);
  for (std::size_t i = 0; i < r.cycles.size(); ++i) {
    EXPECT_FALSE(r.cycles[i].amortized);
    if (i > 0) {
      EXPECT_EQ(r.cycles[i].fallback_reason.rfind("chi2: ", 0), 0u) << r.cycles[i].fallback_reason;
    }
    EXPECT_EQ(r.cycles[i].analysis, v.cycles[i].analysis) << "cycle " << i;
  }
  EXPECT_EQ(r.mean_filter_rmse, v.mean_filter_rmse);
}

// amortized.validation: the run needs the varflow validate report of this very model (its
// checksum) with every gate passed; anything else is refused naming the key, the file and why.
TEST(AmortizedCycling, ValidationReportMustBeThisModelsAndHaveEveryGatePassed) {
  const std::string file = model_file(cycled_setup(), 0, "validated");
  const std::string checksum = amortized::AmortizedPosterior::load(file).checksum();
  const std::string report = file + ".report.json";
  const auto write = [&report](const std::string& text) { std::ofstream(report) << text; };
  const auto refusal = [&](const std::string& text) {
    write(text);
    TwinExperimentConfig c = experiment(file);
    c.cycles = 3;
    c.burn_in = 1;
    c.amortized.validation = report;
    return test::message_of<InvalidArgument>([&] { run_twin_experiment(c); });
  };
  const std::string head = R"({"format": "varflow_validation_report", "format_version": 1, "model": "m.nc", )";
  // This model's report, every gate passed: the run goes ahead.
  EXPECT_EQ(refusal(head + R"("model_checksum": ")" + checksum + R"(", "passed": true, "failed_gates": []})"), "(no exception)");
  const std::string failed =
      refusal(head + R"("model_checksum": ")" + checksum + R"(", "passed": false, "failed_gates": ["adjoint_calibration"]})");
  EXPECT_NE(failed.find("amortized.validation = '" + report + "': the model failed its gates (adjoint_calibration)"),
            std::string::npos)
      << failed;
  const std::string other = refusal(head + R"("model_checksum": "0123456789abcdef", "passed": true})");
  EXPECT_NE(other.find("is the report of the model with checksum 0123456789abcdef (m.nc), but amortized.model = '" +
                       file + "' has checksum " + checksum),
            std::string::npos)
      << other;
  EXPECT_NE(refusal(head + R"("passed": true})").find("has no model_checksum"), std::string::npos);
  EXPECT_NE(refusal(R"({"format": "something_else"})").find("is not a varflow validation report"), std::string::npos);
  EXPECT_NE(refusal("not json").find("is not JSON"), std::string::npos);
  EXPECT_NE(refusal(head + R"("model_checksum": 12, "passed": true})").find("is not a valid varflow validation report"),
            std::string::npos);
  std::filesystem::remove(report);
  TwinExperimentConfig c = experiment(file);
  c.amortized.validation = report;
  const std::string missing = test::message_of([&] { run_twin_experiment(c); });
  EXPECT_NE(missing.find("amortized.validation = '" + report + "': cannot be read"), std::string::npos) << missing;
  std::filesystem::remove(file);
}

TEST(AmortizedCycling, ModelOfAnotherSettingIsRefusedByName) {
  const std::string file = model_file(cycled_setup(), 0, "refused");
  amortized::AmortizedSetup gaussian = cycled_setup();
  gaussian.window_problem.prior = amortized::WindowPrior::kGaussian;
  const std::string gaussian_file = model_file(gaussian, 0, "gaussian");
  const auto refusal = [](const TwinExperimentConfig& c) { return test::message_of([&] { run_twin_experiment(c); }); };
  TwinExperimentConfig c = experiment(file);
  c.b_variance = 0.8;
  EXPECT_NE(refusal(c).find("trained with B = 0.4 I, but the experiment has background.covariance = scaled_identity "
                            "with background.variance = 0.8"),
            std::string::npos)
      << refusal(c);
  c = experiment(file);
  c.window_steps = 12;
  EXPECT_NE(refusal(c).find("trained on windows of 8 steps, but cycling.window_steps = 12"), std::string::npos)
      << refusal(c);
  c = experiment(file);
  c.model = std::make_shared<Lorenz96>(kN, 9.0, 0.05);
  EXPECT_NE(refusal(c).find("it was trained with model lorenz96"), std::string::npos) << refusal(c);
  c = experiment(gaussian_file);
  EXPECT_NE(refusal(c).find("background.prior = gaussian; the cycle needs"), std::string::npos) << refusal(c);
  c = experiment(file + ".missing");
  EXPECT_NE(refusal(c).find("amortized.model: model file"), std::string::npos) << refusal(c);
  c = experiment(file);
  c.amortized.check_sigmas = 0.0;
  EXPECT_NE(refusal(c).find("amortized.check_sigmas = 0 must be positive"), std::string::npos) << refusal(c);
  std::filesystem::remove(file);
  std::filesystem::remove(gaussian_file);
}

}  // namespace
}  // namespace varflow
