// Seed problem 000: the two-moons inverse problem y = x1 + x2 + N(0, 0.1^2). The flow head's
// posterior must (a) at y = 0 hold both modes, one per moon, each with a real share of the samples
// close to the exact share, and (b) for y in {-1, 0, 1} give samples whose A x = x1 + x2 centre on y
// with spread close to the exact posterior spread (about sigma = 0.1). The exact values come from
// importance weighting of 4e5 prior draws by the likelihood (not hard-coded).
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdlib>

#include "varflow/amortized/amortized_posterior.h"
#include "varflow/testing/conformance.h"
#include "varflow/validation/two_sample.h"

namespace varflow::amortized {
namespace {

struct MoonsCase {
  std::string name;
  HeadType head;
  Index pairs, epochs, width;  // 0: the head's default (default_setup)
  double mean_tol, sd_ratio_tol, share_tol, min_share;
  // k-NN classifier two-sample accuracy against 2000 exact draws (0: printed only). Measured with the
  // default case's seed: 0.511 / 0.576 / 0.506 at y = -1 / 0 / 1 (the bimodal y = 0 is the hardest).
  double max_c2st = 0.0;
};

// Statistical tests run single-threaded: ctest runs two test processes at once on two cores, and
// oversubscribed OpenMP barriers would make them many times slower. The threaded code paths are
// covered by the determinism and end-to-end gradient tests (amortized_posterior_test).
struct SingleThread {
  int saved = nn::thread_count();
  SingleThread() { nn::set_thread_count(1); }
  ~SingleThread() { nn::set_thread_count(saved); }
};

void run(const MoonsCase& c) {
#ifdef VARFLOW_NIGHTLY_SUITE
  if (std::getenv("VARFLOW_NIGHTLY") == nullptr) GTEST_SKIP() << "long statistical run: set VARFLOW_NIGHTLY=1";
#endif
  const SingleThread single_thread;
  Rng rng = testing::seeded_rng(1001);
  const TwoMoons problem;
  AmortizedSetup setup = default_setup("two-moons", c.head);
  if (c.epochs > 0) setup.training.epochs = c.epochs;
  if (c.width > 0) {
    setup.network.flow.width = c.width;
    setup.network.score.width = c.width;
  }
  const Index pairs = c.pairs > 0 ? c.pairs : setup.pairs;
  AmortizedPosterior q(setup.network, problem.shape(), rng, problem.name());
  const auto start = std::chrono::steady_clock::now();
  const auto summary = q.train(problem, pairs, setup.training, rng);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(summary.ok()) << summary.brief_report();
  std::cout << c.name << ": " << pairs << " pairs, " << summary.epochs_run << " epochs, " << seconds
            << " s, best validation NLL " << summary.best_validation_loss << "\n";
  Rng prior_rng(rng.engine()());
  const Matrix prior = TwoMoons::sample_prior(400000, prior_rng);
  for (double y : {-1.0, 0.0, 1.0}) {
    const TwoMoons::Summary ref = TwoMoons::exact_summary(y, prior);
    const Matrix draws = q.sample(Vector::Constant(1, y), 4000, rng);
    const TwoMoons::Summary got = TwoMoons::sample_summary(draws);
    const double m = got.mean, sd = got.sd, upper = got.upper_share;
    // Classifier two-sample test against 2000 exact draws (0.5: indistinguishable).
    const double c2st =
        knn_two_sample_accuracy(draws.leftCols(2000), TwoMoons::exact_draws(y, prior, 2000, rng));
    std::cout << "  y = " << y << ": mean(Ax) " << m << " (exact " << ref.mean << "), sd(Ax) " << sd << " (exact "
              << ref.sd << "), upper-moon share " << upper << " (exact " << ref.upper_share << "), C2ST accuracy "
              << c2st << std::endl;
    if (c.max_c2st > 0.0) {
      EXPECT_LT(c2st, c.max_c2st) << "y = " << y;
    }
    EXPECT_NEAR(m, ref.mean, c.mean_tol) << "y = " << y;
    EXPECT_NEAR(sd / ref.sd, 1.0, c.sd_ratio_tol) << "y = " << y;
    EXPECT_NEAR(upper, ref.upper_share, c.share_tol) << "y = " << y;
    if (y == 0.0) {
      // Bimodal: each moon holds a real share of the samples.
      EXPECT_GT(upper, c.min_share);
      EXPECT_GT(1.0 - upper, c.min_share);
    }
  }
}

void PrintTo(const MoonsCase& c, std::ostream* os) { *os << c.name; }

class TwoMoonsPosterior : public ::testing::TestWithParam<MoonsCase> {};
TEST_P(TwoMoonsPosterior, BimodalPosteriorConsistentWithTheObservation) { run(GetParam()); }

#ifndef VARFLOW_NIGHTLY_SUITE
INSTANTIATE_TEST_SUITE_P(Default, TwoMoonsPosterior,
                         ::testing::Values(MoonsCase{"flow", HeadType::kFlow, 6000, 100, 48, 0.04, 0.25, 0.1, 0.25, 0.65}),
                         [](const ::testing::TestParamInfo<MoonsCase>& p) { return p.param.name; });
#else
// Nightly: the seed-000 setting trained longer (tighter), and the score head exactly as `varflow
// train` sets it up (20000 pairs, to convergence, pc sampler, the step to t = 0), held to issue #20's
// goal: the sd across the observation line within 5% and the mode shares within 0.05. Measured with
// this training seed: sds within 2.9%, shares within 0.014; over six training seeds 1.4-4.2% and
// 0.028 (design/amortized.md, "Score samplers on two-moons"). It drew 15-21% too narrow before the
// log-sigma training times, the weights' average, the power-2 time grid and the corrector, and
// 3-8% off with 6000 pairs and without the step to t = 0.
INSTANTIATE_TEST_SUITE_P(Nightly, TwoMoonsPosterior,
                         ::testing::Values(MoonsCase{"flow", HeadType::kFlow, 20000, 250, 64, 0.025, 0.15, 0.06, 0.35},
                                           MoonsCase{"score_default", HeadType::kScore, 0, 0, 0, 0.04, 0.05, 0.05, 0.35}),
                         [](const ::testing::TestParamInfo<MoonsCase>& p) { return p.param.name; });
#endif

}  // namespace
}  // namespace varflow::amortized
