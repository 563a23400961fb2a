// Derivative-informed training (design/amortized.md): oracle labels (the posterior mean and J
// applied to probes) and the loss terms that use them. The labels must be right (exact for the
// linear-Gaussian problem, the 4D-Var MAP and its derivative for Lorenz-96), and they must matter: a
// planted wrong J label must move the trained Jacobian towards it.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "varflow/amortized/amortized_posterior.h"
#include "varflow/core/error.h"
#include "varflow/nn/gradient_check.h"
#include "varflow/nn/trainer.h"
#include "varflow/testing/conformance.h"
#include "varflow/var/incremental_4dvar.h"

namespace varflow::amortized {
namespace {

// f throws InvalidArgument whose message contains every one of `parts`.
template <typename F>
void expect_invalid_argument(F&& f, std::initializer_list<const char*> parts) {
  try {
    f();
    ADD_FAILURE() << "no exception";
  } catch (const InvalidArgument& e) {
    for (const char* part : parts) EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

TEST(OracleLabels, LinearGaussianLabelsAreExact) {
  Rng rng = testing::seeded_rng(1301);
  const LinearGaussian problem(6, 0.1, 0.3);
  Dataset data = problem.simulate(20, rng);
  problem.label(data, 15, 3, rng);
  ASSERT_EQ(data.labels.labelled(), 15);
  EXPECT_EQ(data.labels.probes, 3);
  const double gain = 0.1 / 0.4;
  for (Index j = 0; j < 20; ++j) {
    if (j >= 15) {
      EXPECT_TRUE(std::isnan(data.labels.mean(0, j))) << "pair " << j << " is not labelled";
      continue;
    }
    EXPECT_LT((data.labels.mean.col(j) - gain * data.y.col(j)).norm(), 1e-14);
    for (Index p = 0; p < 3; ++p) {
      const auto dy = data.labels.dy.col(j * 3 + p);
      EXPECT_GT(dy.norm(), 0.1);
      EXPECT_LT((data.labels.dx.col(j * 3 + p) - gain * dy).norm(), 1e-14);
    }
  }
  EXPECT_NO_THROW(data.validate(problem.shape()));
}

// The linear-Gaussian problem whose oracle fails (a NumericalError, as a 4D-Var that does not
// converge) on the pairs `fails` says.
class FailingOracle final : public Simulator {
 public:
  explicit FailingOracle(std::function<bool(Index)> fails) : fails_(std::move(fails)) {}
  std::string name() const override { return "failing-oracle"; }
  std::string describe() const override { return "linear-gaussian whose oracle fails on some pairs"; }
  ProblemShape shape() const override { return inner_.shape(); }
  Dataset simulate(Index n, Rng& rng) const override { return inner_.simulate(n, rng); }
  bool has_oracle_labels() const override { return true; }
  PairLabels label_pair(const Vector& y, Index pair, const Matrix& dy) const override {
    if (fails_(pair)) throw NumericalError(format_message("4D-Var of pair ", pair, " did not converge"));
    return {0.25 * y, 0.25 * dy};
  }
  // Variances 0.075, failing where the first observation is negative.
  bool has_variance_labels() const override { return true; }
  Vector label_variance(const Vector& y, const Vector&) const override {
    if (y[0] < 0.0) throw NumericalError("the Hessian is not positive definite");
    return Vector::Constant(4, 0.075);
  }

 private:
  LinearGaussian inner_{4, 0.1, 0.3};
  std::function<bool(Index)> fails_;
};

TEST(OracleLabels, APairWhoseOracleFailsCarriesNoLabelAndIsCounted) {
  Rng rng = testing::seeded_rng(1304);
  const FailingOracle problem([](Index j) { return j == 2 || j == 5; });
  Dataset data = problem.simulate(10, rng);
  const Simulator::LabelReport report = problem.label(data, 8, 2, rng);
  EXPECT_EQ(report.labelled, 6);
  EXPECT_EQ(report.failed, 2);
  EXPECT_NE(report.first_failure.find("pair 2"), std::string::npos) << report.first_failure;
  EXPECT_EQ(data.labels.labelled(), 6);
  for (Index j = 0; j < 10; ++j) {
    const bool labelled = j < 8 && j != 2 && j != 5;
    EXPECT_EQ(!std::isnan(data.labels.mean(0, j)), labelled) << "pair " << j;
    const auto dy = data.labels.dy.middleCols(j * 2, 2), dx = data.labels.dx.middleCols(j * 2, 2);
    if (labelled) {
      EXPECT_LT((data.labels.mean.col(j) - 0.25 * data.y.col(j)).norm(), 1e-15);
      EXPECT_GT(dy.norm(), 0.1);
      EXPECT_LT((dx - 0.25 * dy).norm(), 1e-15);
    } else {
      EXPECT_EQ(dy.norm(), 0.0) << "pair " << j;
      EXPECT_EQ(dx.norm(), 0.0) << "pair " << j;
    }
  }
  EXPECT_NO_THROW(data.validate(problem.shape()));

  // Variance labels: a pair whose variances fail loses all its labels and is counted.
  Index negative = 0;
  for (Index j = 0; j < 8; ++j) negative += (j != 2 && j != 5 && data.y(0, j) < 0.0) ? 1 : 0;
  ASSERT_GT(negative, 0);
  ASSERT_LT(negative, 6);
  const Simulator::LabelReport variances = problem.label_variances(data);
  EXPECT_EQ(variances.labelled, 6 - negative);
  EXPECT_EQ(variances.failed, negative);
  EXPECT_NE(variances.first_failure.find("not positive definite"), std::string::npos) << variances.first_failure;
  EXPECT_EQ(data.labels.labelled(), 6 - negative);
  for (Index j = 0; j < 10; ++j) {
    const bool labelled = j < 8 && j != 2 && j != 5 && data.y(0, j) >= 0.0;
    EXPECT_EQ(!std::isnan(data.labels.variance(0, j)), labelled) << "pair " << j;
    EXPECT_EQ(!std::isnan(data.labels.mean(0, j)), labelled) << "pair " << j;
  }
  EXPECT_NO_THROW(data.validate(problem.shape()));

  // Every pair failing is an error naming the first.
  const FailingOracle hopeless([](Index) { return true; });
  Dataset none = hopeless.simulate(3, rng);
  try {
    hopeless.label(none, 3, 1, rng);
    ADD_FAILURE() << "no exception";
  } catch (const NumericalError& e) {
    EXPECT_NE(std::string(e.what()).find("every one of the 3 pairs"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("pair 0 did not converge"), std::string::npos) << e.what();
  }
  const FailingOracle labels_only([](Index) { return false; });
  Dataset all_negative = labels_only.simulate(3, rng);
  all_negative.y.row(0).setConstant(-1.0);
  labels_only.label(all_negative, 3, 1, rng);
  try {
    labels_only.label_variances(all_negative);
    ADD_FAILURE() << "no exception";
  } catch (const NumericalError& e) {
    EXPECT_NE(std::string(e.what()).find("every one of the 3 labelled pairs"), std::string::npos) << e.what();
  }
}

TEST(OracleLabels, BadLabelsAreNamed) {
  Rng rng = testing::seeded_rng(1302);
  const LinearGaussian problem(4);
  Dataset data = problem.simulate(5, rng);
  problem.label(data, 5, 1, rng);
  Dataset wrong = data;
  wrong.labels.dx(2, 3) = std::nan("");
  expect_invalid_argument([&] { wrong.validate(problem.shape()); }, {"labels.dx(2, 3)", "not finite"});
  wrong = data;
  wrong.labels.dy.conservativeResize(Eigen::NoChange, 4);
  expect_invalid_argument([&] { wrong.validate(problem.shape()); }, {"columns of labels.dy", "4"});
  expect_invalid_argument([&] { TwoMoons().label(data, 1, 1, rng); }, {"two-moons", "labels.pairs"});
  WindowProblemOptions climatology;
  climatology.model.parameters["n"] = 8;
  climatology.spinup = 50;
  const WindowProblem l96(climatology);
  EXPECT_FALSE(l96.has_oracle_labels());
  Dataset d96 = l96.simulate(2, rng);
  expect_invalid_argument([&] { l96.label(d96, 1, 1, rng); }, {"lorenz96", "labels.pairs"});
  LabelOptions o;
  o.step = 0.0;
  expect_invalid_argument([&] { o.validate(); }, {"labels", "step = 0"});
  o = LabelOptions();
  o.jacobian_weight = -1.0;
  expect_invalid_argument([&] { o.validate(); }, {"jacobian_weight = -1"});
}

// A small gaussian-prior Lorenz-96 problem: window 4, every point observed at steps 0, 2, 4, each
// value missing with probability `missing`.
WindowProblemOptions small_gaussian_lorenz96(Index size, double missing) {
  WindowProblemOptions o;
  o.model.parameters["n"] = size;
  o.window = 4;
  o.obs_every = 2;
  o.obs_stride = 1;
  o.missing = missing;
  o.prior = WindowPrior::kGaussian;
  o.spinup = 300;
  return o;
}

// Lorenz-96 with the gaussian prior: the mean label is the 4D-Var MAP and J dy its derivative; checked
// against a central difference of the MAP with another step.
TEST(OracleLabels, Lorenz96LabelsAreTheMapAndItsDerivative) {
  Rng rng = testing::seeded_rng(1303);
  const WindowProblem problem(small_gaussian_lorenz96(10, 0.1));
  ASSERT_TRUE(problem.has_oracle_labels());
  Dataset data = problem.simulate(3, rng);
  problem.label(data, 2, 2, rng);
  GaussNewtonOptions tight;
  tight.gradient_tolerance = 1e-12;
  tight.posterior = PosteriorMethod::kNone;
  const auto map = [&](const Vector& y) { return IncrementalFourDVar(tight).solve(problem.window(y)).analysis; };
  for (Index j = 0; j < 2; ++j) {
    const Vector y = data.y.col(j);
    EXPECT_LT((data.labels.mean.col(j) - map(y)).norm(), 1e-6 * map(y).norm());
    for (Index p = 0; p < 2; ++p) {
      const Vector dy = data.labels.dy.col(j * 2 + p);
      for (Index i = 0; i < dy.size(); ++i) {
        if (std::isnan(y[i])) {
          EXPECT_EQ(dy[i], 0.0) << "a missing observation gets no probe";
        }
      }
      const double h = 3e-3;
      const Vector fd = (map(y + h * dy) - map(y - h * dy)) / (2.0 * h);
      const double e = nn::relative_error(data.labels.dx.col(j * 2 + p), fd);
      std::cout << "pair " << j << " probe " << p << ": J dy label vs MAP differences " << e << "\n";
      EXPECT_LT(e, 1e-3);
    }
  }
}

// Labelling runs over the OpenMP threads; the labels do not depend on their number.
TEST(OracleLabels, Lorenz96LabelsDoNotDependOnTheThreadCount) {
  const WindowProblem problem(small_gaussian_lorenz96(8, 0.0));
  Rng rng(1305);
  const Dataset data = problem.simulate(9, rng);
  const int threads = nn::thread_count();
  auto labelled = [&](int n) {
    nn::set_thread_count(n);
    Dataset d = data;
    Rng r(9);
    problem.label(d, 7, 2, r);
    return d.labels;
  };
  const OracleLabels one = labelled(1), two = labelled(2);
  nn::set_thread_count(threads);
  EXPECT_EQ(one.labelled(), 7);
  EXPECT_TRUE(one.mean.leftCols(7) == two.mean.leftCols(7));
  EXPECT_TRUE(one.dx == two.dx);
  EXPECT_TRUE(one.dy == two.dy);
}

// Over 5 events x 4 probes v of the trained mean's Jacobian J: the mean relative probe error
// ||J v - gain v|| / ||gain v|| and the mean gain v^T J v / v^T v.
struct ProbeStats {
  double error = 0.0, gain = 0.0;
};
ProbeStats probe(AmortizedPosterior& q, const LinearGaussian& problem, double gain) {
  Rng rng(7);
  const Dataset events = problem.simulate(5, rng);
  ProbeStats s;
  for (Index e = 0; e < 5; ++e) {
    for (Index p = 0; p < 4; ++p) {
      const Vector v = rng.normal_vector(events.y.rows());
      const Vector jv = q.mean_jvp(events.y.col(e), v);
      s.error += (jv - gain * v).norm() / (gain * v.norm()) / 20.0;
      s.gain += v.dot(jv) / v.squaredNorm() / 20.0;
    }
  }
  return s;
}

// Trains setup `s` with label weights `weights` on `pairs` pairs of `problem` (data, initial weights
// and batches from test seed `seed`, probe directions from `label_seed`), with exact labels whose J
// targets are label_gain * v (0.5: the exact J of LinearGaussian(4)) or without labels
// (labelled = false), and probes the trained mean against J = 0.5 I.
ProbeStats train_and_probe(const LinearGaussian& problem, const AmortizedSetup& s, const LabelOptions& weights,
                           Index pairs, std::uint64_t seed, std::uint64_t label_seed, bool labelled,
                           double label_gain = 0.5) {
  Rng rng = testing::seeded_rng(seed);
  Dataset data = problem.simulate(pairs, rng);
  Rng label_rng(label_seed);
  problem.label(data, pairs, weights.probes, label_rng);
  data.labels.dx = label_gain * data.labels.dy;
  if (!labelled) data.labels = OracleLabels();
  AmortizedPosterior q(s.network, problem.shape(), rng, problem.name());
  q.train(data, s.training, rng, {}, weights);
  return probe(q, problem, 0.5);
}

// The linear-gaussian Gaussian head's defaults, narrowed (widths 16) and trained `epochs` epochs,
// batch 128, lr 3e-3: the planted-label tests' setup.
AmortizedSetup small_gaussian_setup(Index epochs) {
  AmortizedSetup s = default_setup("linear-gaussian", HeadType::kGaussian);
  s.network.encoder.width = 16;
  s.network.gaussian.width = 16;
  s.training.epochs = epochs;
  s.training.batch_size = 128;
  s.training.learning_rate = 3e-3;
  return s;
}

// The same data, initial weights and batches, trained without labels, with exact labels, and with
// a planted wrong gain in the J labels (0.8 instead of 0.5): exact labels lower the probe error, and
// the planted labels pull the trained Jacobian towards 0.8. Ignored labels would give identical
// networks.
TEST(DerivativeTraining, PlantedWrongJacobianLabelsChangeTheTrainedJacobian) {
  const LinearGaussian problem(4);
  const AmortizedSetup s = small_gaussian_setup(15);
  LabelOptions weights;
  weights.mean_weight = 0.0;  // only the Jacobian term, so the effect is the J labels'
  weights.jacobian_weight = 5.0;
  weights.probes = 2;
  auto train = [&](bool labelled, double label_gain) {
    return train_and_probe(problem, s, weights, 3000, 1304, 11, labelled, label_gain);
  };
  const ProbeStats none = train(false, 0.5), exact = train(true, 0.5), planted = train(true, 0.8);
  std::cout << "probe error against J = 0.5 I (gain): likelihood only " << none.error << " (" << none.gain
            << "), exact labels " << exact.error << " (" << exact.gain << "), planted labels 0.8 " << planted.error
            << " (" << planted.gain << ")\n";
  EXPECT_LT(exact.error, 0.8 * none.error);
  EXPECT_NEAR(exact.gain, 0.5, 0.02);
  EXPECT_GT(planted.gain, exact.gain + 0.05);
}

// Variance labels: the same data, weights and batches trained with the exact variance labels (0.05)
// and with planted ones twice too large (0.1), the likelihood and mean labels unchanged. The trained
// marginal variance follows the labels: exact labels keep it near 0.05, the planted ones pull it far
// above. Ignored variance labels would give identical networks.
TEST(DerivativeTraining, PlantedWrongVarianceLabelsChangeTheTrainedSpread) {
  const LinearGaussian problem(4);
  const AmortizedSetup s = small_gaussian_setup(10);
  LabelOptions weights;
  weights.jacobian_weight = 0.0;
  weights.variance_weight = 5.0;
  weights.probes = 1;
  auto train = [&](double label_variance) {
    Rng rng = testing::seeded_rng(1305);
    Dataset data = problem.simulate(2000, rng);
    Rng label_rng(12);
    problem.label(data, 2000, weights.probes, label_rng);
    problem.label_variances(data);
    data.labels.variance.setConstant(label_variance);
    AmortizedPosterior q(s.network, problem.shape(), rng, problem.name());
    q.train(data, s.training, rng, {}, weights);
    Rng events = testing::seeded_rng(7);
    const Dataset held_out = problem.simulate(20, events);
    double variance = 0.0;
    for (Index e = 0; e < 20; ++e) {
      variance += q.posterior(held_out.y.col(e), 0, events)->marginal_std().array().square().mean() / 20.0;
    }
    return variance;
  };
  const double exact = train(0.05), planted = train(0.1);
  std::cout << "trained marginal variance: exact labels " << exact << ", labels of 0.1 " << planted
            << " (exact posterior variance 0.05)\n";
  EXPECT_NEAR(exact, 0.05, 0.1 * 0.05);
  EXPECT_GT(planted, 0.07);
}

// The flow head: the same data, initial weights and batches with and without exact labels (the
// training mean is the antithetic two-draw average through the inverse flow); the labels must bring
// the trained mean's Jacobian (the 1000-draw mean of the gate) closer to J = 0.5 I.
TEST(DerivativeTraining, FlowHeadExactLabelsImproveTheJacobian) {
  const LinearGaussian problem(4);
  AmortizedSetup s = default_setup("linear-gaussian", HeadType::kFlow);
  s.network.encoder.width = 16;
  s.network.flow.width = 16;
  s.network.mean_samples = 200;
  s.training.epochs = 10;
  s.training.batch_size = 128;
  s.training.learning_rate = 3e-3;
  ASSERT_GT(s.labels.pairs, 0) << "labels are part of the linear-gaussian flow defaults";
  auto train = [&](bool labelled) { return train_and_probe(problem, s, s.labels, 3000, 1305, 12, labelled); };
  const ProbeStats none = train(false), exact = train(true);
  std::cout << "flow: probe error against J = 0.5 I (gain): likelihood only " << none.error << " (" << none.gain
            << "), exact labels " << exact.error << " (" << exact.gain << ")\n";
  EXPECT_LT(exact.error, 0.4 * none.error);
  EXPECT_LT(exact.error, 0.05);
  EXPECT_NEAR(exact.gain, 0.5, 0.02);
}

// The score head: the labels act on its Gaussian backbone's mean, and the samplers' mean (the one the
// gate probes, through the probability-flow ODE) must follow them. Same data, initial weights and
// batches without labels, with exact labels, and with a planted wrong gain (0.8) in the J labels.
// Exact labels bring the Jacobian closer to J = 0.5 I. Planted ones move it away (the error 1.7-3x
// on seeds 1306, 902, 31); the epsilon-network, held to the data by the likelihood, keeps the mean gain near 0.5,
// so the effect shows in the error rather than in the gain. Ignored labels would give identical
// networks.
TEST(DerivativeTraining, ScoreHeadLabelsReachTheSamplersMean) {
  const LinearGaussian problem(4);
  AmortizedSetup s = default_setup("linear-gaussian", HeadType::kScore);
  ASSERT_GT(s.labels.pairs, 0) << "labels are part of the linear-gaussian score defaults";
  s.network.encoder.width = 16;
  s.network.score.width = 16;
  s.network.score.steps = 20;
  s.network.mean_samples = 64;
  s.training.epochs = 20;
  s.training.batch_size = 128;
  s.training.learning_rate = 3e-3;
  s.labels.mean_weight = 0.0;  // only the Jacobian term, so the effect is the J labels'
  s.network.linear_gain = LinearGain::kNone;  // the labels alone set the mean's Jacobian
  auto train = [&](bool labelled, double label_gain) {
    return train_and_probe(problem, s, s.labels, 3000, 1306, 13, labelled, label_gain);
  };
  const ProbeStats none = train(false, 0.5), exact = train(true, 0.5), planted = train(true, 0.8);
  std::cout << "score: probe error against J = 0.5 I (gain): likelihood only " << none.error << " (" << none.gain
            << "), exact labels " << exact.error << " (" << exact.gain << "), planted labels 0.8 " << planted.error
            << " (" << planted.gain << ")\n";
  EXPECT_LT(exact.error, 0.4 * none.error);
  EXPECT_NEAR(exact.gain, 0.5, 0.03);
  EXPECT_GT(planted.error, 1.5 * exact.error);
}

}  // namespace
}  // namespace varflow::amortized
