// The validation report: the oracles against independent computations, and the gates end to end on
// a trained linear-Gaussian model (passes) and on deliberately broken copies of it (fail, reported).
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "varflow/report/oracles.h"
#include "varflow/core/error.h"
#include "varflow/amortized/amortized_posterior.h"
#include "varflow/report/validation_report.h"
#include "varflow/testing/conformance.h"
#include "varflow/validation/linearization_checks.h"
#include "../test_messages.h"

namespace varflow {
namespace {

using amortized::AmortizedPosterior;
using amortized::HeadType;
using report::ValidationOptions;

// Small but valid settings for the end-to-end tests (the gates' thresholds are the defaults).
ValidationOptions quick_options() {
  ValidationOptions o;
  o.events = 5;
  o.posterior_draws = 400;
  o.jacobian_cases = 2;
  return o;
}

// Importance sampling from the exact prior (an independent route to the two-moons posterior):
// weights N(y; x1 + x2, 0.1^2) on prior draws.
TEST(TwoMoonsOracle, GridPosteriorMatchesImportanceSamplingFromThePrior) {
  Rng rng = testing::seeded_rng(11);
  const auto oracle = report::make_oracle("two-moons", {2, 1, 1, 0}, ValidationOptions{});
  const Matrix x = amortized::TwoMoons::sample_prior(400000, rng);
  for (const double y : {-1.5, 0.0, 0.7}) {
    Vector w(x.cols());
    for (Index j = 0; j < x.cols(); ++j) {
      const double d = (x(0, j) + x(1, j) - y) / amortized::TwoMoons::kObsNoise;
      w[j] = std::exp(-0.5 * d * d);
    }
    w /= w.sum();
    const double ess = 1.0 / w.squaredNorm();
    const Vector mean = x * w;
    const Vector sd = ((x.colwise() - mean).array().square().matrix() * w).array().sqrt();
    const auto p = oracle->posterior(Vector::Constant(1, y));
    // Monte Carlo standard error sd / sqrt(ess) (ess > 10^4 here): 5 errors on the mean, 5% on the spread.
    ASSERT_GT(ess, 1e4) << "y = " << y;
    for (Index i = 0; i < 2; ++i) {
      EXPECT_NEAR(p->mean()[i], mean[i], 5.0 * sd[i] / std::sqrt(ess) + 0.01) << "y = " << y << ", component " << i;
      EXPECT_NEAR(p->marginal_std()[i] / sd[i], 1.0, 0.05) << "y = " << y << ", component " << i;
    }
    // The oracle's draws reproduce its own moments.
    const Matrix draws = p->samples(20000, rng);
    const Vector dm = draws.rowwise().mean();
    EXPECT_LT((dm - p->mean()).cwiseQuotient(p->marginal_std()).cwiseAbs().maxCoeff(), 0.05);
  }
  // J = d mean / dy sums to about 1 in x1 + x2 where the likelihood dominates (y far from 0 the
  // posterior is a narrow band along one moon); here only check that both sides are finite and that
  // the JVP and VJP are transposes.
  const JacobianOperator j = oracle->jacobian(Vector::Constant(1, 0.7));
  const Vector jv = j.jvp(Vector::Ones(1));
  const Vector w = Vector::Constant(2, 1.0);
  EXPECT_TRUE(jv.allFinite());
  EXPECT_NEAR(j.vjp(w)[0], jv.sum(), 1e-12);
}

TEST(LinearGaussianOracle, ExactPosteriorAndSensitivity) {
  const auto oracle = report::make_oracle("linear-gaussian", {10, 10, 1, 0}, ValidationOptions{});
  Vector y = Vector::LinSpaced(10, -1.0, 1.0);
  const auto p = oracle->posterior(y);
  EXPECT_LT((p->mean() - 0.5 * y).norm(), 1e-14);
  EXPECT_LT((p->marginal_std().array() - std::sqrt(0.05)).abs().maxCoeff(), 1e-14);
  EXPECT_LT((oracle->jacobian(y).jvp(y) - 0.5 * y).norm(), 1e-14);
  EXPECT_LT((oracle->prior_variance().array() - 0.1).abs().maxCoeff(), 1e-14);
}

TEST(Oracles, UnknownProblemOrWrongShapeNamesIt) {
  try {
    report::make_oracle("lorenz63", {3, 3, 1, 0}, ValidationOptions{});
    FAIL() << "no exception";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("lorenz63"), std::string::npos) << e.what();
  }
  EXPECT_THROW(report::make_oracle("linear-gaussian", {10, 5, 1, 0}, ValidationOptions{}), InvalidArgument);
}

// A Lorenz-96 window oracle's options at n = 12 (every point observed, spin-up 300): the prior, its
// sd, the window, the observation interval and first step, the missing fraction and the noise sd.
ValidationOptions window_oracle_options(amortized::WindowPrior prior, double prior_sd, Index window, Index every,
                                        Index first, double missing, double noise) {
  ValidationOptions o;
  amortized::WindowProblemOptions& w = o.window_problem;
  w.model.parameters["n"] = 12;
  w.window = window;
  w.obs_every = every;
  w.obs_first = first;
  w.obs_stride = 1;
  w.missing = missing;
  w.obs_noise = noise;
  w.spinup = 300;
  w.prior = prior;
  w.prior_sd = prior_sd;
  return o;
}

// The lorenz96 oracle of `o`'s window problem with the Jacobian `jacobian`.
std::unique_ptr<report::Oracle> window_oracle(ValidationOptions o, report::OracleJacobian jacobian) {
  o.window_jacobian = jacobian;
  return report::make_oracle("lorenz96", amortized::WindowProblem(o.window_problem).shape(), o);
}

// The mean squared z-score (x - mean) / sd of the oracle's posteriors at the pairs' y, over every
// component of every pair: ~1 for a calibrated oracle.
double mean_squared_z(report::Oracle& oracle, const amortized::Dataset& d) {
  double z2 = 0.0;
  for (Index e = 0; e < d.size(); ++e) {
    const auto p = oracle.posterior(d.y.col(e));
    z2 += (d.x.col(e) - p->mean()).cwiseQuotient(p->marginal_std()).squaredNorm();
  }
  return z2 / static_cast<double>(d.x.size());
}

// The 4D-Var oracle's sensitivity J v (adjoint and Laplace covariance, no finite differences)
// against central differences of its MAP in y. Gauss-Newton omits second-derivative terms of size
// ~ departures x curvature, so agreement is to a few percent (with small observation noise), not to
// rounding.
TEST(Lorenz96Oracle, SensitivityMatchesFiniteDifferencesOfTheMap) {
  Rng rng = testing::seeded_rng(21);
  ValidationOptions o;
  o.window_problem.model.parameters["n"] = 12;
  o.window_problem.missing = 0.0;
  // Small departures: the second-derivative terms Gauss-Newton omits are ~ departures x curvature
  // (with the problem's obs_noise = 1 the difference is ~20%, see design/report.md).
  o.window_problem.obs_noise = 0.1;
  o.prior_variance_draws = 2000;
  const amortized::WindowProblem problem(o.window_problem);
  const auto oracle = report::make_oracle("lorenz96", problem.shape(), o);
  const Vector y = problem.simulate(1, rng).y.col(0);
  const JacobianOperator j = oracle->jacobian(y);
  Vector v = rng.normal_vector(y.size());
  for (Index i = 0; i < v.size(); ++i)
    if (!std::isfinite(y[i])) v[i] = 0.0;  // unobserved points
  v.normalize();
  const double h = 1e-3;
  const Vector fd = (oracle->posterior(y + h * v)->mean() - oracle->posterior(y - h * v)->mean()) / (2.0 * h);
  const Vector jv = j.jvp(v);
  const double error = (jv - fd).norm() / fd.norm();
  std::cout << "||J v - finite difference|| / ||finite difference|| = " << error << "\n";
  EXPECT_LT(error, 0.05) << "J v = " << jv.transpose() << "\nfd = " << fd.transpose();
  // Posterior spread below the prior's: the observations inform the state.
  const Vector sd = oracle->posterior(y)->marginal_std();
  EXPECT_LT(sd.array().square().mean(), oracle->prior_variance().mean());
}

// The gaussian prior: the oracle's background is the simulator's prior exactly (prior variances
// prior_sd^2), so with small observation noise (the Laplace approximation nearly exact) its posterior
// is calibrated against the simulated truths: mean squared z-score ~ 1 over 30 events x 12
// components. Its two Jacobians agree there (Gauss-Newton omits terms ~ departures), and the
// map-differences J is the derivative of its mean: a separate central difference along a probe.
TEST(Lorenz96Oracle, GaussianPriorOracleIsCalibratedAndItsJacobiansAgree) {
  Rng rng = testing::seeded_rng(22);
  const ValidationOptions o = window_oracle_options(amortized::WindowPrior::kGaussian, 1.5, 4, 2, 0, 0.0, 0.1);
  const amortized::WindowProblem problem(o.window_problem);
  const auto oracle = window_oracle(o, report::OracleJacobian::kGaussNewton);
  const auto oracle_fd = window_oracle(o, report::OracleJacobian::kMapDifferences);
  EXPECT_EQ(oracle->prior_variance(), Vector::Constant(12, 1.5 * 1.5));
  EXPECT_NE(oracle->describe().find("exact prior"), std::string::npos) << oracle->describe();
  EXPECT_NE(oracle_fd->describe().find("central differences of the MAP"), std::string::npos) << oracle_fd->describe();
  const amortized::Dataset d = problem.simulate(30, rng);
  const double z2 = mean_squared_z(*oracle, d);
  std::cout << "gaussian-prior oracle, obs_noise 0.1: mean squared z-score " << z2 << " over " << d.x.size() << "\n";
  EXPECT_GT(z2, 0.7);
  EXPECT_LT(z2, 1.3);
  const Vector y = d.y.col(0);
  const JacobianOperator jg = oracle->jacobian(y), jf = oracle_fd->jacobian(y);
  ASSERT_EQ(jf.input_size, y.size());
  ASSERT_EQ(jf.output_size, 12);
  const Vector v = rng.normal_vector(y.size()).normalized();
  const Vector a = jf.jvp(v), b = jg.jvp(v);
  const double h = 1e-3;
  const Vector direct = (oracle->posterior(y + h * v)->mean() - oracle->posterior(y - h * v)->mean()) / (2.0 * h);
  std::cout << "  ||J_gn v - J_fd v|| / ||J_fd v|| = " << (b - a).norm() / a.norm()
            << ", ||J_fd v - direct|| / ||direct|| = " << (a - direct).norm() / direct.norm() << "\n";
  EXPECT_LT((b - a).norm() / a.norm(), 0.02);
  EXPECT_LT((a - direct).norm() / direct.norm(), 1e-4);
  // Adjoint of the dense J.
  const Vector w = rng.normal_vector(12);
  EXPECT_NEAR(w.dot(jf.jvp(v)), jf.vjp(w).dot(v), 1e-12 * (1.0 + std::abs(w.dot(a))));
}

// The exact oracle J (full-Hessian sensitivity) is the derivative of the oracle's MAP: it matches the
// map-differences J where Gauss-Newton does not (obs_noise = 1, the step-5 window at n = 12).
TEST(Lorenz96Oracle, ExactJacobianMatchesMapDifferences) {
  Rng rng = testing::seeded_rng(23);
  // 20% missing: masked values take no part.
  const ValidationOptions o = window_oracle_options(amortized::WindowPrior::kGaussian, 1.0, 4, 2, 0, 0.2, 1.0);
  const amortized::WindowProblem problem(o.window_problem);
  const auto oracle_ex = window_oracle(o, report::OracleJacobian::kExact);
  const auto oracle_fd = window_oracle(o, report::OracleJacobian::kMapDifferences);
  const auto oracle_gn = window_oracle(o, report::OracleJacobian::kGaussNewton);
  EXPECT_NE(oracle_ex->describe().find("ExactObservationSensitivity"), std::string::npos) << oracle_ex->describe();
  const Vector y = problem.simulate(1, rng).y.col(0);
  const JacobianOperator je = oracle_ex->jacobian(y), jf = oracle_fd->jacobian(y), jg = oracle_gn->jacobian(y);
  ASSERT_EQ(je.input_size, y.size());
  ASSERT_EQ(je.output_size, 12);
  Vector v = rng.normal_vector(y.size());
  for (Index i = 0; i < v.size(); ++i)
    if (!std::isfinite(y[i])) v[i] = 0.0;
  const Vector a = jf.jvp(v), b = je.jvp(v), c = jg.jvp(v);
  const double exact_error = (b - a).norm() / a.norm(), gn_error = (c - a).norm() / a.norm();
  std::cout << "  ||J_exact v - J_fd v|| / ||J_fd v|| = " << exact_error
            << ", ||J_gn v - J_fd v|| / ||J_fd v|| = " << gn_error << "\n";
  // map-differences: step 1e-2 x obs_noise, truncation O(1e-4); the MAP to the solver's tolerance.
  EXPECT_LT(exact_error, 5e-3);
  EXPECT_GT(gn_error, 5.0 * exact_error);
  // J^T is the adjoint of J to round-off (the dense matrix from one CG solve per row), as the
  // adjoint-calibration gate's dot-product test of the oracle's pair (tolerance 1e-12) requires.
  const Vector w = rng.normal_vector(12);
  const DotProductResult dot = dot_product_test(je.jvp, je.vjp, v, w, LinearizationTolerances{});
  EXPECT_TRUE(dot.passed) << dot.report();
}

// The background prior (a cycled analysis: y carries the background x_b in its first slot, B =
// prior_sd^2 I about it, observations from step obs_first): the exact and Gauss-Newton Jacobians
// include d mean / d x_b, the exact one matches the map differences in background and observation
// directions alike, both are adjoint to their transposes, and with small observation noise the
// oracle is calibrated against the simulated truths.
TEST(Lorenz96Oracle, BackgroundPriorJacobianIncludesTheBackground) {
  Rng rng = testing::seeded_rng(24);
  const ValidationOptions o =
      window_oracle_options(amortized::WindowPrior::kBackground, std::sqrt(0.4), 8, 4, 4, 0.1, 1.0);
  const amortized::WindowProblem problem(o.window_problem);
  ASSERT_EQ(problem.background_size(), 12);
  ASSERT_EQ(problem.shape().obs_slots, 3);  // the background, steps 4 and 8
  const auto oracle_ex = window_oracle(o, report::OracleJacobian::kExact);
  const auto oracle_fd = window_oracle(o, report::OracleJacobian::kMapDifferences);
  const auto oracle_gn = window_oracle(o, report::OracleJacobian::kGaussNewton);
  EXPECT_NE(oracle_ex->describe().find("the background in y"), std::string::npos) << oracle_ex->describe();
  EXPECT_EQ(oracle_ex->prior_variance(), Vector::Constant(12, 0.4));
  const Vector y = problem.simulate(1, rng).y.col(0);
  const JacobianOperator je = oracle_ex->jacobian(y), jf = oracle_fd->jacobian(y), jg = oracle_gn->jacobian(y);
  ASSERT_EQ(je.input_size, y.size());
  ASSERT_EQ(jg.input_size, y.size());
  // A background direction alone, an observation direction alone, and both.
  Vector vb = Vector::Zero(y.size()), vo = rng.normal_vector(y.size());
  vb.head(12) = rng.normal_vector(12);
  vo.head(12).setZero();
  for (Index i = 0; i < y.size(); ++i)
    if (!std::isfinite(y[i])) vo[i] = 0.0;
  for (const Vector& v : {vb, vo, Vector(vb + vo)}) {
    const Vector a = jf.jvp(v), b = je.jvp(v), c = jg.jvp(v);
    const double exact_error = (b - a).norm() / a.norm(), gn_error = (c - a).norm() / a.norm();
    std::cout << "  background prior: ||J_exact v - J_fd v|| / ||J_fd v|| = " << exact_error
              << ", Gauss-Newton " << gn_error << ", ||J v|| = " << a.norm() << "\n";
    EXPECT_GT(a.norm(), 1e-2 * v.norm());  // the mean depends on both parts of y
    EXPECT_LT(exact_error, 5e-3);
    EXPECT_LT(gn_error, 0.5);
  }
  const Vector v = vb + vo, w = rng.normal_vector(12);
  for (const JacobianOperator* j : {&je, &jg}) {
    const DotProductResult dot = dot_product_test(j->jvp, j->vjp, v, w, LinearizationTolerances{});
    EXPECT_TRUE(dot.passed) << dot.report();
  }
  // Calibration with small observation noise (the Laplace posterior nearly exact).
  ValidationOptions small = o;
  small.window_problem.obs_noise = 0.1;
  const amortized::WindowProblem small_problem(small.window_problem);
  const auto oracle_small = window_oracle(small, report::OracleJacobian::kGaussNewton);
  const amortized::Dataset d = small_problem.simulate(30, rng);
  const double z2 = mean_squared_z(*oracle_small, d);
  std::cout << "background-prior oracle, obs_noise 0.1: mean squared z-score " << z2 << " over " << d.x.size() << "\n";
  EXPECT_GT(z2, 0.7);
  EXPECT_LT(z2, 1.3);
}

TEST(ValidationOptions, MapDifferenceStepAndProblemAreChecked) {
  ValidationOptions o;
  std::string error;
  o.map_difference_step = 0.0;
  error = test::message_of([&] { o.validate(); });
  EXPECT_NE(error, "(no exception)");
  EXPECT_NE(error.find("map_difference_step = 0 must be in (0, 1)"), std::string::npos) << error;
  o = ValidationOptions{};
  o.window_problem.prior_sd = 0.0;
  error = test::message_of([&] { o.validate(); });
  EXPECT_NE(error, "(no exception)");
  EXPECT_NE(error.find("prior_sd = 0"), std::string::npos) << error;
  EXPECT_EQ(report::oracle_jacobian_from_string("map-differences"), report::OracleJacobian::kMapDifferences);
  EXPECT_EQ(report::to_string(report::OracleJacobian::kGaussNewton), "gauss-newton");
  EXPECT_EQ(report::oracle_jacobian_from_string("exact"), report::OracleJacobian::kExact);
  EXPECT_EQ(report::to_string(report::OracleJacobian::kExact), "exact");
  EXPECT_THROW(report::oracle_jacobian_from_string("newton"), InvalidArgument);
}

// One trained linear-Gaussian model shared by the end-to-end tests (trained once).
class TrainedLinearGaussian : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    Rng rng = testing::seeded_rng(31);
    const amortized::LinearGaussian problem;
    // Linear networks (identity activations) contain the exact posterior: a short training passes.
    auto setup = amortized::default_setup("linear-gaussian", HeadType::kGaussian);
    setup.network.encoder.activation = nn::Activation::kIdentity;
    setup.network.gaussian.activation = nn::Activation::kIdentity;
    setup.training.epochs = 10;
    model_ = std::make_unique<AmortizedPosterior>(setup.network, problem.shape(), rng, problem.name());
    model_->train(problem, 30000, setup.training, rng);
    dir_ = std::filesystem::temp_directory_path() / ("varflow_report_test_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    model_->save(dir_.string() + ".nc");
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(dir_);
    std::filesystem::remove(dir_.string() + ".nc");
    model_.reset();
  }
  static AmortizedPosterior load() { return AmortizedPosterior::load(dir_.string() + ".nc"); }
  static std::unique_ptr<AmortizedPosterior> model_;
  static std::filesystem::path dir_;
};
std::unique_ptr<AmortizedPosterior> TrainedLinearGaussian::model_;
std::filesystem::path TrainedLinearGaussian::dir_;

