// Every built-in head, and a head registered from outside the library (toy_head.h), through the
// HeadConformance suite: the loss gradient (parameters and context), the derivative-informed loss,
// the mean's JVP and VJP against central finite differences (relative error <= 1e-6), the shapes of
// draws and maps, and the log-density against the loss, the closed form, the change of variables and
// (d = 1) its integral. Planted faults in the toy head must fail the checks.
#include <gtest/gtest.h>

#include <iostream>

#include "toy_head.h"
#include "varflow/amortized/heads.h"
#include "varflow/amortized/score_head.h"
#include "varflow/core/error.h"
#include "varflow/nn/trainer.h"
#include "varflow/testing/conformance.h"

namespace varflow::amortized {
namespace {

struct BuiltinCase {
  std::string name;
  AmortizedConfig config;
  Index d = 3;
};

std::vector<BuiltinCase> cases() {
  std::vector<BuiltinCase> c;
  AmortizedConfig base;
  base.encoder.context = 4;
  base.mean_samples = 12;
  base.flow.width = 8;
  base.flow.depth = 1;
  base.flow.layers = 3;
  base.flow.bound = 2.5;  // some inputs fall in the linear tails
  base.flow.bins = 5;
  base.score.width = 8;
  base.score.blocks = 1;
  base.score.time_features = 2;
  base.score.steps = 6;
  base.gaussian.width = 8;
  base.gaussian.depth = 1;
  {
    BuiltinCase h{"gaussian_full", base};
    h.config.head = HeadType::kGaussian;
    c.push_back(h);
    h.name = "gaussian_diagonal";
    h.config.gaussian.covariance = CovarianceForm::kDiagonal;
    c.push_back(h);
  }
  {
    BuiltinCase h{"flow_spline", base};
    h.config.head = HeadType::kFlow;
    c.push_back(h);
    h.name = "flow_affine";
    h.config.flow.coupling = CouplingType::kAffine;
    h.config.flow.activation = nn::Activation::kTanh;
    c.push_back(h);
    h.name = "flow_spline_1d_no_actnorm";
    h.config.flow.coupling = CouplingType::kSpline;
    h.config.flow.actnorm = false;
    h.d = 1;
    c.push_back(h);
  }
  {
    BuiltinCase h{"score_vp", base};
    h.config.head = HeadType::kScore;
    c.push_back(h);
    h.name = "score_ve";
    h.config.score.sde = SdeType::kVe;
    c.push_back(h);
    h.name = "score_ve_gaussian_backbone";
    h.config.score.backbone = ScoreBackbone::kGaussian;
    c.push_back(h);
    h.name = "score_vp_gaussian_backbone";
    h.config.score.sde = SdeType::kVp;
    c.push_back(h);
    h.name = "score_vp_gaussian_backbone_denoise";  // the mean's map ends with the step to t = 0
    h.config.score.denoise = true;
    c.push_back(h);
  }
  return c;
}

std::vector<testing::HeadCase> builtin_heads() {
  std::vector<testing::HeadCase> out;
  for (const BuiltinCase& c : cases()) {
    out.push_back({c.name, [c] { return make_head(c.config, c.d); }});
  }
  // A user's head, registered by name and built through the registry like the others.
  out.push_back({"toy", [] {
                   AmortizedConfig c;
                   c.head = test::toy_head_type();
                   c.encoder.context = 4;
                   return make_head(c, 3);
                 }});
  return out;
}

// ---- planted faults: the checks the suite runs must fail them ---------------------------------------

testing::HeadCase toy_case(test::ToyHead::Fault fault) {
  return {"toy", [fault] { return std::make_unique<test::ToyHead>(test::toy_head_type(), 3, 4, 0.5, fault); }};
}

TEST(HeadChecks, AContextGradientWithTheWrongSignFails) {
  Rng rng = testing::seeded_rng(811);
  auto honest = testing::make_head_fixture(toy_case(test::ToyHead::Fault::kNone), rng);
  const auto ok = check_loss_gradient(*honest->head, honest->params, honest->x, honest->ctx, rng);
  EXPECT_TRUE(ok.passed) << ok.report();
  auto f = testing::make_head_fixture(toy_case(test::ToyHead::Fault::kContextGradientSign), rng);
  const auto r = check_loss_gradient(*f->head, f->params, f->x, f->ctx, rng);
  std::cout << "planted context gradient sign: " << r.report() << "\n";
  EXPECT_FALSE(r.passed) << r.report();
  EXPECT_GT(r.context_error, 1.0) << r.report();
  EXPECT_LE(r.parameter_error, 1e-6) << "the parameter gradient is right: " << r.report();
}

TEST(HeadChecks, ALogDensityOffTheClosedFormFails) {
  Rng rng = testing::seeded_rng(812);
  auto f = testing::make_head_fixture(toy_case(test::ToyHead::Fault::kLogProbOffset), rng);
  const auto r = check_log_density(*f->head, f->x, f->ctx, rng);
  std::cout << "planted log-density offset: " << r.report() << "\n";
  EXPECT_FALSE(r.passed) << r.report();
  EXPECT_NEAR(r.loss_gap, 0.1, 1e-12) << r.report();
  EXPECT_NEAR(r.closed_form_gap, 0.1, 1e-12) << r.report();
  EXPECT_NEAR(r.change_of_variables_gap, 0.1, 1e-6) << r.report();
}

TEST(HeadChecks, ShapesOfAnotherContextSizeAreReported) {
  Rng rng = testing::seeded_rng(813);
  auto f = testing::make_head_fixture(toy_case(test::ToyHead::Fault::kNone), rng);
  EXPECT_NE(check_head_shapes(*f->head, Matrix::Zero(5, 2), rng).find("context size is 4"), std::string::npos);
}

}  // namespace
}  // namespace varflow::amortized

