#include "varflow/experiment/experiment_config.h"

#include <gtest/gtest.h>

#include "varflow/core/error.h"
#include "test_messages.h"

namespace varflow {
namespace {

using test::message_of;

// The printed default parses back to the same config (and the same YAML).
TEST(ExperimentConfig, DefaultRoundTrips) {
  const std::string yaml = default_experiment_yaml();
  const ExperimentConfig c = parse_experiment_config(yaml, "default");
  EXPECT_EQ(to_yaml(c), to_yaml(default_experiment_config()));
  EXPECT_EQ(c.experiment.model->name(), "lorenz96(n=40, F=8, dt=0.05)");
  EXPECT_EQ(c.experiment.cycles, 100);
  EXPECT_EQ(c.experiment.obs_every_steps, 4);
  EXPECT_DOUBLE_EQ(c.experiment.obs_error_variance, 1.0);
  EXPECT_EQ(c.experiment.method, VarMethod::kIncremental4DVar);
  EXPECT_TRUE(c.experiment.observed_variables.empty());
  EXPECT_EQ(config_hash(yaml), config_hash(yaml));
  EXPECT_NE(config_hash(yaml), config_hash(yaml + " "));
  EXPECT_EQ(config_hash(yaml).size(), 16u);
}

TEST(ExperimentConfig, PartialConfigsKeepDefaults) {
  const ExperimentConfig c = parse_experiment_config(
      "model: {name: lorenz63}\nobservations: {variables: [0, 2], every_steps: 5}\n"
      "cycling: {window_steps: 10, cycles: 6, burn_in: 1}\nmethod: strong_4dvar\n",
      "t.yaml");
  EXPECT_EQ(c.experiment.model->state_size(), 3);
  EXPECT_DOUBLE_EQ(c.model.parameter("dt"), 0.01);
  EXPECT_EQ(c.experiment.observed_variables, (std::vector<Index>{0, 2}));
  EXPECT_EQ(c.experiment.method, VarMethod::kStrong4DVar);
  const ExperimentConfig again = parse_experiment_config(to_yaml(c), "again");
  EXPECT_EQ(to_yaml(again), to_yaml(c));
}

TEST(ExperimentConfig, LowRankPosteriorKeysReachTheSolverAndRoundTrip) {
  const ExperimentConfig c = parse_experiment_config(
      "method: strong_4dvar\nstrong: {posterior: low_rank, posterior_rank: 8, posterior_max_basis: 24}\n"
      "incremental: {posterior: low_rank, posterior_rank: 5, posterior_max_basis: 0}\n",
      "t.yaml");
  EXPECT_EQ(c.experiment.strong.low_rank.rank, 8);
  EXPECT_EQ(c.experiment.strong.low_rank.max_basis, 24);
  EXPECT_EQ(c.experiment.incremental.low_rank.rank, 5);
  EXPECT_EQ(c.experiment.incremental.low_rank.max_basis, 0);
  EXPECT_EQ(c.experiment.weak.low_rank.rank, LanczosEigenOptions{}.rank);
  const ExperimentConfig again = parse_experiment_config(to_yaml(c), "again");
  EXPECT_EQ(to_yaml(again), to_yaml(c));
  EXPECT_EQ(again.experiment.strong.low_rank.max_basis, 24);
  EXPECT_EQ(message_of([] { parse_experiment_config("strong: {posterior_rank: 8, posterior_max_basis: 9}\n", "t"); }),
            "config: strong.posterior_max_basis = 9 must be 0 (no restart) or at least strong.posterior_rank + 2 = 10");
  EXPECT_EQ(message_of([] { parse_experiment_config("weak: {posterior_rank: 0}\n", "t"); }).substr(0, 33),
            "config: weak.posterior_rank = 0 m");
}

TEST(ExperimentConfig, BadConfigsNameTheKeyAndValue) {
  EXPECT_EQ(message_of([] { parse_experiment_config("model:\n  n: 40\n  forcng: 8\n", "t"); }),
            "config: unknown key 'model.forcng' (expected one of: dt, forcing, n, name)");
  EXPECT_EQ(message_of([] { parse_experiment_config("cycling:\n  cycles: many\n", "t"); }),
            "config: cycling.cycles = 'many' is not an integer");
  EXPECT_EQ(message_of([] { parse_experiment_config("background:\n  variance: -1\n", "t"); }),
            "config: background.variance = -1 must be positive");
  EXPECT_EQ(message_of([] { parse_experiment_config("method: 4dvar\n", "t"); }),
            "config: method = '4dvar' is not one of: strong_4dvar, incremental_4dvar, weak_4dvar, 3dvar");
  EXPECT_EQ(message_of([] { parse_experiment_config("observations: {variables: [0, 40]}\n", "t"); }),
            "config: observations.variables[1] = 40 is outside [0, 40)");
  EXPECT_EQ(message_of([] { parse_experiment_config("observations: {variables: [3, 5, 3]}\n", "t"); }),
            "config: observations.variables[2] = 3 repeats observations.variables[0] (each variable is observed once)");
  EXPECT_EQ(message_of([] { parse_experiment_config("cycling: {cycles: 5, burn_in: 5}\n", "t"); }),
            "config: cycling.burn_in = 5 must be less than cycling.cycles = 5");
  EXPECT_EQ(message_of([] { parse_experiment_config("model: {name: lorenz63, n: 3}\n", "t"); }),
            "config: unknown key 'model.n' (expected one of: beta, dt, name, rho, sigma)");
  EXPECT_EQ(message_of([] { parse_experiment_config("colour: blue\n", "t"); }).substr(0, 30),
            "config: unknown key 'colour' (");
  EXPECT_EQ(message_of([] { parse_experiment_config("amortized: {validation: report.json}\n", "t"); }),
            "config: amortized.validation = 'report.json' needs amortized.model, the model it validates");
}

TEST(ExperimentConfig, AmortizedValidationRoundTrips) {
  const ExperimentConfig c =
      parse_experiment_config("amortized: {model: m.nc, validation: r/report.json}\n", "t.yaml");
  EXPECT_EQ(c.experiment.amortized.validation, "r/report.json");
  const ExperimentConfig again = parse_experiment_config(to_yaml(c), "again");
  EXPECT_EQ(again.experiment.amortized.validation, "r/report.json");
  EXPECT_EQ(to_yaml(again), to_yaml(c));
}

}  // namespace
}  // namespace varflow
