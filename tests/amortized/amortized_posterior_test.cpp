// AmortizedPosterior end to end: gradients of the training loss through encoder and head, Jacobian
// products of the posterior mean with respect to y (finite differences, relative error <= 1e-6),
// determinism, Posterior output, input errors, configuration files, and the Lorenz-96 problem.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <fstream>
#include <unistd.h>

#include "varflow/amortized/amortized_posterior.h"
#include "varflow/core/error.h"
#include "varflow/covariance/covariance.h"
#include "varflow/nn/gradient_check.h"
#include "varflow/nn/trainer.h"
#include "varflow/testing/conformance.h"

namespace varflow::amortized {
namespace {

using nn::relative_error;

WindowProblemOptions small_lorenz96() {
  WindowProblemOptions o;
  o.model.parameters["n"] = 12;
  o.window = 4;
  o.obs_every = 2;
  o.spinup = 200;
  return o;
}

struct E2eCase {
  std::string name;
  std::string problem;
  HeadType head;
  bool linear_skip = false;  // encoder.linear_skip and gaussian.linear_skip
  bool local = false;        // encoder.type = local
  bool oracle_gain = false;  // linear_gain = oracle (lorenz96: the gaussian prior, which has an oracle)
  bool gain_channel = false;  // encoder.gain_channel (local encoder with the oracle gain)
};

// A small network for `c`, trained for one short epoch (so that normalisation and ActNorm are set).
AmortizedPosterior small_model(const E2eCase& c, Rng& rng, std::unique_ptr<Simulator>& problem) {
  WindowProblemOptions window = small_lorenz96();
  if (c.oracle_gain) window.prior = WindowPrior::kGaussian;  // 10% of the values missing, as by default
  problem = make_problem(c.problem, window);
  AmortizedSetup s = default_setup(c.problem, c.head);
  if (c.oracle_gain) s.network.linear_gain = LinearGain::kOracle;
  if (c.local) {
    s.network.encoder.type = EncoderType::kLocal;
    s.network.gaussian.covariance = CovarianceForm::kDiagonal;
    s.network.encoder.conv_layers = 2;
  }
  s.network.encoder.width = 8;
  s.network.encoder.context = 4;
  s.network.encoder.channels = 3;
  s.network.encoder.kernel = 3;
  s.network.flow.width = 8;
  s.network.flow.layers = 2;
  s.network.flow.depth = 1;
  s.network.score.width = 8;
  s.network.score.blocks = 1;
  s.network.score.steps = 5;
  s.network.gaussian.width = 8;
  s.network.gaussian.depth = 1;
  s.network.mean_samples = 70;  // more than one shard of 32 columns when two threads run
  s.network.encoder.linear_skip = c.linear_skip;
  s.network.gaussian.linear_skip = c.linear_skip;
  s.network.encoder.gain_channel = c.gain_channel;
  s.training.epochs = 1;
  AmortizedPosterior q(s.network, problem->shape(), rng, problem->name());
  q.train(*problem, 200, s.training, rng);
  return q;
}

// q saved and loaded again (through a temporary file named after `tag`): the same checksum, and at
// one observation of `problem` the same mean and marginal sd.
void expect_round_trip(AmortizedPosterior& q, const Simulator& problem, Rng& rng, const std::string& tag) {
  const auto file =
      std::filesystem::temp_directory_path() / ("varflow_" + tag + "_" + std::to_string(::getpid()) + ".nc");
  q.save(file);
  AmortizedPosterior r = AmortizedPosterior::load(file);
  std::filesystem::remove(file);
  EXPECT_EQ(r.checksum(), q.checksum());
  const Vector y = problem.simulate(1, rng).y.col(0);
  EXPECT_EQ(r.mean(y), q.mean(y));
  EXPECT_EQ(r.posterior(y, 0, rng)->marginal_std(), q.posterior(y, 0, rng)->marginal_std());
}

void PrintTo(const E2eCase& c, std::ostream* os) { *os << c.name; }

class EndToEnd : public ::testing::TestWithParam<E2eCase> {};

TEST_P(EndToEnd, MeanJacobianProductsMatchFiniteDifferences) {
  Rng rng = testing::seeded_rng(1201);
  std::unique_ptr<Simulator> problem;
  AmortizedPosterior q = small_model(GetParam(), rng, problem);
  Vector y = problem->simulate(1, rng).y.col(0);
  const Index p = y.size(), d = q.shape().state_size;
  Matrix j_fd = Matrix::Zero(d, p);
  for (Index k = 0; k < p; ++k) {
    if (std::isnan(y[k])) continue;  // missing: the derivative is zero
    // The step scales with the observation (1e-5 of its spread): the mean is a Monte Carlo average
    // of values of size ~1 whose derivatives are small for a barely trained network, so a step of
    // 1e-6 in physical units would leave the differences dominated by round-off.
    const double h = 1e-5 * q.normalization().y_std[k];
    Vector yp = y, ym = y;
    yp[k] += h;
    ym[k] -= h;
    j_fd.col(k) = (q.mean(yp) - q.mean(ym)) / (2.0 * h);
  }
  Matrix j_fwd(d, p), j_rev(d, p);
  for (Index k = 0; k < p; ++k) j_fwd.col(k) = q.mean_jvp(y, Vector::Unit(p, k));
  for (Index i = 0; i < d; ++i) j_rev.row(i) = q.mean_vjp(y, Vector::Unit(d, i)).transpose();
  auto flat = [](const Matrix& m) { return Vector(Eigen::Map<const Vector>(m.data(), m.size())); };
  const double e_jvp = relative_error(flat(j_fwd), flat(j_fd)), e_vjp = relative_error(flat(j_rev), flat(j_fd));
  std::cout << GetParam().name << ": d mean / d y (" << d << " x " << p << ") relative error jvp " << e_jvp << ", vjp "
            << e_vjp << "\n";
  EXPECT_LT(e_jvp, 1e-6);
  EXPECT_LT(e_vjp, 1e-6);
  EXPECT_GT(j_fd.norm(), 1e-8);
  for (Index k = 0; k < p; ++k) {
    if (std::isnan(y[k])) {
      EXPECT_EQ(j_rev.col(k).norm(), 0.0) << "missing y[" << k << "]";
    }
  }
}

// The mean's J v and J^T w are sums over fixed blocks of base draws (one product per block, added in
// block order), so the thread count does not change a bit (70 draws: blocks of 50 and 20, one per
// thread on two threads).
TEST_P(EndToEnd, MeanJacobianProductsDoNotDependOnTheThreadCount) {
  Rng rng = testing::seeded_rng(1204);
  std::unique_ptr<Simulator> problem;
  AmortizedPosterior q = small_model(GetParam(), rng, problem);
  const Vector y = problem->simulate(1, rng).y.col(0);
  const Vector dy = rng.normal_vector(y.size()), a = rng.normal_vector(q.shape().state_size);
  const int saved = nn::thread_count();
  nn::set_thread_count(1);
  const Vector jv1 = q.mean_jvp(y, dy), ja1 = q.mean_vjp(y, a);
  nn::set_thread_count(2);
  const Vector jv2 = q.mean_jvp(y, dy), ja2 = q.mean_vjp(y, a);
  nn::set_thread_count(saved);
  EXPECT_EQ(q.mean_draw_blocks(), GetParam().head == HeadType::kGaussian ? 1 : 2);
  EXPECT_EQ(std::memcmp(jv1.data(), jv2.data(), sizeof(double) * jv1.size()), 0);
  EXPECT_EQ(std::memcmp(ja1.data(), ja2.data(), sizeof(double) * ja1.size()), 0);
  EXPECT_GT(jv1.norm(), 0.0);
}

// Relative error of the gradient that loss(rng, true) adds to q's parameter gradients against central
// differences of loss(rng, false) on 150 parameters spread over all blocks; every evaluation replays
// the random stream `noise`.
double loss_gradient_error(AmortizedPosterior& q, const Rng& noise, const std::function<double(Rng&, bool)>& loss) {
  nn::ParameterSet& params = q.parameters();
  params.zero_gradients();
  Rng r0 = noise;
  loss(r0, true);
  const Vector g = params.gradients();
  const Vector theta = params.values();
  Vector g_sub(150), fd_sub(150);
  for (Index k = 0; k < 150; ++k) {
    const Index i = (k * 7919) % params.size();
    auto at = [&](double v) {
      params.values()[i] = v;
      Rng r = noise;
      return loss(r, false);
    };
    fd_sub[k] = (at(theta[i] + 1e-6) - at(theta[i] - 1e-6)) / 2e-6;
    params.values()[i] = theta[i];
    g_sub[k] = g[i];
  }
  return relative_error(g_sub, fd_sub);
}

TEST_P(EndToEnd, TrainingLossGradientMatchesFiniteDifferences) {
  Rng rng = testing::seeded_rng(1202);
  std::unique_ptr<Simulator> problem;
  AmortizedPosterior q = small_model(GetParam(), rng, problem);
  const Dataset data = problem->simulate(80, rng);  // 80 pairs: two shards when two threads run
  const double e = loss_gradient_error(q, rng, [&](Rng& r, bool gradient) { return q.loss(data, r, gradient); });
  std::cout << GetParam().name << ": loss gradient relative error " << e << " (" << q.parameters().size()
            << " parameters)\n";
  EXPECT_LT(e, 1e-6);
}

// The derivative-informed loss (mean and J-probe terms of LabelOptions) has the gradient of its
// value (synthetic labels: only the derivative is checked here). The flow's training mean uses fresh
// antithetic draws from the rng, replayed here; the score head's (linear-gaussian default: Gaussian
// backbone) is its backbone's mean. A score head without the backbone refuses labels (HeadConformance).
TEST_P(EndToEnd, LabelledLossGradientMatchesFiniteDifferences) {
  Rng rng = testing::seeded_rng(1203);
  std::unique_ptr<Simulator> problem;
  AmortizedPosterior q = small_model(GetParam(), rng, problem);
  Dataset data = problem->simulate(80, rng);
  prepare_labels(data, 50, 2, rng);
  for (Index j = 0; j < 50; ++j) {
    data.labels.mean.col(j) = data.x.col(j) + 0.3 * rng.normal_vector(data.x.rows());
    for (Index p = 0; p < 2; ++p) data.labels.dx.col(2 * j + p) = rng.normal_vector(data.x.rows());
  }
  LabelOptions weights;
  weights.mean_weight = 2.0;
  weights.jacobian_weight = 3.0;
  // The J term divides a difference of means by the step: a larger step keeps the round-off of the
  // flow's spline inverse, amplified by 1 / step, out of the parameter differences below.
  weights.step = 1e-2;
  const Rng noise = rng;
  Rng r0 = noise;
  const double plain = q.loss(Dataset{data.x, data.y, {}, {}}, r0, false);
  r0 = noise;
  const double labelled = q.loss(data, r0, false, weights);
  EXPECT_GT(labelled, plain + 1e-3) << "the label terms must add to the loss";
  const double e =
      loss_gradient_error(q, noise, [&](Rng& r, bool gradient) { return q.loss(data, r, gradient, weights); });
  std::cout << GetParam().name << ": labelled loss gradient relative error " << e << "\n";
  EXPECT_LT(e, 1e-6);
  if (GetParam().head != HeadType::kGaussian) return;
  // Variance labels on the same pairs (the Gaussian head's marginal variances, either form).
  data.labels.variance = Matrix::Constant(data.x.rows(), data.size(), std::nan(""));
  for (Index j = 0; j < 50; ++j) data.labels.variance.col(j) = (0.5 * rng.normal_vector(data.x.rows())).array().exp();
  weights.variance_weight = 1.5;
  r0 = noise;
  EXPECT_GT(q.loss(data, r0, false, weights), labelled + 1e-3) << "the variance term must add to the loss";
  const double ev =
      loss_gradient_error(q, noise, [&](Rng& r, bool gradient) { return q.loss(data, r, gradient, weights); });
  std::cout << GetParam().name << ": labelled loss gradient with variance labels, relative error " << ev << "\n";
  EXPECT_LT(ev, 1e-6);
  Dataset without = data;
  without.labels.variance.resize(0, 0);
  r0 = noise;
  try {
    q.loss(without, r0, false, weights);
    ADD_FAILURE() << "variance_weight > 0 without variance labels was accepted";
  } catch (const InvalidArgument& err) {
    EXPECT_NE(std::string(err.what()).find("labels.variance_weight = 1.5 > 0, but the pairs carry no variance labels"),
              std::string::npos)
        << err.what();
  }
}

INSTANTIATE_TEST_SUITE_P(Models, EndToEnd,
                         ::testing::Values(E2eCase{"two_moons_flow", "two-moons", HeadType::kFlow},
                                           E2eCase{"linear_gaussian_gaussian", "linear-gaussian", HeadType::kGaussian},
                                           E2eCase{"linear_gaussian_score", "linear-gaussian", HeadType::kScore},
                                           E2eCase{"lorenz96_conv_flow", "lorenz96", HeadType::kFlow},
                                           E2eCase{"lorenz96_conv_gaussian", "lorenz96", HeadType::kGaussian},
                                           E2eCase{"linear_gaussian_gaussian_linear_skip", "linear-gaussian",
                                                   HeadType::kGaussian, true},
                                           E2eCase{"lorenz96_conv_gaussian_linear_skip", "lorenz96", HeadType::kGaussian,
                                                   true},
                                           E2eCase{"lorenz96_local_gaussian", "lorenz96", HeadType::kGaussian, false,
                                                   true},
                                           E2eCase{"linear_gaussian_flow_oracle_gain", "linear-gaussian",
                                                   HeadType::kFlow, false, false, true},
                                           E2eCase{"lorenz96_local_gaussian_oracle_gain", "lorenz96",
                                                   HeadType::kGaussian, false, true, true},
                                           E2eCase{"lorenz96_conv_flow_oracle_gain", "lorenz96", HeadType::kFlow,
                                                   false, false, true},
                                           E2eCase{"lorenz96_local_gaussian_gain_channel", "lorenz96",
                                                   HeadType::kGaussian, false, true, true, true}),
                         [](const ::testing::TestParamInfo<E2eCase>& p) { return p.param.name; });

TEST(AmortizedPosterior, SameSeedAndThreadsGiveIdenticalWeightsAndDraws) {
  Vector w[2];
  Matrix draws[2];
  for (int run = 0; run < 2; ++run) {
    Rng rng = testing::seeded_rng(1203);
    const TwoMoons problem;
    AmortizedSetup s = default_setup("two-moons", HeadType::kFlow);
    s.training.epochs = 3;
    AmortizedPosterior q(s.network, problem.shape(), rng);
    q.train(problem, 1000, s.training, rng);
    w[run] = q.parameters().values();
    draws[run] = q.sample(Vector::Zero(1), 500, rng);
  }
  EXPECT_EQ(w[0], w[1]);  // bitwise
  EXPECT_EQ(draws[0], draws[1]);
}

TEST(AmortizedPosterior, PosteriorTypesAndProvenance) {
  Rng rng = testing::seeded_rng(1204);
  const LinearGaussian problem(3);
  for (HeadType head : {HeadType::kGaussian, HeadType::kFlow}) {
    AmortizedSetup s = default_setup("linear-gaussian", head);
    s.training.epochs = 2;
    AmortizedPosterior q(s.network, problem.shape(), rng, problem.name());
    const auto summary = q.train(problem, 500, s.training, rng);
    auto p = q.posterior(Vector::Zero(3), 300, rng);
    ASSERT_EQ(p->size(), 3);
    EXPECT_EQ(p->covariance() != nullptr, head == HeadType::kGaussian);
    if (head == HeadType::kGaussian) {
      EXPECT_NE(dynamic_cast<GaussianPosterior*>(p.get()), nullptr);
      EXPECT_LT((p->mean() - q.mean(Vector::Zero(3))).norm(), 1e-12);  // the closed-form mean
    } else {
      EXPECT_NE(dynamic_cast<SamplePosterior*>(p.get()), nullptr);
    }
    const Provenance& pv = p->provenance();
    EXPECT_EQ(pv.method, "amortized_" + to_string(head));
    EXPECT_EQ(pv.iterations, 2);
    EXPECT_EQ(pv.final_cost, summary.best_validation_loss);
    EXPECT_TRUE(pv.converged);
    EXPECT_EQ(pv.config_hash, config_hash(q.config()));
    EXPECT_EQ(pv.config_hash.size(), 16u);
    EXPECT_FALSE(pv.version.empty());
  }
}

void expect_invalid(const std::function<void()>& f, const std::string& fragment) {
  try {
    f();
    FAIL() << "no error; expected one containing '" << fragment << "'";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(AmortizedPosterior, BadInputIsAClearError) {
  Rng rng = testing::seeded_rng(1205);
  const LinearGaussian problem(3);
  AmortizedSetup s = default_setup("linear-gaussian", HeadType::kScore);
  AmortizedPosterior q(s.network, problem.shape(), rng);
  expect_invalid([&] { q.mean(Vector::Zero(4)); }, "y has size 4, expected 3");
  Vector y = Vector::Zero(3);
  y[1] = std::nan("");
  expect_invalid([&] { q.mean(y); }, "y[1] is missing, but the mlp encoder");
  Mask m = Mask::Constant(3, true);
  m[2] = false;
  expect_invalid([&] { q.sample(Vector::Zero(3), 5, rng, m); }, "y[2] is missing");
  expect_invalid([&] { q.log_prob(Matrix::Zero(3, 1), Vector::Zero(3)); }, "head = score has no tractable log-density");
  AmortizedSetup conv = default_setup("linear-gaussian", HeadType::kFlow);
  conv.network.encoder.type = EncoderType::kConv;
  expect_invalid([&] { AmortizedPosterior(conv.network, problem.shape(), rng); }, "encoder.type = conv needs gridded");
  conv = default_setup("linear-gaussian", HeadType::kFlow);
  conv.network.flow.bins = 1;
  expect_invalid([&] { AmortizedPosterior(conv.network, problem.shape(), rng); }, "flow.bins = 1");
  conv.network.flow.bins = 8;
  AmortizedPosterior f(conv.network, problem.shape(), rng);
  expect_invalid([&] { f.set_sampler(Sampler::kOde, 10); }, "score heads only");
  Dataset bad = problem.simulate(10, rng);
  bad.y(0, 3) = std::nan("");
  expect_invalid([&] { q.train(bad, nn::TrainingOptions{}, rng); }, "y(0, 3) = nan is missing");
  expect_invalid([&] { default_setup("three-moons", HeadType::kFlow); }, "problem = 'three-moons'");
}

// A model with linear skips (encoder and Gaussian head) is saved and loaded with the same
// parameter layout and answers identically; its configuration text names the skips.
TEST(AmortizedPosterior, LinearSkipModelRoundTripsThroughAFile) {
  Rng rng = testing::seeded_rng(1207);
  std::unique_ptr<Simulator> problem;
  AmortizedPosterior q = small_model({"skip", "lorenz96", HeadType::kGaussian, true}, rng, problem);
  EXPECT_NE(config_text(q.config()).find("encoder.linear_skip: true"), std::string::npos);
  EXPECT_NE(config_text(q.config()).find("gaussian.linear_skip: true"), std::string::npos);
  EXPECT_NE(q.describe().find("linear skip"), std::string::npos) << q.describe();
  expect_round_trip(q, *problem, rng, "skip");
}

// linear_gain = oracle on the linear-Gaussian problem: the gain is the exact posterior gain
// prior / (prior + noise) I, the residual the head models has the posterior sd, the stored gain
// survives a file round trip, and it cannot be trained without a gain.
TEST(AmortizedPosterior, OracleGainIsTheExactGainAndRoundTripsThroughAFile) {
  Rng rng = testing::seeded_rng(1210);
  const LinearGaussian problem(5, 0.3, 0.2);
  AmortizedSetup s = default_setup("linear-gaussian", HeadType::kGaussian);
  s.network.linear_gain = LinearGain::kOracle;
  s.network.encoder.width = 8;
  s.network.gaussian.width = 8;
  s.training.epochs = 2;
  AmortizedPosterior q(s.network, problem.shape(), rng, problem.name());
  q.train(problem, 2000, s.training, rng);
  const double gain = 0.3 / 0.5;
  EXPECT_LT((q.normalization().gain - gain * Matrix::Identity(5, 5)).norm(), 1e-12);
  const double posterior_sd = std::sqrt(0.3 * 0.2 / 0.5);
  for (Index i = 0; i < 5; ++i) EXPECT_NEAR(q.normalization().x_std[i], posterior_sd, 0.05 * posterior_sd);
  EXPECT_NE(config_text(q.config()).find("linear_gain: oracle"), std::string::npos);

  const auto file = std::filesystem::temp_directory_path() / ("varflow_gain_" + std::to_string(::getpid()) + ".nc");
  q.save(file);
  AmortizedPosterior r = AmortizedPosterior::load(file);
  EXPECT_EQ(r.checksum(), q.checksum());
  const Vector y = problem.simulate(1, rng).y.col(0);
  EXPECT_EQ(r.mean(y), q.mean(y));
  EXPECT_EQ(r.mean_jvp(y, Vector::Ones(5)), q.mean_jvp(y, Vector::Ones(5)));
  std::filesystem::remove(file);  // a changed gain fails the checksum: model_file_test

  // Labels are compared in the residual's units: the exact J labels (gain I) cost the trained model
  // next to nothing, labels 0.1 off the gain cost it their difference.
  Dataset labelled = problem.simulate(200, rng);
  problem.label(labelled, 200, 2, rng);
  LabelOptions jacobian_only;
  jacobian_only.mean_weight = 0.0;
  auto label_term = [&](const Dataset& d) {
    Rng noise = testing::seeded_rng(5);
    const double with = q.loss(d, noise, false, jacobian_only);
    noise = testing::seeded_rng(5);
    return with - q.loss(Dataset{d.x, d.y, {}, {}}, noise, false);
  };
  Dataset planted = labelled;
  planted.labels.dx += 0.1 * planted.labels.dy;
  const double exact_term = label_term(labelled), planted_term = label_term(planted);
  std::cout << "J label term: exact labels " << exact_term << ", labels 0.1 off " << planted_term << "\n";
  EXPECT_LT(exact_term, 0.1 * planted_term);

  Rng r2 = testing::seeded_rng(1211);
  AmortizedPosterior fresh(s.network, problem.shape(), r2, problem.name());
  const Dataset plain = problem.simulate(100, r2);
  try {
    fresh.train(plain, s.training, r2);
    ADD_FAILURE() << "trained without an oracle gain";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("linear_gain = oracle"), std::string::npos) << e.what();
  }
  Dataset moons = TwoMoons().simulate(10, r2);
  EXPECT_THROW(TwoMoons().linearize(moons), InvalidArgument);
}

// The local (fully convolutional) encoder: its constant channels (and its gain channel) come from
// the stored normalisation and gain, so a saved model answers identically after loading (a map
// left unset on loading would change the mean); bad configurations name the key.
TEST(AmortizedPosterior, LocalModelRoundTripsThroughAFile) {
  for (const bool gain_channel : {false, true}) {
    SCOPED_TRACE(gain_channel ? "gain channel" : "no gain channel");
    Rng rng = testing::seeded_rng(1208);
    std::unique_ptr<Simulator> problem;
    AmortizedPosterior q =
        small_model({"local", "lorenz96", HeadType::kGaussian, false, true, gain_channel, gain_channel}, rng, problem);
    EXPECT_NE(config_text(q.config()).find("encoder.type: local"), std::string::npos);
    EXPECT_NE(q.describe().find("constant_channels"), std::string::npos) << q.describe();
    EXPECT_EQ(q.describe().find("linear_channels") != std::string::npos, gain_channel) << q.describe();
    EXPECT_NE(q.describe().find("gaussian head (diagonal, direct)"), std::string::npos) << q.describe();
    expect_round_trip(q, *problem, rng, "local");
  }
}

TEST(AmortizedPosterior, LocalEncoderConfigurationErrorsNameTheKey) {
  Rng rng = testing::seeded_rng(1209);
  AmortizedSetup s = default_setup("lorenz96", HeadType::kGaussian);
  s.network.encoder.type = EncoderType::kLocal;
  const LinearGaussian vector_problem(3);
  expect_invalid([&] { AmortizedPosterior(s.network, vector_problem.shape(), rng); },
                 "encoder.type = local needs gridded observations");
  ProblemShape coarse;  // observations on a grid of half the state's points
  coarse.state_size = 12;
  coarse.obs_slots = 3;
  coarse.obs_grid = 6;
  coarse.obs_size = 18;
  expect_invalid([&] { AmortizedPosterior(s.network, coarse, rng); },
                 "encoder.type = local needs the state on the observation grid (obs_grid = 6, state_size = 12)");
  const ProblemShape shape = WindowProblem(small_lorenz96()).shape();
  s.network.gaussian.covariance = CovarianceForm::kFull;
  expect_invalid([&] { AmortizedPosterior(s.network, shape, rng); }, "gaussian.covariance = diagonal");
  s.network.gaussian.covariance = CovarianceForm::kDiagonal;
  s.network.head = HeadType::kFlow;
  expect_invalid([&] { AmortizedPosterior(s.network, shape, rng); }, "head = gaussian");
  s.network.head = HeadType::kGaussian;
  s.network.encoder.linear_skip = true;
  expect_invalid([&] { AmortizedPosterior(s.network, shape, rng); }, "encoder.linear_skip");
  s.network.encoder.linear_skip = false;
  s.network.encoder.kernel = 4;
  expect_invalid([&] { AmortizedPosterior(s.network, shape, rng); }, "encoder.kernel = 4 must be odd");
  s.network.encoder.kernel = 5;
  s.network.encoder.gain_channel = true;
  expect_invalid([&] { AmortizedPosterior(s.network, shape, rng); },
                 "encoder.gain_channel = true needs encoder.type = local and linear_gain = oracle (encoder.type = local, "
                 "linear_gain = none)");
  AmortizedSetup t;
  expect_invalid([&] { apply_entry(t, "encoder.type", "locall"); }, "encoder.type = 'locall' is not one of: mlp, conv, local");
}

// A tiny local model learns a tiny Lorenz-96 problem: its mean beats the prior clearly and its
// spread is roughly calibrated.
TEST(Lorenz96, TinyLocalModelTrains) {
  struct SingleThread {
    int saved = nn::thread_count();
    SingleThread() { nn::set_thread_count(1); }
    ~SingleThread() { nn::set_thread_count(saved); }
  } single_thread;
  Rng rng = testing::seeded_rng(1210);
  WindowProblemOptions o = small_lorenz96();
  o.obs_stride = 1;  // every point observed (10% missing)
  o.prior = WindowPrior::kGaussian;
  const WindowProblem problem(o);
  AmortizedSetup s = default_setup("lorenz96", HeadType::kGaussian);
  s.network.encoder.type = EncoderType::kLocal;
  s.network.encoder.channels = 8;
  s.network.encoder.conv_layers = 2;
  s.training.epochs = 10;
  AmortizedPosterior q(s.network, problem.shape(), rng, problem.name());
  const auto summary = q.train(problem, 3000, s.training, rng);
  ASSERT_TRUE(summary.ok()) << summary.brief_report();
  const Dataset test = problem.simulate(200, rng);
  double se = 0.0, z2 = 0.0;
  Index count = 0;
  for (Index j = 0; j < test.size(); ++j) {
    auto p = q.posterior(test.y.col(j), 0, rng);
    const Vector e = test.x.col(j) - p->mean();
    se += e.squaredNorm();
    z2 += e.cwiseQuotient(p->marginal_std()).squaredNorm();
    count += e.size();
  }
  const double rmse = std::sqrt(se / static_cast<double>(count)), z_var = z2 / static_cast<double>(count);
  std::cout << "tiny local lorenz96 (n = 12): rmse " << rmse << " vs prior sd " << o.prior_sd << ", mean squared z-score "
            << z_var << ", " << summary.epochs_run << " epochs, " << summary.seconds << " s\n";
  EXPECT_LT(rmse, 0.8 * o.prior_sd);
  EXPECT_GT(z_var, 0.5);
  EXPECT_LT(z_var, 2.0);
}

TEST(Config, YamlFileTextRoundTripAndErrors) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / ("varflow_cfg_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto file = dir / "c.yaml";
  std::ofstream(file) << "flow:\n  bins: 10\n  coupling: affine\ntraining:\n  epochs: 7\n  learning_rate: 5e-4\n"
                         "encoder: {width: 20, activation: tanh}\npairs: 1234\nmodel:\n  n: 20\n";
  AmortizedSetup s = default_setup("two-moons", HeadType::kFlow);
  load_setup_yaml(file.string(), s);
  EXPECT_EQ(s.network.flow.bins, 10);
  EXPECT_EQ(s.network.flow.coupling, CouplingType::kAffine);
  EXPECT_EQ(s.training.epochs, 7);
  EXPECT_EQ(s.training.learning_rate, 5e-4);
  EXPECT_EQ(s.network.encoder.width, 20);
  EXPECT_EQ(s.network.encoder.activation, nn::Activation::kTanh);
  EXPECT_EQ(s.pairs, 1234);
  EXPECT_EQ(s.window_problem.model.parameter("n"), 20);
  // config_text -> entries -> the same configuration.
  AmortizedSetup t;
  for (const auto& [k, v] : config_entries(s.network)) apply_entry(t, k, v);
  EXPECT_EQ(config_text(t.network), config_text(s.network));
  EXPECT_EQ(config_hash(t.network), config_hash(s.network));
  std::ofstream(file) << "flow:\n  bins: ten\n";
  expect_invalid([&] { load_setup_yaml(file.string(), s); }, "flow.bins = 'ten' is not an integer");
  std::ofstream(file) << "score:\n  sde: vpp\n";
  expect_invalid([&] { load_setup_yaml(file.string(), s); }, "score.sde = 'vpp' is not one of: vp, ve");
  // An unknown encoder type is refused, not taken for "local".
  std::ofstream(file) << "encoder:\n  type: lokal\n";
  expect_invalid([&] { load_setup_yaml(file.string(), s); }, "encoder.type = 'lokal' is not one of: mlp, conv, local");
  EXPECT_EQ(to_string(static_cast<EncoderType>(7)), "unknown");
  std::ofstream(file) << "[1, 2";
  expect_invalid([&] { load_setup_yaml(file.string(), s); }, "config");
  // The strict reader of every config: a key given twice is refused, naming it and its line.
  std::ofstream(file) << "training:\n  epochs: 3\n  epochs: 4\n";
  expect_invalid([&] { load_setup_yaml(file.string(), s); }, "key 'training.epochs' appears twice (line 3)");
  std::filesystem::remove_all(dir);
}

// Lorenz-96 state estimation with the convolutional encoder: the trained Gaussian head's mean beats
// climatology clearly, its spread is calibrated to within tolerance, and masking observations makes
// it less certain there.
TEST(Lorenz96, GaussianHeadIsInformativeAndCalibrated) {
  // Single-threaded like the other statistical tests (ctest runs two processes at once).
  struct SingleThread {
    int saved = nn::thread_count();
    SingleThread() { nn::set_thread_count(1); }
    ~SingleThread() { nn::set_thread_count(saved); }
  } single_thread;
  Rng rng = testing::seeded_rng(1206);
  WindowProblemOptions o;
  o.model.parameters["n"] = 20;
  const WindowProblem problem(o);
  AmortizedSetup s = default_setup("lorenz96", HeadType::kGaussian);
  s.network.encoder.width = 64;
  s.network.encoder.context = 32;
  s.network.gaussian.width = 64;
  s.training.epochs = 15;
  AmortizedPosterior q(s.network, problem.shape(), rng, problem.name());
  const auto summary = q.train(problem, 10000, s.training, rng);
  ASSERT_TRUE(summary.ok()) << summary.brief_report();
  const Dataset test = problem.simulate(200, rng);
  const double clim_sd = q.normalization().x_std.mean();
  double se = 0.0, se_observed = 0.0, z2 = 0.0;
  Index count = 0, observed = 0;
  for (Index j = 0; j < test.size(); ++j) {
    auto p = q.posterior(test.y.col(j), 0, rng);
    const Vector e = test.x.col(j) - p->mean();
    se += e.squaredNorm();
    z2 += e.cwiseQuotient(p->marginal_std()).squaredNorm();
    count += e.size();
    for (Index i = 0; i < e.size(); i += o.obs_stride, ++observed) se_observed += e[i] * e[i];
  }
  const double rmse = std::sqrt(se / static_cast<double>(count)), z_var = z2 / static_cast<double>(count);
  const double rmse_observed = std::sqrt(se_observed / static_cast<double>(observed));
  std::cout << "lorenz96 (n = 20): rmse " << rmse << " (observed points " << rmse_observed
            << ") vs climatological sd " << clim_sd << ", mean squared z-score " << z_var << ", "
            << summary.epochs_run << " epochs, " << summary.seconds << " s\n";
  EXPECT_LT(rmse, 0.75 * clim_sd);
  EXPECT_LT(rmse_observed, 1.6 * o.obs_noise);
  EXPECT_GT(z_var, 0.6);
  EXPECT_LT(z_var, 1.5);
  // Masking every observation of the first slot at grid point 0 (observed, obs_stride = 2) widens
  // the posterior there.
  Vector y = test.y.col(0);
  y[0] = 1.0;
  Mask keep = Mask::Constant(y.size(), true);
  keep[0] = false;
  const double sd_with = q.posterior(y, 0, rng)->marginal_std()[0];
  const double sd_without = q.posterior(y, 0, rng, keep)->marginal_std()[0];
  std::cout << "  posterior sd at point 0: observed " << sd_with << ", masked " << sd_without << "\n";
  EXPECT_GT(sd_without, sd_with);
}

}  // namespace
}  // namespace varflow::amortized
