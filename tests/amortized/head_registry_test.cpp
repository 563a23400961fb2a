// The head registry: the built-in heads by name, the problem defaults and configuration checks that
// ask it, and a head registered from outside the library (tests/amortized/toy_head.h) with an option
// of its own, trained, saved and loaded like a built-in one.
#include <gtest/gtest.h>

#include <filesystem>
#include <unistd.h>

#include "../test_messages.h"
#include "toy_head.h"
#include "varflow/amortized/amortized_posterior.h"
#include "varflow/core/error.h"
#include "varflow/posterior/posterior.h"
#include "varflow/testing/conformance.h"

namespace varflow::amortized {
namespace {

void expect_invalid(const std::function<void()>& call, const std::string& fragment) {
  const std::string message = varflow::test::message_of<InvalidArgument>(call);
  EXPECT_NE(message.find(fragment), std::string::npos) << message;
}

TEST(HeadRegistry, BuiltInHeadsByName) {
  const std::vector<std::string> names = head_names();
  ASSERT_GE(names.size(), 3u);
  EXPECT_EQ(std::vector<std::string>(names.begin(), names.begin() + 3),
            (std::vector<std::string>{"flow", "score", "gaussian"}));
  EXPECT_EQ(head_from_string("score"), HeadType::kScore);
  EXPECT_EQ(to_string(head_from_string("gaussian")), "gaussian");
  EXPECT_EQ(HeadType(), HeadType::kFlow);
  expect_invalid([] { head_from_string("kernel"); }, "head = 'kernel' is not one of: flow, score, gaussian");
  for (const char* name : {"flow", "score", "gaussian"}) {
    AmortizedConfig c;
    c.head = head_from_string(name);
    c.encoder.context = 3;
    const auto head = make_head(c, 2);
    EXPECT_EQ(head->type(), c.head);
    EXPECT_EQ(head->context_size(), 3);
  }
}

// The head-specific defaults of the built-in problems, now held by the heads' registrations.
TEST(HeadRegistry, ProblemDefaultsPerHead) {
  const auto two_moons = [](HeadType h) { return default_setup("two-moons", h); };
  EXPECT_EQ(two_moons(HeadType::kFlow).network.mean_samples, 1000);
  EXPECT_EQ(two_moons(HeadType::kScore).network.mean_samples, 256);
  // Training length and batch size come from the budget for every head (design/amortized.md).
  for (const HeadType h : {HeadType::kGaussian, HeadType::kFlow, HeadType::kScore}) {
    EXPECT_EQ(two_moons(h).training.schedule, nn::LearningRateSchedule::kPlateau);
    EXPECT_EQ(two_moons(h).training.batch_size, 0);
    EXPECT_EQ(two_moons(h).training.epochs, nn::TrainingOptions{}.epochs);
  }
  const auto linear = [](HeadType h) { return default_setup("linear-gaussian", h); };
  EXPECT_EQ(linear(HeadType::kGaussian).labels.pairs, 30000);
  EXPECT_EQ(linear(HeadType::kGaussian).labels.probes, 2);
  EXPECT_FALSE(linear(HeadType::kGaussian).network.encoder.linear_skip);
  EXPECT_EQ(linear(HeadType::kFlow).labels.pairs, 6000);
  EXPECT_EQ(linear(HeadType::kFlow).labels.draws, 2);
  EXPECT_TRUE(linear(HeadType::kFlow).network.encoder.linear_skip);
  EXPECT_EQ(linear(HeadType::kScore).labels.pairs, 30000);
  EXPECT_EQ(linear(HeadType::kScore).network.score.backbone, ScoreBackbone::kGaussian);
  EXPECT_EQ(linear(HeadType::kScore).network.linear_gain, LinearGain::kOracle);
  EXPECT_EQ(default_setup("two-moons", HeadType::kScore).labels.pairs, 0);
  EXPECT_EQ(linear(HeadType::kScore).network.mean_samples, 256);
  EXPECT_EQ(linear(HeadType::kFlow).network.mean_samples, 1000);
  for (HeadType h : {HeadType::kFlow, HeadType::kScore, HeadType::kGaussian}) {
    EXPECT_EQ(default_setup("lorenz96", h).network.mean_samples, 200) << to_string(h);
    EXPECT_EQ(default_setup("lorenz96", h).training.learning_rate, 1e-3) << to_string(h);
  }
}

// Whether the configured head can train on derivative labels is asked of the head (before any label
// is computed); the score head's answer depends on its backbone and names the key.
TEST(HeadRegistry, LabelSupportIsTheConfiguredHeadsAnswer) {
  AmortizedConfig c;
  LabelOptions labels;
  labels.pairs = 10;
  c.head = HeadType::kGaussian;
  EXPECT_NO_THROW(check_labels_supported(c, labels, 3));
  c.head = HeadType::kFlow;
  EXPECT_NO_THROW(check_labels_supported(c, labels, 3));
  c.head = HeadType::kScore;
  expect_invalid([&] { check_labels_supported(c, labels, 3); }, "needs score.backbone: gaussian");
  c.score.backbone = ScoreBackbone::kGaussian;
  EXPECT_NO_THROW(check_labels_supported(c, labels, 3));
  // Variance labels: only a head whose marginal variances are a map of the context.
  labels.variance_weight = 1.0;
  expect_invalid([&] { check_labels_supported(c, labels, 3); }, "variance labels (labels.variance_weight > 0)");
  c.head = HeadType::kFlow;
  expect_invalid([&] { check_labels_supported(c, labels, 3); }, "need a head whose marginal variances");
  c.head = HeadType::kGaussian;
  EXPECT_NO_THROW(check_labels_supported(c, labels, 3));
  labels.pairs = 0;  // no labels at all: nothing to refuse
  c.head = HeadType::kFlow;
  EXPECT_NO_THROW(check_labels_supported(c, labels, 3));
}

// A head's own keys are checked only when it is the configured head.
TEST(HeadRegistry, ValidationAsksTheConfiguredHead) {
  ProblemShape shape{2, 1, 1, 0};
  AmortizedConfig c;
  c.flow.bins = 1;
  c.head = HeadType::kGaussian;
  EXPECT_NO_THROW(c.validate(shape));
  c.head = HeadType::kFlow;
  expect_invalid([&] { c.validate(shape); }, "AmortizedConfig: flow.bins = 1 must be in [2, 64]");
  c.flow.bins = 8;
  c.head = HeadType::kScore;
  c.score.t_min = 0.7;
  expect_invalid([&] { c.validate(shape); }, "score.t_min = 0.7 must be in (0, 0.5)");
  c.score.t_min = 1e-3;
  c.score.log_sigma_fraction = 1.5;
  expect_invalid([&] { c.validate(shape); }, "score.log_sigma_fraction = 1.5 must be in [0, 1]");
  c.score.log_sigma_fraction = 0.5;
  c.score.grid_power = 0.5;
  expect_invalid([&] { c.validate(shape); }, "score.grid_power = 0.5 must be in [1, 4]");
}

TEST(HeadRegistry, AUserHeadWithAnOptionOfItsOwn) {
  const HeadType toy = test::toy_head_type();
  EXPECT_EQ(to_string(toy), "toy");
  EXPECT_EQ(head_from_string("toy"), toy);
  EXPECT_EQ(head_names().back(), "toy");
  AmortizedSetup s = default_setup("linear-gaussian", toy);  // no defaults of its own
  EXPECT_EQ(s.network.head, toy);
  EXPECT_NE(config_text(s.network).find("toy.scale: 0.5\n"), std::string::npos) << config_text(s.network);
  EXPECT_EQ(config_text(AmortizedConfig{}).find("toy"), std::string::npos) << "other heads' texts do not change";
  apply_entry(s, "head", "toy");
  apply_entry(s, "toy.scale", "0.25");
  EXPECT_EQ(entry_value(s, "toy.scale"), "0.25");
  EXPECT_EQ(head_option_number(s.network, "toy.scale"), 0.25);
  expect_invalid([&] { apply_entry(s, "toy.scale", "wide", "config c.yaml"); },
                 "config c.yaml: toy.scale = 'wide' is not a number");
  apply_entry(s, "toy.scale", "0");
  expect_invalid([&] { s.network.validate(ProblemShape{3, 3, 1, 0}); }, "toy.scale = 0 must be positive");
  expect_invalid([&] { head_option(s.network, "toy.width"); }, "head option 'toy.width' is not registered");

  const auto no_head = [](const AmortizedConfig&, Index) { return std::unique_ptr<Head>(); };
  HeadRegistration again;
  again.name = "toy";
  again.make = no_head;
  expect_invalid([&] { register_head(again); }, "register_head: head = 'toy' is already registered");
  HeadRegistration unmade;
  unmade.name = "mixture";
  expect_invalid([&] { register_head(unmade); }, "has no factory");
  HeadRegistration stray;
  stray.name = "encoder";
  stray.make = no_head;
  stray.options = {{"encoder.width", HeadOption::Kind::kInteger, "3"}};
  expect_invalid([&] { register_head(stray); }, "option key = 'encoder.width' is taken");
  stray.name = "mixture";
  stray.options = {{"components", HeadOption::Kind::kInteger, "3"}};
  expect_invalid([&] { register_head(stray); }, "must be 'mixture.<field>'");
  stray.options = {{"mixture.components", HeadOption::Kind::kInteger, "three"}};
  expect_invalid([&] { register_head(stray); }, "mixture.components = 'three' is not an integer");
  EXPECT_EQ(head_names().back(), "toy") << "a refused registration leaves nothing behind";
}

// The user head goes through AmortizedPosterior like a built-in one: training, its closed form as
// the Posterior, the refusal of a sampler naming the heads that have one, and a model file that
// stores its option and loads back to the same function.
TEST(HeadRegistry, AUserHeadTrainsSavesAndLoads) {
  const HeadType toy = test::toy_head_type();
  Rng rng = testing::seeded_rng(1301);
  const LinearGaussian problem(3);
  AmortizedSetup s = default_setup("linear-gaussian", toy);
  apply_entry(s, "toy.scale", "0.7");
  s.training.epochs = 2;
  AmortizedPosterior q(s.network, problem.shape(), rng, problem.name());
  q.train(problem, 600, s.training, rng);
  const Vector y = Vector::Constant(3, 0.2);
  const auto post = q.posterior(y, 10, rng);
  ASSERT_NE(dynamic_cast<const GaussianPosterior*>(post.get()), nullptr);
  EXPECT_EQ(post->provenance().method, "amortized_toy");
  expect_invalid([&] { q.set_sampler(Sampler::kOde, 10); }, "set_sampler: head = toy has no sampler to choose (score heads only)");
  expect_invalid([&] { q.log_prob(Matrix::Zero(2, 1), y); }, "rows of x");

  const auto file = std::filesystem::temp_directory_path() / ("varflow_toy_head_" + std::to_string(::getpid()) + ".nc");
  q.save(file);
  AmortizedPosterior r = AmortizedPosterior::load(file);
  std::filesystem::remove(file);
  EXPECT_EQ(r.config().head, toy);
  EXPECT_EQ(head_option(r.config(), "toy.scale"), "0.7");
  EXPECT_EQ(r.checksum(), q.checksum());
  EXPECT_EQ(r.mean(y), q.mean(y));
  EXPECT_EQ(r.log_prob(Matrix::Ones(3, 2), y), q.log_prob(Matrix::Ones(3, 2), y));
}

}  // namespace
}  // namespace varflow::amortized
