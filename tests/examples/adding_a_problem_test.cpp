// Adding a problem: this file is all of it. A simulator (with exact oracle labels for
// derivative-informed training), its default setup, its oracle, two registration calls, and the
// problem trains, saves, loads and goes through the three gates like the built-in ones.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "varflow/amortized/amortized_posterior.h"
#include "varflow/core/error.h"
#include "varflow/covariance/covariances.h"
#include "varflow/report/oracles.h"
#include "varflow/report/validation_report.h"
#include "varflow/testing/conformance.h"

namespace varflow {
namespace {

// x ~ N(0, I_2), y = 2 x + N(0, s^2 I) with s = 0.5: the posterior is N(g y, v I) with precision
// 1 + 4 / s^2 = 17, v = 1/17 and gain g = (2 / s^2) v = 8/17.
constexpr double kNoiseSd = 0.5;
constexpr double kVariance = 1.0 / (1.0 + 4.0 / (kNoiseSd * kNoiseSd));
constexpr double kGain = 2.0 / (kNoiseSd * kNoiseSd) * kVariance;

class ScaledGaussian final : public amortized::Simulator {
 public:
  std::string name() const override { return "scaled-gaussian"; }
  std::string describe() const override { return "scaled-gaussian: x ~ N(0, I_2), y = 2x + N(0, 0.25 I)"; }
  amortized::ProblemShape shape() const override { return {2, 2, 1, 0}; }
  amortized::Dataset simulate(Index n, Rng& rng) const override {
    amortized::Dataset d;
    d.x.resize(2, n);
    d.y.resize(2, n);
    for (Index j = 0; j < n; ++j) {
      d.x.col(j) = rng.normal_vector(2);
      d.y.col(j) = 2.0 * d.x.col(j) + kNoiseSd * rng.normal_vector(2);
    }
    return d;
  }
  bool has_oracle_labels() const override { return true; }
  // The oracle of one pair: the posterior mean and J dy (label() draws the directions and spreads the
  // pairs over threads and ranks).
  PairLabels label_pair(const Vector& y, Index, const Matrix& dy) const override { return {kGain * y, kGain * dy}; }
};

class ScaledGaussianOracle final : public report::Oracle {
 public:
  const amortized::Simulator& simulator() const override { return problem_; }
  std::string describe() const override { return "exact posterior N(8y/17, I/17), J = 8/17 I"; }
  std::shared_ptr<const Posterior> posterior(const Vector& y) override {
    return std::make_shared<GaussianPosterior>(Vector(kGain * y),
                                               std::make_shared<DiagonalCovariance>(Vector::Constant(2, kVariance)));
  }
  JacobianOperator jacobian(const Vector&) override {
    return {[](const Vector& v) { return Vector(kGain * v); }, [](const Vector& w) { return Vector(kGain * w); }, 2, 2};
  }
  Vector prior_variance() const override { return Vector::Ones(2); }

 private:
  ScaledGaussian problem_;
};

void register_scaled_gaussian() {
  static const bool registered = [] {
    amortized::register_problem(
        {"scaled-gaussian", "the worked example of adding a problem",
         [](const amortized::AmortizedSetup&) { return std::unique_ptr<amortized::Simulator>(new ScaledGaussian); },
         [](amortized::HeadType head) {
           amortized::AmortizedSetup s;
           s.network.head = head;
           s.network.encoder.context = 8;
           s.network.encoder.width = 16;
           s.network.gaussian.width = 16;
           s.pairs = 4000;
           s.training.epochs = 20;
           s.training.batch_size = 128;
           s.training.learning_rate = 3e-3;
           s.labels.pairs = s.pairs;  // exact labels cost nothing
           s.labels.probes = 2;
           return s;
         }});
    report::register_oracle("scaled-gaussian", [](const amortized::ProblemShape& shape, const report::ValidationOptions&) {
      if (!(shape == ScaledGaussian().shape())) throw InvalidArgument("scaled-gaussian: wrong model shape");
      return std::unique_ptr<report::Oracle>(new ScaledGaussianOracle);
    });
    return true;
  }();
  (void)registered;
}

TEST(AddingAProblem, ItTrainsSavesLoadsAndPassesItsGates) {
  register_scaled_gaussian();
  using namespace amortized;
  const auto names = problem_names();
  EXPECT_NE(std::find(names.begin(), names.end(), "scaled-gaussian"), names.end());

  AmortizedSetup setup = default_setup("scaled-gaussian", HeadType::kGaussian);
  Rng rng = testing::seeded_rng(3);
  const auto problem = find_problem("scaled-gaussian").make(setup);
  AmortizedPosterior q(setup.network, problem->shape(), rng, problem->name());
  Dataset data = problem->simulate(setup.pairs, rng);
  problem->label(data, setup.labels.pairs, setup.labels.probes, rng);
  const auto summary = q.train(data, setup.training, rng, {}, setup.labels);
  ASSERT_TRUE(summary.ok()) << summary.message;

  const auto file = std::filesystem::temp_directory_path() / "varflow_adding_a_problem.nc";
  q.save(file);
  AmortizedPosterior loaded = AmortizedPosterior::load(file);
  std::filesystem::remove(file);
  EXPECT_EQ(loaded.problem(), "scaled-gaussian");

  report::ValidationOptions o;
  o.events = 5;
  o.posterior_draws = 400;
  o.jacobian_cases = 2;
  const auto r = report::validate_model(loaded, o, rng);
  EXPECT_TRUE(r.passed()) << r.decision.report();
}

TEST(AddingAProblem, ANameIsRegisteredOnceAndUnknownNamesAreListed) {
  register_scaled_gaussian();
  EXPECT_THROW(amortized::register_problem(amortized::find_problem("scaled-gaussian")), InvalidArgument);
  EXPECT_THROW(report::register_oracle("scaled-gaussian", [](const auto&, const auto&) {
                 return std::unique_ptr<report::Oracle>(new ScaledGaussianOracle);
               }),
               InvalidArgument);
  try {
    amortized::find_problem("scaled-gausian");
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("two-moons, linear-gaussian, lorenz96, window, scaled-gaussian"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace varflow
