// The Lorenz-96 problem: the gaussian prior's statistics, the climatological prior unchanged, the
// injected simulation model, and the options' validation messages.
#include <gtest/gtest.h>

#include <cmath>
#include <iostream>
#include <memory>

#include "../test_messages.h"
#include "varflow/amortized/config.h"
#include "varflow/amortized/problems.h"
#include "varflow/core/error.h"
#include "varflow/model/lorenz96.h"
#include "varflow/obs/operators.h"
#include "varflow/testing/conformance.h"

namespace varflow::amortized {
namespace {

using test::message_of;

Lorenz96ProblemOptions gaussian_options(double sd) {
  Lorenz96ProblemOptions o;
  o.size = 10;
  o.window = 4;
  o.obs_every = 2;
  o.missing = 0.0;
  o.obs_stride = 1;
  o.spinup = 300;
  o.prior = Lorenz96Prior::kGaussian;
  o.prior_sd = sd;
  return o;
}

// x0 = c + prior_sd N(0, I): per-component means within 4 standard errors of c, and the pooled
// standard deviation within 3% of prior_sd (sd 2 is used so that a variance taken for an sd, or a
// unit sd, is far outside: 4 or 1 against 2).
TEST(Lorenz96Problem, GaussianPriorHasMeanCenterAndStandardDeviationPriorSd) {
  Rng rng = testing::seeded_rng(2101);
  const double sd = 2.0;
  const Lorenz96Problem problem(gaussian_options(sd));
  const Index n = 8000;
  const Dataset d = problem.simulate(n, rng);
  const Vector c = problem.center();
  ASSERT_EQ(c.size(), 10);
  EXPECT_EQ(c, Lorenz96Problem::gaussian_center(problem.options()));  // deterministic
  // An attractor state, not the rest state F.
  EXPECT_GT((c.array() - 8.0).abs().maxCoeff(), 1.0);
  const Vector mean = d.x.rowwise().mean();
  const double se = sd / std::sqrt(static_cast<double>(n));
  EXPECT_LT((mean - c).cwiseAbs().maxCoeff(), 4.0 * se) << "mean " << mean.transpose() << "\ncentre " << c.transpose();
  const double pooled_sd = std::sqrt((d.x.colwise() - c).squaredNorm() / static_cast<double>(d.x.size()));
  std::cout << "gaussian prior: pooled sd " << pooled_sd << " (prior_sd " << sd << "), max |mean - c| "
            << (mean - c).cwiseAbs().maxCoeff() << " (standard error " << se << ")\n";
  EXPECT_NEAR(pooled_sd, sd, 0.03 * sd);
  // The observations at step 0 are x0 plus noise of sd obs_noise.
  const double noise_sd = std::sqrt((d.y.topRows(10) - d.x).squaredNorm() / static_cast<double>(d.x.size()));
  EXPECT_NEAR(noise_sd, problem.options().obs_noise, 0.03);
  // Another prior_seed gives another centre.
  Lorenz96ProblemOptions other = problem.options();
  other.prior_seed += 1;
  EXPECT_GT((Lorenz96Problem::gaussian_center(other) - c).norm(), 1.0);
}

// The default (climatological) prior draws exactly what the original simulator drew: one long
// physics run from a perturbed rest state, states every `decorrelation` steps, observations along
// the trajectory. Reimplemented here step by step and compared bit for bit.
TEST(Lorenz96Problem, ClimatologicalPriorIsUnchanged) {
  Lorenz96ProblemOptions o;
  o.size = 12;
  o.spinup = 100;
  const Lorenz96Problem problem(o);
  EXPECT_EQ(problem.center().size(), 0);
  Rng a(77), b(77);
  const Dataset d = problem.simulate(5, a);
  const Lorenz96 model(o.size, o.forcing, o.dt);
  const IdentityObservation h(o.size);
  Vector state = Vector::Constant(o.size, o.forcing) + 0.01 * b.normal_vector(o.size);
  for (Index k = 0; k < o.spinup; ++k) model.step(state);
  Vector y;
  for (Index j = 0; j < 5; ++j) {
    for (Index k = 0; k < o.decorrelation; ++k) model.step(state);
    ASSERT_EQ(Vector(d.x.col(j)), state);
    Vector x = state;
    for (Index step = 0, slot = 0; step <= o.window; ++step) {
      if (step % o.obs_every == 0) {
        h.apply(x, y);
        for (Index i = 0; i < o.size; ++i) {
          const bool observed = i % o.obs_stride == 0 && b.uniform() >= o.missing;
          const double noise = o.obs_noise * b.normal();
          const double expected = observed ? y[i] + noise : std::nan("");
          const double got = d.y(slot * o.size + i, j);
          if (std::isnan(expected)) {
            ASSERT_TRUE(std::isnan(got));
          } else {
            ASSERT_EQ(got, expected);
          }
        }
        ++slot;
      }
      if (step < o.window) model.step(x);
    }
  }
}

// The observations follow the injected model: the same draws with Lorenz-96 of another forcing give
// the same x0 and step-0 observations but different later ones; an identical model gives identical pairs.
TEST(Lorenz96Problem, InjectedModelSimulatesTheObservations) {
  const Lorenz96ProblemOptions o = gaussian_options(1.0);
  const Lorenz96Problem physics(o);
  const Lorenz96Problem same(o, std::make_shared<Lorenz96>(o.size, o.forcing, o.dt));
  const Lorenz96Problem other(o, std::make_shared<Lorenz96>(o.size, 9.0, o.dt));
  EXPECT_EQ(physics.center(), other.center());  // the prior comes from the physics
  EXPECT_NE(other.describe().find("simulated with lorenz96(n=10, F=9"), std::string::npos) << other.describe();
  EXPECT_EQ(physics.describe().find("simulated with"), std::string::npos) << physics.describe();
  Rng r1(5), r2(5), r3(5);
  const Dataset a = physics.simulate(20, r1), b = same.simulate(20, r2), c = other.simulate(20, r3);
  EXPECT_EQ(a.x, b.x);
  EXPECT_EQ(a.y, b.y);
  EXPECT_EQ(a.x, c.x);
  EXPECT_EQ(a.y.topRows(o.size), c.y.topRows(o.size));  // step 0: before any model step
  const double diff = (a.y.bottomRows(o.size) - c.y.bottomRows(o.size)).cwiseAbs().mean();
  std::cout << "mean |y(F=8) - y(F=9)| at step 4: " << diff << "\n";
  EXPECT_GT(diff, 0.05);
}

TEST(Lorenz96Problem, OptionsAndModelAreValidatedWithClearMessages) {
  Lorenz96ProblemOptions o = gaussian_options(1.0);
  const std::string wrong_size =
      message_of([&] { Lorenz96Problem p(o, std::make_shared<Lorenz96>(12, o.forcing, o.dt)); });
  EXPECT_NE(wrong_size.find("state size 12, but model.n = 10"), std::string::npos) << wrong_size;
  o.prior_sd = 0.0;
  const std::string sd = message_of([&] { Lorenz96Problem p(o); });
  EXPECT_NE(sd.find("lorenz96 problem: background.variance: standard deviation prior_sd = 0 must be positive"),
            std::string::npos)
      << sd;
  o.prior_sd = std::nan("");
  EXPECT_NE(message_of([&] { o.validate(); }).find("prior_sd"), std::string::npos);

  // The problem's keys are the experiment configs' sections and units: variances, not deviations.
  AmortizedSetup s;
  apply_entry(s, "background.prior", "gaussian");
  apply_entry(s, "background.variance", "0.25");
  apply_entry(s, "background.seed", "123");
  apply_entry(s, "observations.error_variance", "4");
  EXPECT_EQ(s.lorenz96.prior, Lorenz96Prior::kGaussian);
  EXPECT_EQ(s.lorenz96.prior_sd, 0.5);
  EXPECT_EQ(s.lorenz96.obs_noise, 2.0);
  EXPECT_EQ(s.lorenz96.prior_seed, 123u);
  EXPECT_EQ(entry_value(s, "background.variance"), "0.25");
  EXPECT_TRUE(is_problem_key("observations.error_variance"));
  EXPECT_FALSE(is_problem_key("training.epochs"));
  const std::string bad_prior = message_of([&] { apply_entry(s, "background.prior", "normal"); });
  EXPECT_NE(bad_prior.find("background.prior = 'normal' is not one of: climatology, gaussian"), std::string::npos)
      << bad_prior;
  const std::string bad_seed = message_of([&] { apply_entry(s, "background.seed", "-1"); });
  EXPECT_NE(bad_seed.find("background.seed = '-1' is not a non-negative integer"), std::string::npos) << bad_seed;
  const std::string bad_variance = message_of([&] { apply_entry(s, "background.variance", "wide"); });
  EXPECT_NE(bad_variance.find("background.variance = 'wide' is not a number"), std::string::npos) << bad_variance;
  const std::string negative = message_of([&] { apply_entry(s, "observations.error_variance", "-1", "config c.yaml"); });
  EXPECT_NE(negative.find("config c.yaml: observations.error_variance = -1 must be positive and finite"),
            std::string::npos)
      << negative;
  EXPECT_EQ(s.lorenz96.obs_noise, 2.0);  // a refused value leaves the setting alone

  // Keys of the earlier format are refused in configs, naming the new key and the change of unit...
  const std::string renamed = message_of([&] { apply_entry(s, "lorenz96.obs_noise", "0.5", "config c.yaml"); });
  EXPECT_NE(renamed.find("config c.yaml: key 'lorenz96.obs_noise' was renamed: use observations.error_variance (a "
                         "variance: the old standard deviation squared)"),
            std::string::npos)
      << renamed;
  // ...and translated in a model file's stored definition, so older model files validate as before.
  AmortizedSetup stored;
  apply_definition(stored, {{"lorenz96.size", "12"}, {"lorenz96.obs_noise", "0.5"}, {"lorenz96.prior_sd", "3"},
                            {"lorenz96.prior", "gaussian"}},
                   "--model old.nc");
  EXPECT_EQ(stored.lorenz96.size, 12);
  EXPECT_EQ(stored.lorenz96.obs_noise, 0.5);
  EXPECT_EQ(stored.lorenz96.prior_sd, 3.0);
  EXPECT_EQ(stored.lorenz96.prior, Lorenz96Prior::kGaussian);
  AmortizedSetup current;
  apply_definition(current, problem_entries(stored.lorenz96), "--model new.nc");
  EXPECT_EQ(problem_entries(current.lorenz96), problem_entries(stored.lorenz96));
  EXPECT_EQ(to_string(Lorenz96ProblemOptions{}.prior), "climatology");  // the default
}

}  // namespace
}  // namespace varflow::amortized
