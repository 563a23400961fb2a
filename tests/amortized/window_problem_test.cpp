// The window problem: the gaussian prior's statistics, the climatological prior unchanged, the
// injected simulation model, the options' validation messages, and windows of other registered
// models (Lorenz-63, two-scale Lorenz-96) with their `model:` keys.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <unistd.h>

#include "../test_messages.h"
#include "varflow/amortized/config.h"
#include "varflow/amortized/problems.h"
#include "varflow/core/error.h"
#include "varflow/model/lorenz96.h"
#include "varflow/obs/operators.h"
#include "varflow/testing/conformance.h"
#include "varflow/var/incremental_4dvar.h"

namespace varflow::amortized {
namespace {

using test::message_of;

WindowProblemOptions gaussian_options(double sd) {
  WindowProblemOptions o;
  o.model.parameters["n"] = 10;
  o.window = 4;
  o.obs_every = 2;
  o.missing = 0.0;
  o.obs_stride = 1;
  o.spinup = 300;
  o.prior = WindowPrior::kGaussian;
  o.prior_sd = sd;
  return o;
}

// x0 = c + prior_sd N(0, I): per-component means within 4 standard errors of c, and the pooled
// standard deviation within 3% of prior_sd (sd 2 is used so that a variance taken for an sd, or a
// unit sd, is far outside: 4 or 1 against 2).
TEST(WindowProblem, GaussianPriorHasMeanCenterAndStandardDeviationPriorSd) {
  Rng rng = testing::seeded_rng(2101);
  const double sd = 2.0;
  const WindowProblem problem(gaussian_options(sd));
  const Index n = 8000;
  const Dataset d = problem.simulate(n, rng);
  const Vector c = problem.center();
  ASSERT_EQ(c.size(), 10);
  EXPECT_EQ(c, WindowProblem::gaussian_center(problem.options()));  // deterministic
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
  WindowProblemOptions other = problem.options();
  other.prior_seed += 1;
  EXPECT_GT((WindowProblem::gaussian_center(other) - c).norm(), 1.0);
}

// The default (climatological) prior draws exactly what the original simulator drew: one long
// physics run from a perturbed rest state, states every `decorrelation` steps, observations along
// the trajectory. Reimplemented here step by step and compared bit for bit.
TEST(WindowProblem, ClimatologicalPriorIsUnchanged) {
  WindowProblemOptions o;
  o.model.parameters["n"] = 12;
  o.spinup = 100;
  const WindowProblem problem(o);
  EXPECT_EQ(problem.center().size(), 0);
  Rng a(77), b(77);
  const Dataset d = problem.simulate(5, a);
  const Index n = 12;
  const double forcing = o.model.parameter("forcing"), dt = o.model.parameter("dt");
  const Lorenz96 model(n, forcing, dt);
  const IdentityObservation h(n);
  Vector state = Vector::Constant(n, forcing) + 0.01 * b.normal_vector(n);
  for (Index k = 0; k < o.spinup; ++k) model.step(state);
  Vector y;
  for (Index j = 0; j < 5; ++j) {
    for (Index k = 0; k < o.decorrelation; ++k) model.step(state);
    ASSERT_EQ(Vector(d.x.col(j)), state);
    Vector x = state;
    for (Index step = 0, slot = 0; step <= o.window; ++step) {
      if (step % o.obs_every == 0) {
        h.apply(x, y);
        for (Index i = 0; i < n; ++i) {
          const bool observed = i % o.obs_stride == 0 && b.uniform() >= o.missing;
          const double noise = o.obs_noise * b.normal();
          const double expected = observed ? y[i] + noise : std::nan("");
          const double got = d.y(slot * n + i, j);
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

// The background prior: y starts with a climatological state x_b (exact), x0 = x_b + prior_sd N(0, I),
// observations from step obs_first along the trajectory from x0; window(y) has x_b as its
// background and the observation slots at obs_first, obs_first + obs_every, ...; labels include the
// background's sensitivity and match central differences of the MAP.
TEST(WindowProblem, BackgroundPriorCarriesTheBackgroundInY) {
  WindowProblemOptions o = gaussian_options(0.5);
  o.prior = WindowPrior::kBackground;
  o.window = 8;
  o.obs_every = 4;
  o.obs_first = 4;
  const WindowProblem problem(o);
  const Index n = 10;
  const ProblemShape sh = problem.shape();
  EXPECT_EQ(sh.obs_slots, 3);
  EXPECT_EQ(sh.obs_size, 30);
  EXPECT_EQ(problem.background_size(), n);
  EXPECT_EQ(problem.observation_slots(), 2);
  EXPECT_NE(problem.describe().find("from step 4"), std::string::npos) << problem.describe();
  EXPECT_NE(problem.describe().find("background prior (sd 0.5"), std::string::npos) << problem.describe();
  Rng rng = testing::seeded_rng(2105);
  const Index pairs = 4000;
  const Dataset d = problem.simulate(pairs, rng);
  ASSERT_TRUE(d.y.topRows(n).allFinite());
  const Matrix e = d.x - d.y.topRows(n);
  const double pooled_sd = std::sqrt(e.squaredNorm() / static_cast<double>(e.size()));
  EXPECT_NEAR(pooled_sd, 0.5, 0.015);
  // The backgrounds are attractor states (spread like the climatology, sd ~3.6), not one centre.
  const Vector bg_mean = d.y.topRows(n).rowwise().mean();
  const double bg_sd = std::sqrt((d.y.topRows(n).colwise() - bg_mean).squaredNorm() / static_cast<double>(n * pairs));
  std::cout << "background prior: pooled sd of x0 - x_b " << pooled_sd << ", climatological sd of x_b " << bg_sd << "\n";
  EXPECT_GT(bg_sd, 2.0);
  // Slot 1 is the state at step 4 plus noise: 4D-Var of window(y) reads the same numbers.
  const Lorenz96 model(n, o.model.parameter("forcing"), o.model.parameter("dt"));
  Vector x = d.x.col(0);
  for (Index k = 0; k < 4; ++k) model.step(x);
  EXPECT_LT((d.y.col(0).segment(n, n) - x).cwiseAbs().maxCoeff(), 5.0 * o.obs_noise);
  const AssimilationWindow w = problem.window(d.y.col(0));
  EXPECT_EQ(w.background, Vector(d.y.col(0).head(n)));
  ASSERT_EQ(w.observations.size(), 2u);
  EXPECT_EQ(w.observations[0].step, 4);
  EXPECT_EQ(w.observations[1].step, 8);
  EXPECT_EQ(w.observations[1].values, Vector(d.y.col(0).tail(n)));
  // A missing background is refused.
  Vector bad = d.y.col(0);
  bad[3] = std::nan("");
  EXPECT_NE(message_of([&] { (void)problem.window(bad); }).find("the background (the first slot of y)"), std::string::npos);
  // Labels: J dy by the exact sensitivity, with the background's part, against central differences.
  ASSERT_TRUE(problem.has_oracle_labels());
  const Vector y = d.y.col(1);
  const Matrix dy = rng.normal_matrix(sh.obs_size, 2);
  const Simulator::PairLabels l = problem.label_pair(y, 1, dy);
  auto map = [&](const Vector& yy) {
    GaussNewtonOptions g;
    g.gradient_tolerance = 1e-12;
    g.max_outer_iterations = 50;
    g.posterior = PosteriorMethod::kNone;
    g.hessian = OuterHessian::kNewton;
    return IncrementalFourDVar(g).solve(problem.window(yy)).analysis;
  };
  EXPECT_LT((l.mean - map(y)).norm(), 1e-6 * l.mean.norm());
  for (Index p = 0; p < 2; ++p) {
    const double h = 1e-4;
    const Vector fd = (map(y + h * dy.col(p)) - map(y - h * dy.col(p))) / (2.0 * h);
    const double error = (l.dx.col(p) - fd).norm() / fd.norm();
    std::cout << "  label probe " << p << ": ||J dy - central difference|| / ||cd|| = " << error << "\n";
    EXPECT_LT(error, 5e-3);
  }
  // A two-scale model cannot carry its background in a slot of its resolved grid.
  AmortizedSetup two_scale_setup = default_setup("window", HeadType::kGaussian);
  apply_entry(two_scale_setup, "model.name", "lorenz96_two_scale");
  apply_entry(two_scale_setup, "model.j", "4");
  apply_entry(two_scale_setup, "background.prior", "background");
  const WindowProblemOptions two = two_scale_setup.window_problem;
  const std::string two_scale = message_of([&] { WindowProblem p(two); });
  EXPECT_NE(two_scale.find("needs a single-scale model"), std::string::npos) << two_scale;
  // obs_first beyond the window is refused by name.
  WindowProblemOptions late = o;
  late.obs_first = 9;
  EXPECT_NE(message_of([&] { late.validate(); }).find("observations.first_step = 9 must be in [0, "), std::string::npos);
}

// Variance labels are the Laplace oracle's marginal variances: the dense Gauss-Newton posterior of
// the 4D-Var solver at the same MAP (10% of the values missing, as by default); label_variances()
// fills them for the labelled pairs only and the linear-gaussian problem gives its exact variance.
TEST(WindowProblem, VarianceLabelsAreTheLaplaceOraclesMarginalVariances) {
  WindowProblemOptions o = gaussian_options(1.0);
  o.model.parameters["n"] = 12;
  o.missing = 0.1;
  const WindowProblem problem(o);
  ASSERT_TRUE(problem.has_variance_labels());
  Rng rng = testing::seeded_rng(1402);
  Dataset d = problem.simulate(4, rng);
  problem.label(d, 3, 1, rng);
  const Simulator::LabelReport report = problem.label_variances(d);
  EXPECT_EQ(report.labelled, 3);
  ASSERT_EQ(d.labels.variance.cols(), 4);
  EXPECT_TRUE(d.labels.variance.col(3).array().isNaN().all());  // the unlabelled pair
  GaussNewtonOptions g;
  g.gradient_tolerance = 1e-12;
  g.posterior = PosteriorMethod::kDense;
  for (Index j = 0; j < 3; ++j) {
    const VarResult r = IncrementalFourDVar(g).solve(problem.window(d.y.col(j)));
    const Vector oracle = r.posterior->marginal_std().array().square();
    const double error = ((d.labels.variance.col(j) - oracle).cwiseQuotient(oracle)).cwiseAbs().maxCoeff();
    std::cout << "pair " << j << ": variance label against the dense Laplace posterior, max relative difference "
              << error << " (variances " << oracle.minCoeff() << " .. " << oracle.maxCoeff() << ")\n";
    EXPECT_LT(error, 1e-6);
  }
  EXPECT_NO_THROW(d.validate(problem.shape()));
  Dataset bad = d;
  bad.labels.variance(2, 1) = -1.0;
  EXPECT_NE(message_of([&] { bad.validate(problem.shape()); }).find("labels.variance(2, 1) = -1 must be > 0"),
            std::string::npos);

  const LinearGaussian linear(3, 0.1, 0.1);
  Dataset l = linear.simulate(2, rng);
  linear.label(l, 2, 1, rng);
  linear.label_variances(l);
  EXPECT_NEAR(l.labels.variance(1, 1), 0.05, 1e-15);
  Dataset moons = TwoMoons().simulate(2, rng);
  EXPECT_NE(message_of([&] { TwoMoons().label_variances(moons); }).find("labels.variance_weight must be 0"),
            std::string::npos);
  WindowProblemOptions climatology = o;
  climatology.prior = WindowPrior::kClimatology;
  EXPECT_FALSE(WindowProblem(climatology).has_variance_labels());
}

// The observations follow the injected model: the same draws with Lorenz-96 of another forcing give
// the same x0 and step-0 observations but different later ones; an identical model gives identical pairs.
TEST(WindowProblem, InjectedModelSimulatesTheObservations) {
  const WindowProblemOptions o = gaussian_options(1.0);
  const WindowProblem physics(o);
  const Index n = 10;
  const double dt = o.model.parameter("dt");
  const WindowProblem same(o, std::make_shared<Lorenz96>(n, o.model.parameter("forcing"), dt));
  const WindowProblem other(o, std::make_shared<Lorenz96>(n, 9.0, dt));
  EXPECT_EQ(physics.center(), other.center());  // the prior comes from the physics
  EXPECT_NE(other.describe().find("simulated with lorenz96(n=10, F=9"), std::string::npos) << other.describe();
  EXPECT_EQ(physics.describe().find("simulated with"), std::string::npos) << physics.describe();
  Rng r1(5), r2(5), r3(5);
  const Dataset a = physics.simulate(20, r1), b = same.simulate(20, r2), c = other.simulate(20, r3);
  EXPECT_EQ(a.x, b.x);
  EXPECT_EQ(a.y, b.y);
  EXPECT_EQ(a.x, c.x);
  EXPECT_EQ(a.y.topRows(n), c.y.topRows(n));  // step 0: before any model step
  const double diff = (a.y.bottomRows(n) - c.y.bottomRows(n)).cwiseAbs().mean();
  std::cout << "mean |y(F=8) - y(F=9)| at step 4: " << diff << "\n";
  EXPECT_GT(diff, 0.05);
}

TEST(WindowProblem, OptionsAndModelAreValidatedWithClearMessages) {
  WindowProblemOptions o = gaussian_options(1.0);
  const std::string wrong_size =
      message_of([&] { WindowProblem p(o, std::make_shared<Lorenz96>(12, 8.0, 0.05)); });
  EXPECT_NE(wrong_size.find("state size 12, but model lorenz96 has 10"), std::string::npos) << wrong_size;
  o.prior_sd = 0.0;
  const std::string sd = message_of([&] { WindowProblem p(o); });
  EXPECT_NE(sd.find("window problem: background.variance: standard deviation prior_sd = 0 must be positive"),
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
  EXPECT_EQ(s.window_problem.prior, WindowPrior::kGaussian);
  EXPECT_EQ(s.window_problem.prior_sd, 0.5);
  EXPECT_EQ(s.window_problem.obs_noise, 2.0);
  EXPECT_EQ(s.window_problem.prior_seed, 123u);
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
  EXPECT_EQ(s.window_problem.obs_noise, 2.0);  // a refused value leaves the setting alone

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
  EXPECT_EQ(stored.window_problem.model.parameter("n"), 12);
  EXPECT_EQ(stored.window_problem.obs_noise, 0.5);
  EXPECT_EQ(stored.window_problem.prior_sd, 3.0);
  EXPECT_EQ(stored.window_problem.prior, WindowPrior::kGaussian);
  AmortizedSetup current;
  apply_definition(current, problem_entries(stored.window_problem), "--model new.nc");
  EXPECT_EQ(problem_entries(current.window_problem), problem_entries(stored.window_problem));
  EXPECT_EQ(to_string(WindowProblemOptions{}.prior), "climatology");  // the default
}

// Any registered model is a window problem: Lorenz-63 (the `window` problem's default) observed in x
// and z. The observations at step 0 are x0 plus noise where observed and NaN elsewhere, and 4D-Var of
// the problem's window (its oracle) brings the state closer to the truth than the background.
TEST(WindowProblem, Lorenz63WindowIsAProblemWithA4DVarOracle) {
  const AmortizedSetup setup = default_setup("window", HeadType::kGaussian);
  EXPECT_EQ(setup.window_problem.model.name, "lorenz63");
  const auto problem = find_problem("window").make(setup);
  EXPECT_EQ(problem->name(), "window");
  EXPECT_NE(problem->describe().find("window: model lorenz63 (sigma = 10, rho = 28,"), std::string::npos)
      << problem->describe();
  const ProblemShape sh = problem->shape();
  EXPECT_EQ(sh.state_size, 3);
  EXPECT_EQ(sh.obs_slots, 16 / 4 + 1);
  EXPECT_EQ(sh.obs_size, 3 * sh.obs_slots);
  Rng rng = testing::seeded_rng(2104);
  const Dataset d = problem->simulate(40, rng);
  const auto& window_problem = dynamic_cast<const WindowProblem&>(*problem);
  double background_error = 0.0, analysis_error = 0.0;
  for (Index j = 0; j < d.size(); ++j) {
    EXPECT_TRUE(std::isnan(d.y(1, j)));  // stride 2: y is not observed
    EXPECT_LT(std::abs(d.y(0, j) - d.x(0, j)), 5.0 * window_problem.options().obs_noise);
    const AssimilationWindow w = window_problem.window(d.y.col(j));
    GaussNewtonOptions options;
    options.posterior = PosteriorMethod::kNone;
    SolverSummary summary;
    const VarResult r = IncrementalFourDVar(options).solve(w, &summary);
    ASSERT_TRUE(summary.converged()) << summary.BriefReport();
    background_error += (w.background - d.x.col(j)).squaredNorm();
    analysis_error += (r.analysis - d.x.col(j)).squaredNorm();
  }
  std::cout << "lorenz63 window: rms background error " << std::sqrt(background_error / 120.0)
            << ", rms analysis error " << std::sqrt(analysis_error / 120.0) << "\n";
  EXPECT_LT(analysis_error, 0.5 * background_error);
  // The problem's labels (4D-Var MAP and exact sensitivity) work for it too.
  Dataset labelled = problem->simulate(3, rng);
  problem->label(labelled, 3, 2, rng);
  EXPECT_TRUE(labelled.labels.mean.allFinite());
  EXPECT_TRUE(labelled.labels.dx.allFinite());
}

// A multi-scale model: only its resolved (slow) variables are observed; the state is the full one.
TEST(WindowProblem, TwoScaleLorenz96ObservesTheResolvedVariables) {
  AmortizedSetup s = default_setup("window", HeadType::kGaussian);
  apply_entry(s, "model.name", "lorenz96_two_scale");
  apply_entry(s, "model.j", "4");
  apply_entry(s, "cycling.window_steps", "4");
  apply_entry(s, "observations.every_steps", "2");
  apply_entry(s, "observations.stride", "1");
  const auto problem = find_problem("window").make(s);
  const ProblemShape sh = problem->shape();
  EXPECT_EQ(sh.state_size, 8 * (4 + 1));
  EXPECT_EQ(sh.obs_grid, 8);
  EXPECT_EQ(sh.obs_size, 8 * 3);
  Rng rng = testing::seeded_rng(2105);
  const Dataset d = problem->simulate(200, rng);
  // Step 0: y = the slow variables + N(0, obs_noise^2).
  const Matrix noise = d.y.topRows(8) - d.x.topRows(8);
  const double sd = std::sqrt(noise.squaredNorm() / static_cast<double>(noise.size()));
  std::cout << "two-scale window: step-0 observation noise sd " << sd << "\n";
  EXPECT_NEAR(sd, 1.0, 0.05);
}

// The model: section in train configs: model.name first (whatever its place in the file), then that
// model's options; unknown options are named with the model's list; the lorenz96 problem keeps to
// Lorenz-96; definitions round-trip.
TEST(WindowProblem, ModelKeysSelectAnyRegisteredModel) {
  AmortizedSetup s;
  EXPECT_EQ(s.window_problem.model.name, "lorenz96");
  const std::string unknown = message_of([&] { apply_entry(s, "model.sigma", "3", "config c.yaml"); });
  EXPECT_NE(unknown.find("config c.yaml: unknown key 'model.sigma': model lorenz96 has n, forcing, dt"),
            std::string::npos)
      << unknown;
  const std::string not_integer = message_of([&] { apply_entry(s, "model.n", "12.5", "config c.yaml"); });
  EXPECT_NE(not_integer.find("config c.yaml: model.n = '12.5' is not an integer"), std::string::npos) << not_integer;
  const std::string bad_model = message_of([&] { apply_entry(s, "model.name", "lorenz95", "config c.yaml"); });
  EXPECT_NE(bad_model.find("model name = 'lorenz95' is not one of: lorenz96"), std::string::npos) << bad_model;

  const auto path = std::filesystem::temp_directory_path() / ("window_keys_" + std::to_string(::getpid()) + ".yaml");
  std::ofstream(path) << "model:\n  dt: 0.005\n  name: lorenz63\n";
  AmortizedSetup from_file = default_setup("lorenz96", HeadType::kGaussian);
  load_setup_yaml(path.string(), from_file);
  std::filesystem::remove(path);
  EXPECT_EQ(from_file.window_problem.model.name, "lorenz63");
  EXPECT_EQ(from_file.window_problem.model.parameter("dt"), 0.005);  // set after the name, as meant
  const auto entries = problem_entries(from_file.window_problem);
  ASSERT_GE(entries.size(), 5u);
  EXPECT_EQ(entries[0], (std::pair<std::string, std::string>{"model.name", "lorenz63"}));
  EXPECT_EQ(entries[4], (std::pair<std::string, std::string>{"model.dt", "0.005"}));
  EXPECT_EQ(entry_value(from_file, "model.rho"), "28");
  EXPECT_TRUE(is_problem_key("model.rho"));

  const std::string wrong_problem = message_of([&] { find_problem("lorenz96").make(from_file); });
  EXPECT_NE(wrong_problem.find("problem lorenz96: model.name = lorenz63 is not lorenz96; use the problem 'window'"),
            std::string::npos)
      << wrong_problem;
  // A stored definition rebuilds the same problem, in any entry order.
  auto shuffled = entries;
  std::reverse(shuffled.begin(), shuffled.end());
  AmortizedSetup rebuilt = default_setup("window", HeadType::kGaussian);
  apply_entry(rebuilt, "model.name", "lorenz96_two_scale");
  apply_definition(rebuilt, shuffled, "--model m.nc");
  EXPECT_EQ(problem_entries(rebuilt.window_problem), entries);
  // The lorenz96 model under the window problem is the lorenz96 problem.
  AmortizedSetup l96 = default_setup("window", HeadType::kGaussian);
  apply_entry(l96, "model.name", "lorenz96");
  EXPECT_EQ(find_problem("window").make(l96)->name(), "lorenz96");
}

}  // namespace
}  // namespace varflow::amortized
