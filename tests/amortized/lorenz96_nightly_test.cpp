// Nightly: Lorenz-96 (40 variables, the default problem) with the default configuration of the
// Gaussian and flow heads, trained as `varflow train` does. The posterior mean must beat
// climatology clearly and the spread must be calibrated (mean squared z-score near 1).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>

#include "varflow/amortized/amortized_posterior.h"
#include "varflow/testing/conformance.h"

namespace varflow::amortized {
namespace {

}  // namespace
// gtest prints parameters with PrintTo found by argument-dependent lookup.
void PrintTo(HeadType h, std::ostream* os) { *os << to_string(h); }
namespace {

class Lorenz96Default : public ::testing::TestWithParam<HeadType> {};

TEST_P(Lorenz96Default, InformativeAndCalibrated) {
  if (std::getenv("VARFLOW_NIGHTLY") == nullptr) GTEST_SKIP() << "long statistical run: set VARFLOW_NIGHTLY=1";
  const int threads = nn::thread_count();
  nn::set_thread_count(1);  // ctest runs two processes at once; see linear_gaussian_test.cpp
  Rng rng = testing::seeded_rng(1301);
  const AmortizedSetup s = default_setup("lorenz96", GetParam());
  const WindowProblem problem(s.window_problem);
  AmortizedPosterior q(s.network, problem.shape(), rng, problem.name());
  const auto summary = q.train(problem, s.pairs, s.training, rng);
  ASSERT_TRUE(summary.ok()) << summary.brief_report();
  const Dataset test = problem.simulate(200, rng);
  double se = 0.0, z2 = 0.0;
  Index count = 0;
  for (Index j = 0; j < test.size(); ++j) {
    auto p = q.posterior(test.y.col(j), 500, rng);
    const Vector e = test.x.col(j) - p->mean();
    se += e.squaredNorm();
    z2 += e.cwiseQuotient(p->marginal_std()).squaredNorm();
    count += e.size();
  }
  const double rmse = std::sqrt(se / static_cast<double>(count)), z_var = z2 / static_cast<double>(count);
  const double clim = q.normalization().x_std.mean();
  std::cout << to_string(GetParam()) << ": rmse " << rmse << " vs climatological sd " << clim
            << ", mean squared z-score " << z_var << ", " << summary.brief_report() << "\n";
  nn::set_thread_count(threads);
  EXPECT_LT(rmse, 0.6 * clim);
  EXPECT_GT(z_var, 0.7);
  EXPECT_LT(z_var, 1.4);
}

INSTANTIATE_TEST_SUITE_P(Nightly, Lorenz96Default, ::testing::Values(HeadType::kGaussian, HeadType::kFlow),
                         [](const ::testing::TestParamInfo<HeadType>& p) { return to_string(p.param); });

}  // namespace
}  // namespace varflow::amortized