namespace varflow::testing {
INSTANTIATE_TEST_SUITE_P(Builtin, HeadConformance, ::testing::ValuesIn(amortized::builtin_heads()), CaseName());
}  // namespace varflow::testing

namespace varflow::amortized {
namespace {

// The predictor-corrector sampler is the reverse SDE plus Langevin steps: with no corrector steps it
// draws exactly what the SDE sampler draws (same generator stream); with them it moves the draws
// (one more network evaluation and one more normal draw per step) and keeps them finite.
TEST(ScoreSampler, PredictorCorrectorIsTheSdeSamplerPlusLangevinSteps) {
  for (const SdeType sde : {SdeType::kVp, SdeType::kVe}) {
    ScoreOptions o;
    o.sde = sde;
    o.width = 8;
    o.blocks = 1;
    o.time_features = 2;
    o.corrector_steps = 0;
    ScoreHead head(2, 3, o, 10, 7);
    nn::ParameterSet params;
    params.add("score", head);
    params.bind();
    Rng init(5);
    head.initialize(init);
    Matrix ctx(3, 50);
    ctx.setRandom();
    Rng a(11), b(11);
    EXPECT_EQ(head.sample(ctx, a, Sampler::kSde, 12), head.sample(ctx, b, Sampler::kPc, 12));  // bitwise
    ScoreOptions with = o;
    with.corrector_steps = 2;
    ScoreHead corrected(2, 3, with, 10, 7);
    nn::ParameterSet params2;
    params2.add("score", corrected);
    params2.bind();
    params2.values() = params.values();
    Rng c(11), d(11);
    const Matrix plain = head.sample(ctx, c, Sampler::kSde, 12);
    const Matrix pc = corrected.sample(ctx, d, Sampler::kPc, 12);
    EXPECT_TRUE(pc.allFinite());
    EXPECT_GT((pc - plain).norm(), 1e-6 * plain.norm());
  }
}

// A score head whose network is zero and whose Gaussian backbone is N(m, diag(v)) has the exact score
// of that Gaussian at every noise level, so every sampler must draw N(m, diag(v)) up to its time
// discretisation (and 1/sqrt(n) Monte Carlo error). Returns the largest |mean error| / sqrt(v) and
// |var / v - 1| over the components.
struct GaussianDrawError {
  double mean = 0.0;
  double variance = 0.0;
};

// Statistical sampler tests run on one thread (set, then restored): ctest runs test processes side by
// side, and oversubscribed OpenMP made this test 25x slower (118 s against 5 s).
struct SingleThread {
  int saved = nn::thread_count();
  SingleThread() { nn::set_thread_count(1); }
  ~SingleThread() { nn::set_thread_count(saved); }
};

// v: the backbone's variances; grid_power: the samplers' time grid (ScoreOptions::grid_power).
GaussianDrawError backbone_gaussian_error(SdeType sde, Sampler sampler, Index steps, Index n, double v0 = 0.3,
                                          double v1 = 0.05, double grid_power = 1.0, bool denoise = false) {
  Vector v(2);
  v(0) = v0;
  v(1) = v1;
  const SingleThread one_thread;
  ScoreOptions o;
  o.sde = sde;
  o.grid_power = grid_power;
  o.denoise = denoise;
  o.backbone = ScoreBackbone::kGaussian;
  o.width = 8;
  o.blocks = 1;
  o.time_features = 2;
  const Index d = 2;
  ScoreHead head(d, 3, o, 10, 7);
  nn::ParameterSet params;
  params.add("score", head);
  params.bind();
  Rng init(5);
  head.initialize(init);
  params.values().setZero();  // the epsilon-network outputs 0; only the backbone is left
  // |m| small against sigma_max: the VE ODE starts at N(0, 1 + sigma_max^2) instead of
  // N(m, v + sigma_max^2) and carries that offset, m / sigma_max sd, to the end.
  const Vector m = (Vector(2) << 0.3, -0.2).finished();
  for (const auto& block : params.blocks()) {
    if (block.name == "score.backbone.mean.b") params.values().segment(block.offset, d) = m;
    if (block.name == "score.backbone.log_var") params.values().segment(block.offset, d) = v.array().log().matrix();
  }
  Matrix ctx(3, n);
  ctx.setRandom();  // the backbone mean's weights are zero: m(c) = m for every context
  Rng rng(2026);
  const Matrix x = head.sample(ctx, rng, sampler, steps);
  const Vector mean = x.rowwise().mean();
  const Vector var = (x.colwise() - mean).rowwise().squaredNorm() / static_cast<double>(n - 1);
  GaussianDrawError e;
  e.mean = ((mean - m).array() / v.array().sqrt()).abs().maxCoeff();
  e.variance = (var.array() / v.array() - 1.0).abs().maxCoeff();
  return e;
}

TEST(ScoreBackbone, ZeroNetworkSamplesTheBackboneGaussianWithEverySampler) {
  const Index n = 8000;  // Monte Carlo sd: 0.011 in the mean (in sd), 0.016 in var / v
  for (const SdeType sde : {SdeType::kVp, SdeType::kVe}) {
    for (const Sampler sampler : {Sampler::kSde, Sampler::kOde, Sampler::kPc, Sampler::kHeun}) {
      const GaussianDrawError e = backbone_gaussian_error(sde, sampler, 200, n);
      std::cout << to_string(sde) << " " << to_string(sampler) << ", 200 steps: mean error " << e.mean
                << " sd, variance error " << e.variance << "\n";
      // Euler on the probability-flow ODE is first order: the VE variance error at 200 steps is 0.14.
      const double variance_tolerance = sampler == Sampler::kOde ? 0.2 : 0.05;
      EXPECT_LT(e.mean, 0.05) << to_string(sde) << " " << to_string(sampler);
      EXPECT_LT(e.variance, variance_tolerance) << to_string(sde) << " " << to_string(sampler);
    }
  }
}

// With an exact score the samplers' errors are time discretisation (and Monte Carlo) only: Heun on
// the probability-flow ODE is second order, Euler on the same ODE first order, so on the same coarse
// grid Heun must be much closer to the target variance (VP, where the drift is stiffest near t = 1).
TEST(ScoreSampler, HeunIsMoreAccurateThanEulerOnTheSameGrid) {
  const Index n = 20000;
  for (const Index steps : {20, 50}) {
    const GaussianDrawError euler = backbone_gaussian_error(SdeType::kVp, Sampler::kOde, steps, n);
    const GaussianDrawError heun = backbone_gaussian_error(SdeType::kVp, Sampler::kHeun, steps, n);
    std::cout << "vp, " << steps << " steps: variance error ode (Euler) " << euler.variance << ", heun "
              << heun.variance << "; mean error " << euler.mean << ", " << heun.mean << "\n";
    EXPECT_LT(heun.variance, 0.5 * euler.variance) << steps << " steps";
  }
}

// time_at_sigma inverts sigma(t) on [t_min, 1] for both SDEs (the training times drawn uniform in
// log sigma go through it), and the problems' defaults draw half the times that way.
TEST(ScoreTimes, TimeAtSigmaInvertsSigma) {
  for (const SdeType sde : {SdeType::kVp, SdeType::kVe}) {
    ScoreOptions o;
    o.sde = sde;
    const ScoreHead head(2, 3, o, 10, 7);
    for (const double t : {1e-3, 0.01, 0.1, 0.5, 0.9, 1.0}) {
      EXPECT_NEAR(head.time_at_sigma(head.sigma(t)), t, 1e-12 * (1.0 + t)) << to_string(sde) << " t = " << t;
    }
  }
  for (const char* problem : {"two-moons", "linear-gaussian", "lorenz96"}) {
    const AmortizedSetup s = default_setup(problem, HeadType::kScore);
    EXPECT_EQ(s.network.score.log_sigma_fraction, std::string(problem) == "two-moons" ? 0.5 : 0.0) << problem;
    EXPECT_EQ(s.training.ema_decay, 0.999) << problem;
    EXPECT_EQ(s.network.score.grid_power, 2.0) << problem;
    EXPECT_EQ(s.network.score.sampler, std::string(problem) == "two-moons" ? Sampler::kPc : Sampler::kSde) << problem;
    EXPECT_TRUE(s.network.score.denoise) << problem;
  }
  AmortizedSetup s = default_setup("two-moons", HeadType::kScore);
  apply_entry(s, "score.log_sigma_fraction", "0");
  EXPECT_EQ(s.network.score.log_sigma_fraction, 0.0);
}

// A posterior 0.1 wide or narrower takes its shape at sigma < 0.1, which equal steps cross in ~3 of
// 100 (VP): there the Euler-Maruyama draws of an exact score come out narrow. The power-2 grid
// (~16 steps there) must be closer on the same number of steps.
TEST(ScoreSampler, PowerGridIsMoreAccurateForANarrowPosterior) {
  const Index n = 20000;
  for (const Sampler sampler : {Sampler::kSde, Sampler::kHeun}) {  // sd 0.1 and 0.05
    const GaussianDrawError equal = backbone_gaussian_error(SdeType::kVp, sampler, 100, n, 0.01, 0.0025, 1.0);
    const GaussianDrawError power = backbone_gaussian_error(SdeType::kVp, sampler, 100, n, 0.01, 0.0025, 2.0);
    std::cout << to_string(sampler) << ", 100 steps, sd 0.1 and 0.05: variance error equal steps " << equal.variance
              << ", power-2 grid " << power.variance << "; mean error " << equal.mean << ", " << power.mean << "\n";
    EXPECT_LT(power.variance, 0.5 * equal.variance) << to_string(sampler);
    EXPECT_LT(power.mean, 0.05) << to_string(sampler);
  }
}

// The draws end at t_min with the noise of level sigma(t_min) = 0.0105 (VP) in them: for a posterior
// of variance 1e-3 that is 11% too much variance. The last probability-flow step to t = 0
// (score.denoise) must remove most of it, and must not overshoot as Tweedie's step would (-10%).
TEST(ScoreSampler, DenoisingStepRemovesTheLastNoiseLevel) {
  const Index n = 20000;  // Monte Carlo sd of var / v: 0.01
  for (const Sampler sampler : {Sampler::kSde, Sampler::kHeun}) {
    const GaussianDrawError plain = backbone_gaussian_error(SdeType::kVp, sampler, 200, n, 1e-3, 4e-3, 2.0, false);
    const GaussianDrawError denoised = backbone_gaussian_error(SdeType::kVp, sampler, 200, n, 1e-3, 4e-3, 2.0, true);
    std::cout << to_string(sampler) << ", 200 steps, sd 0.032 and 0.063: variance error " << plain.variance
              << ", with the step to t = 0 " << denoised.variance << "; mean error " << plain.mean << ", "
              << denoised.mean << "\n";
    EXPECT_LT(denoised.variance, 0.5 * plain.variance) << to_string(sampler);
    EXPECT_LT(denoised.mean, 0.05) << to_string(sampler);
  }
}

// The sampler and the backbone are configuration keys: they round-trip through the key table, and an
// unknown name is refused naming the key, the value and the accepted names.
TEST(ScoreConfig, SamplerAndBackboneKeysRefuseUnknownNames) {
  AmortizedSetup s = default_setup("two-moons", HeadType::kScore);
  EXPECT_EQ(s.network.score.backbone, ScoreBackbone::kNone);
  apply_entry(s, "score.sampler", "heun");
  apply_entry(s, "score.backbone", "gaussian");
  EXPECT_EQ(s.network.score.sampler, Sampler::kHeun);
  EXPECT_EQ(s.network.score.backbone, ScoreBackbone::kGaussian);
  EXPECT_EQ(entry_value(s, "score.sampler"), "heun");
  EXPECT_EQ(entry_value(s, "score.backbone"), "gaussian");
  const auto refused = [&](const std::string& key, const std::string& value, const std::string& accepted) {
    try {
      apply_entry(s, key, value);
      ADD_FAILURE() << key << " = " << value << " was accepted";
    } catch (const InvalidArgument& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find(key + " = '" + value + "'"), std::string::npos) << message;
      EXPECT_NE(message.find(accepted), std::string::npos) << message;
    }
  };
  refused("score.sampler", "rk4", "heun");
  EXPECT_EQ(ScoreHead::network_passes(Sampler::kSde, 100, 1, false), 100);
  EXPECT_EQ(ScoreHead::network_passes(Sampler::kPc, 100, 2, false), 298);
  EXPECT_EQ(ScoreHead::network_passes(Sampler::kPc, 100, 1, true), 200);
  EXPECT_EQ(ScoreHead::network_passes(Sampler::kHeun, 100, 1, false), 200);
  refused("score.backbone", "linear", "gaussian");
}

}  // namespace
}  // namespace varflow::amortized
