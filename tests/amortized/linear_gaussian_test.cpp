// On the linear-Gaussian problem (x ~ N(0, 0.1 I_10), y = x + N(0, 0.1 I)) the exact posterior is
// N(y/2, 0.05 I): every head must recover its mean and covariance. The numbers measured are printed
// (and recorded in design/amortized.md). Tolerances are about twice the values measured with the
// default seed, so that other seeds pass too; the nightly variant trains on more pairs and checks
// tighter.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdlib>

#include "varflow/amortized/amortized_posterior.h"
#include "varflow/covariance/covariance.h"
#include "varflow/testing/conformance.h"
#include "varflow/validation/gaussian_accuracy.h"

namespace varflow::amortized {
namespace {

struct Accuracy {
  double mean_rms = 0.0;      // RMS over y and i of (mean_i - y_i/2) / posterior sd
  double variance_rms = 0.0;  // RMS over y and i of (variance_i / 0.05 - 1)
  double max_correlation = 0.0;
  double mean_fn_rms = 0.0;   // the same for AmortizedPosterior::mean() (MC estimator for flow/score)
};

// Moments of q(x | y) at the columns of ys: closed form for a GaussianPosterior, else from `draws`
// samples (whose own Monte Carlo error, 1/sqrt(draws) in sd units, is included in the numbers).
Accuracy measure(AmortizedPosterior& q, const LinearGaussian& problem, const Matrix& ys, Index draws, Rng& rng) {
  const double var = problem.posterior_variance();
  GaussianAccuracy moments;
  double sf = 0.0;
  for (Index k = 0; k < ys.cols(); ++k) {
    const Vector y = ys.col(k);
    auto p = q.posterior(y, draws, rng);
    EXPECT_EQ(p->provenance().method, "amortized_" + to_string(q.config().head));
    moments.add(*p, problem.posterior_mean(y), var, draws, rng);
    sf += ((q.mean(y) - problem.posterior_mean(y)) / std::sqrt(var)).squaredNorm();
  }
  Accuracy a;
  a.mean_rms = moments.mean_error();
  a.variance_rms = moments.variance_ratio_rms();
  a.max_correlation = moments.max_correlation();
  a.mean_fn_rms = std::sqrt(sf / static_cast<double>(ys.size()));
  return a;
}

struct LgCase {
  std::string name;
  HeadType head;
  Index pairs;
  Index epochs;
  double mean_rms;        // tolerances (with the head's default sampler: reverse SDE for score heads)
  double variance_rms;
  double max_correlation;
  double mean_fn_rms;     // for mean(): flow and score heads average mean_samples draws (for the
                          // score head through the probability-flow ODE, so it has the ODE's accuracy)
  SdeType sde = SdeType::kVp;
  // Score heads: the same network sampled by the probability-flow ODE (tolerances; 0 = not checked).
  double ode_mean_rms = 0.0, ode_variance_rms = 0.0, ode_max_correlation = 0.0;
};

// Statistical tests run single-threaded: ctest runs two test processes at once on two cores, and
// oversubscribed OpenMP barriers would make them many times slower. The threaded code paths are
// covered by the determinism and end-to-end gradient tests (amortized_posterior_test).
struct SingleThread {
  int saved = nn::thread_count();
  SingleThread() { nn::set_thread_count(1); }
  ~SingleThread() { nn::set_thread_count(saved); }
};

void report(const std::string& what, const Accuracy& a) {
  std::cout << "  " << what << ": mean error rms " << a.mean_rms << " sd (mean(): " << a.mean_fn_rms
            << "), variance ratio rms " << a.variance_rms << ", max |correlation| " << a.max_correlation << std::endl;
}

void run(const LgCase& c) {
#ifdef VARFLOW_NIGHTLY_SUITE
  if (std::getenv("VARFLOW_NIGHTLY") == nullptr) GTEST_SKIP() << "long statistical run: set VARFLOW_NIGHTLY=1";
#endif
  const SingleThread single_thread;
  Rng rng = testing::seeded_rng(901);
  const LinearGaussian problem;
  AmortizedSetup setup = default_setup("linear-gaussian", c.head);
  setup.training.epochs = c.epochs;
  setup.network.score.sde = c.sde;
  AmortizedPosterior q(setup.network, problem.shape(), rng, problem.name());
  const auto start = std::chrono::steady_clock::now();
  const auto summary = q.train(problem, c.pairs, setup.training, rng);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(summary.ok()) << summary.brief_report();
  std::cout << c.name << ": " << c.pairs << " pairs, " << summary.epochs_run << " epochs, " << seconds << " s ("
            << summary.pairs_per_second << " pairs/s), best validation loss " << summary.best_validation_loss
            << std::endl;
  // The Gaussian head's moments are closed form: many observations. Sample-based heads: 8
  // observations x 1500 draws (Monte Carlo error 0.026 sd in the mean, 0.037 in the variance ratio).
  const bool closed_form = c.head == HeadType::kGaussian;
  const Matrix ys = problem.simulate(closed_form ? 100 : 8, rng).y;
  const Accuracy a = measure(q, problem, ys, 1500, rng);
  report(c.head == HeadType::kScore ? "reverse SDE" : "closed form or draws", a);
  EXPECT_LT(a.mean_rms, c.mean_rms);
  EXPECT_LT(a.mean_fn_rms, c.mean_fn_rms);
  EXPECT_LT(a.variance_rms, c.variance_rms);
  EXPECT_LT(a.max_correlation, c.max_correlation);
  if (c.ode_mean_rms > 0.0) {
    q.set_sampler(Sampler::kOde, setup.network.score.steps);
    const Accuracy o = measure(q, problem, ys, 1500, rng);
    report("probability-flow ODE", o);
    EXPECT_LT(o.mean_rms, c.ode_mean_rms);
    EXPECT_LT(o.variance_rms, c.ode_variance_rms);
    EXPECT_LT(o.max_correlation, c.ode_max_correlation);
  }
}

void PrintTo(const LgCase& c, std::ostream* os) { *os << c.name; }

class LinearGaussianRecovery : public ::testing::TestWithParam<LgCase> {};
TEST_P(LinearGaussianRecovery, MeanAndCovarianceMatchTheExactPosterior) { run(GetParam()); }

#ifndef VARFLOW_NIGHTLY_SUITE
INSTANTIATE_TEST_SUITE_P(
    Heads, LinearGaussianRecovery,
    ::testing::Values(LgCase{"gaussian", HeadType::kGaussian, 30000, 20, 0.2, 0.12, 0.3, 0.2},
                      LgCase{"flow", HeadType::kFlow, 30000, 20, 0.2, 0.16, 0.3, 0.2},
                      LgCase{"score_vp", HeadType::kScore, 30000, 20, 0.2, 0.14, 0.3, 0.25, SdeType::kVp, 0.25, 0.3, 0.4},
                      LgCase{"score_ve", HeadType::kScore, 30000, 20, 0.2, 0.14, 0.3, 0.25, SdeType::kVe}),
    [](const ::testing::TestParamInfo<LgCase>& p) { return p.param.name; });
#else
// Nightly (label nightly, VARFLOW_NIGHTLY=1): more pairs, tighter tolerances.
INSTANTIATE_TEST_SUITE_P(
    Nightly, LinearGaussianRecovery,
    ::testing::Values(LgCase{"gaussian", HeadType::kGaussian, 200000, 20, 0.08, 0.06, 0.15, 0.08},
                      LgCase{"flow", HeadType::kFlow, 200000, 20, 0.1, 0.1, 0.15, 0.1},
                      LgCase{"score_vp", HeadType::kScore, 200000, 20, 0.1, 0.1, 0.15, 0.13, SdeType::kVp, 0.12, 0.15, 0.2},
                      LgCase{"score_ve", HeadType::kScore, 200000, 20, 0.1, 0.1, 0.15, 0.15, SdeType::kVe}),
    [](const ::testing::TestParamInfo<LgCase>& p) { return p.param.name; });
#endif

}  // namespace
}  // namespace varflow::amortized