std::string read(const std::filesystem::path& p) {
  std::ifstream f(p);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

TEST_F(TrainedLinearGaussian, CorrectModelPassesEveryGateAndTheReportSaysSo) {
  AmortizedPosterior q = load();
  Rng rng = testing::seeded_rng(41);
  const auto r = report::validate_model(q, quick_options(), rng);
  EXPECT_TRUE(r.passed()) << r.decision.report();
  EXPECT_TRUE(r.training_stored);
  ASSERT_EQ(r.events.size(), 5u);
  report::write_report(r, dir_ / "ok" / "nested");
  const std::string json = read(dir_ / "ok" / "nested" / "report.json");
  const std::string html = read(dir_ / "ok" / "nested" / "report.html");
  EXPECT_NE(json.find("\"passed\": true"), std::string::npos);
  EXPECT_NE(json.find("\"failed_gates\": []"), std::string::npos);
  EXPECT_NE(json.find("\"seed\": " + std::to_string(rng.seed())), std::string::npos);
  // The report names the model it validated by the checksum of its file.
  EXPECT_NE(json.find("\"model_checksum\": \"" + q.checksum() + "\""), std::string::npos);
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_EQ(html.find("FAIL</span>"), std::string::npos);
  // Readable plots: axis labels with units, legends, and the agreement shown as standardised
  // differences, spread ratios and contraction, every event summarised.
  for (const char* fragment : {">rank of the truth among the draws</text>", ">simulations per bin</text>",
                               ">ECDF difference F(z) - z</text>", "standardised difference per component",
                               ">d = (mean fast - mean oracle) / sigma oracle (1)</text>", "spread ratio per component",
                               "contraction per component", "every event: d of all components",
                               ">relative error of J v (1)</text>", ">loss (normalised units)</text>",
                               "class=\"legend\"", "The worst events in full"}) {
    EXPECT_NE(html.find(fragment), std::string::npos) << fragment;
  }
  EXPECT_EQ(html.find("(blue)"), std::string::npos) << "colours are named in legends, not titles";
  // One strip per event: the strip plot holds a point for every component of every event.
  const auto strips = html.find("<title>every event: d of all components</title>");
  ASSERT_NE(strips, std::string::npos);
  // Its marks come before its legend.
  const std::string plot = html.substr(strips, html.find("class=\"legend\"", strips) - strips);
  std::size_t points = 0;
  for (auto at = plot.find("<circle"); at != std::string::npos; at = plot.find("<circle", at + 1)) ++points;
  EXPECT_EQ(points, r.events.size() * static_cast<std::size_t>(r.shape.state_size));
  // The three worst events in full.
  std::size_t full = 0;
  for (const auto& e : r.events) full += html.find("<title>" + e.name + ": max |d| = ") != std::string::npos ? 1 : 0;
  EXPECT_EQ(full, 3u);
}

TEST_F(TrainedLinearGaussian, ShrunkWeightsFailTheGates) {
  AmortizedPosterior q = load();
  q.parameters().values() *= 0.5;  // a deliberately broken model: wrong means and spreads
  Rng rng = testing::seeded_rng(42);
  const auto r = report::validate_model(q, quick_options(), rng);
  EXPECT_FALSE(r.passed());
  EXPECT_FALSE(r.decision.passed(Gate::kPosteriorAgreement)) << r.decision.agreement.report();
  const std::string json = report::report_json(r);
  EXPECT_NE(json.find("\"passed\": false"), std::string::npos);
  EXPECT_NE(json.find("\"posterior_agreement\""), std::string::npos);
  EXPECT_NE(report::report_html(r).find("FAIL</span>"), std::string::npos);
}

TEST_F(TrainedLinearGaussian, NonFiniteModelIsAReportedFailureNotACrash) {
  AmortizedPosterior q = load();
  q.parameters().values()[0] = std::nan("");
  Rng rng = testing::seeded_rng(43);
  report::ValidationReport r;
  ASSERT_NO_THROW(r = report::validate_model(q, quick_options(), rng));
  EXPECT_FALSE(r.passed());
  // JSON has no NaN: non-finite numbers are written as null (the notes may say "nan" in words).
  const std::string json = report::report_json(r);
  for (const char* bad : {": nan", ", nan", "[nan", ": inf", ", inf", "[inf", "-inf", ": -nan", ", -nan"}) {
    EXPECT_EQ(json.find(bad), std::string::npos) << bad;
  }
  EXPECT_NE(json.find("null"), std::string::npos);
}

TEST(ValidationOptions, InvalidOptionsNameTheOptionAndValue) {
  ValidationOptions o;
  o.posterior_draws = 10;
  std::string error;
  error = test::message_of([&] { o.validate(); });
  EXPECT_NE(error, "(no exception)");
  EXPECT_NE(error.find("posterior_draws = 10"), std::string::npos) << error;
  o = ValidationOptions{};
  o.jacobian_cases = 50;
  error = test::message_of([&] { o.validate(); });
  EXPECT_NE(error, "(no exception)");
  EXPECT_NE(error.find("jacobian_cases = 50"), std::string::npos) << error;
}

}  // namespace
}  // namespace varflow
