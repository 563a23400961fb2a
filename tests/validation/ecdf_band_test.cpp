// The ECDF simultaneous band (Säilynoja, Bürkner & Vehtari 2022): exact coverage against brute-force
// enumeration, the adjusted level, Monte Carlo coverage, the simulation method, and power.
#include <gtest/gtest.h>

#include <cmath>

#include "varflow/core/error.h"
#include "varflow/testing/conformance.h"
#include "varflow/validation/ecdf_band.h"

namespace varflow {
namespace {

// The fraction of all R^N equally likely rank tuples whose counts stay inside the bounds.
double enumerated_coverage(Index samples, Index rank_values, const std::vector<Index>& points,
                           const IndexVector& lower, const IndexVector& upper) {
  Index total = 1;
  for (Index j = 0; j < samples; ++j) total *= rank_values;
  Index inside = 0;
  for (Index code = 0; code < total; ++code) {
    std::vector<Index> ranks;
    for (Index j = 0, c = code; j < samples; ++j, c /= rank_values) ranks.push_back(c % rank_values);
    bool ok = true;
    for (std::size_t k = 0; k < points.size(); ++k) {
      Index count = 0;
      for (Index r : ranks) count += r < points[k];
      ok = ok && count >= lower[static_cast<Index>(k)] && count <= upper[static_cast<Index>(k)];
    }
    inside += ok;
  }
  return static_cast<double>(inside) / static_cast<double>(total);
}

IndexVector uniform_ranks(Index n, Index rank_values, Rng& rng) {
  IndexVector r(n);
  for (Index j = 0; j < n; ++j) r[j] = rng.uniform_index(rank_values);
  return r;
}

TEST(EcdfBand, CoverageRecursionMatchesEnumeration) {
  // Pointwise bands of several levels on 5 rank values, 4 samples (625 tuples).
  for (double gamma : {0.05, 0.3, 0.7}) {
    const EcdfBand b = ecdf_pointwise_band(4, 5, gamma);
    EXPECT_NEAR(b.coverage, enumerated_coverage(4, 5, b.points, b.lower, b.upper), 1e-13) << "gamma " << gamma;
  }
  // Arbitrary bounds on a subset of evaluation points.
  const std::vector<Index> points = {1, 3};
  Vector z(2);
  z << 1.0 / 4.0, 3.0 / 4.0;
  IndexVector lower(2), upper(2);
  lower << 0, 2;
  upper << 1, 3;
  EXPECT_NEAR(ecdf_band_coverage(3, z, lower, upper), enumerated_coverage(3, 4, points, lower, upper), 1e-14);
}

TEST(EcdfBand, EvaluationPoints) {
  const auto all = ecdf_evaluation_points(100, 100);
  ASSERT_EQ(all.size(), 99u);
  EXPECT_EQ(all.front(), 1);
  EXPECT_EQ(all.back(), 99);
  const auto some = ecdf_evaluation_points(1000, 100);
  ASSERT_EQ(some.size(), 100u);
  for (std::size_t k = 1; k < some.size(); ++k) EXPECT_GT(some[k], some[k - 1]);
  EXPECT_GE(some.front(), 1);
  EXPECT_LE(some.back(), 999);
}

TEST(EcdfBand, AdjustedLevelIsTheLargestThatCovers) {
  const Index n = 200, r = 100;
  const double alpha = 0.05;
  const EcdfBand b = ecdf_simultaneous_band(n, r, alpha);
  std::cout << b.report() << std::endl;
  EXPECT_GE(b.coverage, 1.0 - alpha);
  // Between Bonferroni (alpha / K) and the pointwise level (alpha): a pointwise 95% band covers the
  // whole ECDF with far less than 95%.
  EXPECT_GT(b.gamma, alpha / static_cast<double>(b.z.size()));
  EXPECT_LT(b.gamma, alpha);
  EXPECT_LT(ecdf_pointwise_band(n, r, alpha).coverage, 1.0 - alpha - 0.2);
  // Largest: the next band up (gamma a little larger) no longer covers.
  EXPECT_LT(ecdf_pointwise_band(n, r, b.gamma * 1.0001).coverage, 1.0 - alpha);
  // The band contains the expected ECDF and is symmetric about it for z <-> 1 - z.
  for (Index k = 0; k < b.z.size(); ++k) {
    EXPECT_LE(b.lower[k], n * b.z[k]);
    EXPECT_GE(b.upper[k], n * b.z[k]);
    const Index mirror = b.z.size() - 1 - k;
    EXPECT_EQ(b.lower[k], n - b.upper[mirror]) << "k = " << k;
  }
}

TEST(EcdfBand, MonteCarloCoverageMatchesExactCoverage) {
  // Uniform ranks must leave the band with probability 1 - coverage (about alpha).
  Rng rng = testing::seeded_rng(511);
  const Index n = 200, r = 100, sets = 4000;
  const EcdfBand b = ecdf_simultaneous_band(n, r, 0.05);
  Index rejected = 0;
  for (Index m = 0; m < sets; ++m) rejected += !ecdf_band_test(b, uniform_ranks(n, r, rng)).passed;
  const double p = 1.0 - b.coverage;
  const double sd = std::sqrt(p * (1.0 - p) / static_cast<double>(sets));
  const double observed = static_cast<double>(rejected) / static_cast<double>(sets);
  std::cout << "Monte Carlo false-alarm rate " << observed << " vs exact " << p << " (sd " << sd << ")" << std::endl;
  EXPECT_NEAR(observed, p, 4.0 * sd);
}

TEST(EcdfBand, SimulationMethodAgreesWithOptimization) {
  Rng rng = testing::seeded_rng(512);
  const double alpha = 0.05;
  const Index simulations = 5000;
  const EcdfBand sim = ecdf_simultaneous_band_simulated(200, 100, alpha, simulations, rng);
  const EcdfBand opt = ecdf_simultaneous_band(200, 100, alpha);
  std::cout << sim.report() << "\n" << opt.report() << std::endl;
  EXPECT_EQ(sim.method, EcdfBandMethod::kSimulation);
  // The simulated gamma is an alpha-quantile of M simulated statistics: its band's exact coverage
  // is 1 - alpha up to the Monte Carlo error sqrt(alpha (1 - alpha) / M) (0.003) and one step of
  // the discrete coverage.
  EXPECT_NEAR(sim.coverage, 1.0 - alpha, 4.0 * std::sqrt(alpha * (1.0 - alpha) / simulations) + 0.005);
  EXPECT_NEAR(std::log(sim.gamma / opt.gamma), 0.0, 0.5);
}

TEST(EcdfBand, DetectsNonUniformRanks) {
  Rng rng = testing::seeded_rng(513);
  const Index n = 200, r = 100;
  const EcdfBand b = ecdf_simultaneous_band(n, r, 0.01);
  // Ranks of U^2: too many small ranks (a posterior biased upwards).
  IndexVector skewed(n);
  for (Index j = 0; j < n; ++j) {
    const double u = rng.uniform();
    skewed[j] = static_cast<Index>(std::floor(r * u * u));
  }
  const EcdfTestResult t = ecdf_band_test(b, skewed);
  EXPECT_FALSE(t.passed);
  EXPECT_GT(t.violations, 0);
  EXPECT_GT(t.max_excursion, 0.0);
  EXPECT_LT(t.min_pointwise_p, b.gamma);
  // Every rank value exactly twice: a perfectly flat ECDF passes with margin.
  IndexVector flat(n);
  for (Index j = 0; j < n; ++j) flat[j] = j % r;
  const EcdfTestResult f = ecdf_band_test(b, flat);
  EXPECT_TRUE(f.passed);
  EXPECT_LT(f.max_excursion, 0.0);
  EXPECT_LT(f.ecdf_difference.cwiseAbs().maxCoeff(), 1.0 / n + 1e-15);
}

TEST(EcdfBand, RejectsBadInput) {
  const EcdfBand b = ecdf_simultaneous_band(20, 10, 0.05);
  EXPECT_THROW(ecdf_band_test(b, IndexVector::Zero(19)), InvalidArgument);
  IndexVector out_of_range = IndexVector::Zero(20);
  out_of_range[4] = 10;
  EXPECT_THROW(ecdf_band_test(b, out_of_range), InvalidArgument);
  EXPECT_THROW(ecdf_simultaneous_band(20, 10, 0.0), InvalidArgument);
  EXPECT_THROW(ecdf_simultaneous_band(0, 10, 0.05), InvalidArgument);
  EXPECT_THROW(ecdf_pointwise_band(20, 1, 0.05), InvalidArgument);
  EXPECT_EQ(ecdf_band_method_from_string("simulation"), EcdfBandMethod::kSimulation);
  EXPECT_THROW(ecdf_band_method_from_string("bootstrap"), InvalidArgument);
}

}  // namespace
}  // namespace varflow
