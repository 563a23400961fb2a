// Step 5 of the cycle: run_predictor_step on tiny sizes (trains, writes the model file, produces a
// decision), a predictor trained on a badly wrong model is refused, failures are statuses, and
// invalid options are named.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <sstream>

#include "../test_messages.h"
#include "varflow/amortized/amortized_posterior.h"
#include "varflow/core/error.h"
#include "varflow/cycle/predictor_step.h"
#include "varflow/model/lorenz96.h"
#include "varflow/nn/parameters.h"
#include "varflow/testing/conformance.h"

namespace varflow::cycle {
namespace {

struct SingleThread {
  int saved = nn::thread_count();
  SingleThread() { nn::set_thread_count(1); }
  ~SingleThread() { nn::set_thread_count(saved); }
};

// n = 8, a small conv encoder and Gaussian head, a few hundred pairs: a run takes about a second.
PredictorStepOptions tiny_options() {
  PredictorStepOptions o;
  o.problem.model.parameters["n"] = 8;
  o.problem.spinup = 200;
  o.setup.pairs = 3000;
  o.setup.training.epochs = 15;
  o.setup.training.learning_rate = 3e-3;
  o.setup.network.encoder.width = 32;
  o.setup.network.encoder.context = 16;
  o.setup.network.encoder.channels = 8;
  o.setup.network.gaussian.width = 32;
  o.validation.events = 6;
  o.validation.posterior_draws = 400;
  o.validation.jacobian_cases = 1;
  return o;
}

class PredictorStep : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("varflow_predictor_step_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
  SingleThread single_thread_;
};

TEST(PredictorStepResult, AFailedAdjointGateSuggestsLabelsOnlyWhenNoneWereUsed) {
  PredictorStepResult r;
  r.training_ok = true;
  r.validated = true;  // no Jacobian case: the adjoint gate fails
  ASSERT_FALSE(r.validation.decision.passed(Gate::kAdjointCalibration));
  EXPECT_NE(r.gate_line().find("to try: derivative labels (predictor.labels.pairs"), std::string::npos) << r.gate_line();
  r.labelled_pairs = 3000;
  EXPECT_EQ(r.gate_line().find("derivative labels"), std::string::npos) << r.gate_line();
  for (const char* key : {"predictor.labels.pairs", "predictor.training.epochs", "predictor.encoder.channels"}) {
    EXPECT_NE(r.gate_line().find(key), std::string::npos) << key << " in " << r.gate_line();
  }
}

TEST_F(PredictorStep, TrainsWritesTheModelAndDecides) {
  Rng rng = testing::seeded_rng(3101);
  std::ostringstream log;
  const auto file = dir_ / "predictor.nc";
  const PredictorStepResult r = run_predictor_step(nullptr, tiny_options(), rng, file, log);
  std::cout << r.gate_line() << "\n";
  ASSERT_TRUE(r.training_ok) << r.training_message;
  ASSERT_TRUE(r.validated);
  ASSERT_TRUE(std::filesystem::exists(file));
  // The file holds the model that was validated.
  const auto q = amortized::AmortizedPosterior::load(file);
  EXPECT_EQ(q.checksum(), r.model_checksum);
  EXPECT_EQ(q.problem(), "lorenz96");
  EXPECT_EQ(r.validation.decision.agreement.events, 6);
  EXPECT_EQ(r.validation.decision.adjoint_calibration.jacobians.size(), 1u);
  EXPECT_EQ(r.validation.decision.sbc.simulations, 200);
  EXPECT_NE(r.validation.oracle_description.find("exact prior"), std::string::npos) << r.validation.oracle_description;
  EXPECT_NE(r.validation.oracle_description.find("ExactObservationSensitivity"), std::string::npos)
      << r.validation.oracle_description;
  EXPECT_EQ(r.promoted(), r.validation.passed());
  for (const char* part : {"agreement ", "max |d| ", "must be <= 1", "max probe error ", "must be < 0.05", "rho ",
                           "must be < 0.1", "SBC ", "min p ", "min contraction "}) {
    EXPECT_NE(r.gate_line().find(part), std::string::npos) << part << " in " << r.gate_line();
  }
  EXPECT_GT(r.train_seconds, 0.0);
  EXPECT_GT(r.validate_seconds, 0.0);
  EXPECT_NE(log.str().find("step 5: wrote"), std::string::npos) << log.str();
}

// Pairs from Lorenz-96 with the forcing doubled (a badly wrong promoted model): the predictor
// learns the wrong posterior, which the gates against the physics refuse. SBC sees it at once (its
// pairs come from the physics: ranks far from uniform) while the same settings trained on the
// physics pass SBC; agreement is worse too.
TEST_F(PredictorStep, PredictorOfAWrongModelIsRefused) {
  const PredictorStepOptions o = tiny_options();
  std::ostringstream log;
  Rng r1 = testing::seeded_rng(3102);
  Rng r2 = r1;
  const auto right = run_predictor_step(nullptr, o, r1, dir_ / "right.nc", log);
  const auto wrong = run_predictor_step(std::make_shared<Lorenz96>(8, 16.0, o.problem.model.parameter("dt")), o, r2,
                                        dir_ / "wrong.nc", log);
  ASSERT_TRUE(right.validated && wrong.validated);
  const double d_right = std::abs(right.validation.decision.agreement.worst_difference.value);
  const double d_wrong = std::abs(wrong.validation.decision.agreement.worst_difference.value);
  std::cout << "physics pairs: " << right.gate_line() << "\nF = 16 pairs: " << wrong.gate_line() << "\n";
  EXPECT_FALSE(wrong.promoted());
  EXPECT_FALSE(wrong.validation.decision.passed(Gate::kSimulationBasedCalibration));
  EXPECT_LT(wrong.validation.decision.sbc.min_p_value, 1e-10);
  EXPECT_TRUE(right.validation.decision.passed(Gate::kSimulationBasedCalibration)) << right.gate_line();
  EXPECT_GT(d_wrong, d_right);
  // The oracle's simulator (held-out events, SBC pairs) is the physics, whatever trained the predictor.
  EXPECT_EQ(wrong.validation.problem_description.find("simulated with"), std::string::npos)
      << wrong.validation.problem_description;
}

TEST_F(PredictorStep, NonFiniteTrainingIsAStatusNotAnException) {
  PredictorStepOptions o = tiny_options();
  o.setup.training.learning_rate = 1e12;
  o.setup.training.clip_norm = 0.0;
  o.setup.training.epochs = 2;
  Rng rng = testing::seeded_rng(3103);
  std::ostringstream log;
  const auto file = dir_ / "nan.nc";
  PredictorStepResult r;
  ASSERT_NO_THROW(r = run_predictor_step(nullptr, o, rng, file, log));
  std::cout << r.gate_line() << "\n";
  EXPECT_FALSE(r.training_ok);
  EXPECT_FALSE(r.validated);
  EXPECT_FALSE(r.promoted());
  EXPECT_FALSE(std::filesystem::exists(file));
  EXPECT_NE(r.gate_line().find("training failed"), std::string::npos) << r.gate_line();
}

// A promoted model whose trajectory blows up (Lorenz-96 with a time step of 5: RK4 is unstable)
// cannot give pairs: a status naming the model, no exception, no file.
TEST_F(PredictorStep, FailingSimulationModelIsAStatus) {
  const PredictorStepOptions o = tiny_options();
  Rng rng = testing::seeded_rng(3104);
  std::ostringstream log;
  const auto file = dir_ / "blown.nc";
  PredictorStepResult r;
  ASSERT_NO_THROW(r = run_predictor_step(std::make_shared<Lorenz96>(8, 8.0, 5.0), o, rng, file, log));
  std::cout << r.gate_line() << "\n";
  EXPECT_FALSE(r.training_ok);
  EXPECT_FALSE(r.validated);
  EXPECT_FALSE(std::filesystem::exists(file));
  EXPECT_NE(r.gate_line().find("simulating pairs with lorenz96(n=8, F=8, dt=5) failed"), std::string::npos)
      << r.gate_line();
}

TEST_F(PredictorStep, InvalidOptionsAndModelsAreNamed) {
  std::ostringstream log;
  Rng rng(1);
  PredictorStepOptions o = tiny_options();
  o.problem.prior_sd = -1.0;
  EXPECT_NE(test::message_of([&] { o.validate(); }).find("PredictorStepOptions: problem: window problem: background.variance: standard deviation prior_sd = -1 must be positive"),
            std::string::npos)
      << test::message_of([&] { o.validate(); });
  o = tiny_options();
  o.setup.pairs = 3;
  EXPECT_NE(test::message_of([&] { o.validate(); }).find("setup.pairs = 3 must be >= 10"), std::string::npos);
  o = tiny_options();
  o.validation.map_difference_step = 0.0;
  EXPECT_NE(test::message_of([&] { o.validate(); }).find("validation: ValidationOptions: map_difference_step = 0"),
            std::string::npos)
      << test::message_of([&] { o.validate(); });
  o = tiny_options();
  const std::string wrong_size = test::message_of(
      [&] { run_predictor_step(std::make_shared<Lorenz96>(10, 8.0, 0.05), o, rng, dir_ / "x.nc", log); });
  EXPECT_NE(wrong_size.find("state size 10, but model lorenz96 has 8"), std::string::npos) << wrong_size;
  EXPECT_FALSE(std::filesystem::exists(dir_ / "x.nc"));
}

TEST(PredictorStepDefaults, AreTheCyclesObservationNetwork) {
  const PredictorStepOptions o;
  EXPECT_NO_THROW(o.validate());
  EXPECT_EQ(o.problem.model.parameter("n"), 40);
  EXPECT_EQ(o.problem.window, 4);
  EXPECT_EQ(o.problem.obs_every, 2);
  EXPECT_EQ(o.problem.missing, 0.0);
  EXPECT_EQ(o.problem.obs_noise, 1.0);
  EXPECT_EQ(o.problem.prior, amortized::WindowPrior::kGaussian);
  EXPECT_EQ(o.problem.prior_sd, 1.0);
  EXPECT_EQ(o.validation.window_jacobian, report::OracleJacobian::kExact);
  EXPECT_EQ(o.setup.network.head, amortized::HeadType::kGaussian);
  // Derivative-informed by default: every pair labelled, the oracle gain (design/cycle.md, "Step 5").
  EXPECT_EQ(o.setup.network.linear_gain, amortized::LinearGain::kOracle);
  EXPECT_EQ(o.setup.labels.pairs, o.setup.pairs);
}

}  // namespace
}  // namespace varflow::cycle
