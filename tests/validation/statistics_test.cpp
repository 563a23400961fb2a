// The distribution functions behind the gates against closed forms, tabulated quantiles and values
// from an arbitrary-precision evaluation (mpmath gammainc, 30 digits).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "varflow/core/error.h"
#include "varflow/testing/conformance.h"
#include "varflow/validation/statistics.h"

namespace varflow {
namespace {

// Relative error, for values that may be tiny.
double rel(double a, double b) { return std::abs(a - b) / std::abs(b); }

TEST(RegularizedGamma, ExponentialCaseAEqualsOne) {
  // Q(1, x) = e^-x; x spans both the series (x < 2) and the continued fraction.
  for (double x : {1e-3, 0.5, 1.0, 1.9, 2.1, 5.0, 20.0, 100.0, 600.0}) {
    EXPECT_LT(rel(regularized_gamma_q(1.0, x), std::exp(-x)), 1e-13) << "x = " << x;
    EXPECT_LT(std::abs(regularized_gamma_p(1.0, x) - (-std::expm1(-x))), 1e-15) << "x = " << x;
  }
}

TEST(RegularizedGamma, HalfIntegerIsErrorFunction) {
  // P(1/2, x) = erf(sqrt x), Q(1/2, x) = erfc(sqrt x) (down to 1e-15 in the upper tail).
  for (double x : {1e-6, 0.3, 1.0, 1.6, 4.0, 12.0, 30.0}) {
    EXPECT_LT(rel(regularized_gamma_p(0.5, x), std::erf(std::sqrt(x))), 1e-13) << "x = " << x;
    EXPECT_LT(rel(regularized_gamma_q(0.5, x), std::erfc(std::sqrt(x))), 1e-12) << "x = " << x;
  }
}

TEST(RegularizedGamma, IntegerOrderIsPoissonTail) {
  // Q(n, x) = e^-x sum_{k<n} x^k / k! (the probability of fewer than n Poisson(x) events).
  for (int n : {2, 5, 11}) {
    for (double x : {0.5, 3.0, 6.0, 12.0, 25.0}) {
      double term = 1.0, sum = 0.0;
      for (int k = 0; k < n; ++k) {
        sum += term;
        term *= x / (k + 1);
      }
      EXPECT_LT(rel(regularized_gamma_q(n, x), std::exp(-x) * sum), 1e-12) << "n = " << n << ", x = " << x;
    }
  }
}

TEST(RegularizedGamma, ArbitraryPrecisionReferenceValues) {
  EXPECT_LT(rel(regularized_gamma_p(1000.0, 1000.0), 0.504205244180215508503777843602), 1e-11);
  EXPECT_LT(rel(regularized_gamma_p(0.1, 0.01), 0.662621259954479805763079666459), 1e-13);
  EXPECT_LT(rel(regularized_gamma_p(50.0, 30.0), 0.000518891462548034292575047388713), 1e-12);
  EXPECT_LT(rel(regularized_gamma_q(2.5, 40.0), 8.3918251148316100894881174059e-16), 1e-12);
}

TEST(RegularizedGamma, ComplementAndMonotone) {
  for (double a : {0.3, 1.0, 4.5, 9.5, 60.0}) {
    double previous = 0.0;
    for (double x = 0.0; x < 3.0 * a + 20.0; x += 0.37) {
      const double p = regularized_gamma_p(a, x), q = regularized_gamma_q(a, x);
      EXPECT_NEAR(p + q, 1.0, 1e-14) << "a = " << a << ", x = " << x;
      EXPECT_GE(p, previous) << "a = " << a << ", x = " << x;
      previous = p;
    }
  }
  EXPECT_EQ(regularized_gamma_p(2.0, 0.0), 0.0);
  EXPECT_EQ(regularized_gamma_q(2.0, std::numeric_limits<double>::infinity()), 0.0);
}

TEST(RegularizedGamma, RejectsBadArguments) {
  EXPECT_THROW(regularized_gamma_p(0.0, 1.0), InvalidArgument);
  EXPECT_THROW(regularized_gamma_p(-1.0, 1.0), InvalidArgument);
  EXPECT_THROW(regularized_gamma_q(1.0, -0.5), InvalidArgument);
  EXPECT_THROW(regularized_gamma_q(1.0, std::nan("")), InvalidArgument);
  EXPECT_THROW(chi_square_survival(1.0, 0.0), InvalidArgument);
}

TEST(ChiSquare, TabulatedQuantiles) {
  // Upper quantiles of chi-square tables: P(X > q) = level.
  EXPECT_LT(rel(chi_square_survival(3.841458820694124, 1.0), 0.05), 1e-12);
  EXPECT_LT(rel(chi_square_survival(18.307038053275146, 10.0), 0.05), 1e-12);
  EXPECT_LT(rel(chi_square_survival(36.19086912927004, 19.0), 0.01), 1e-12);
  EXPECT_LT(rel(chi_square_survival(124.34211340400407, 100.0), 0.05), 1e-11);
  // A far tail, relative accuracy kept (mpmath: 1.6139305336977304790405739225e-37).
  EXPECT_LT(rel(chi_square_survival(200.0, 10.0), 1.6139305336977304790405739225e-37), 1e-11);
  EXPECT_EQ(chi_square_survival(-1.0, 3.0), 1.0);
}

TEST(ChiSquare, SurvivalMatchesSimulatedStatistic) {
  // The survival function against the empirical distribution of sums of squared normals.
  Rng rng = testing::seeded_rng(501);
  const int dof = 7, draws = 20000;
  int above = 0;
  const double q = 14.067140449340169;  // the tabulated 95% quantile for 7 dof
  for (int i = 0; i < draws; ++i) above += rng.normal_vector(dof).squaredNorm() > q;
  const double p = chi_square_survival(q, dof);
  const double sd = std::sqrt(p * (1.0 - p) / draws);
  EXPECT_NEAR(static_cast<double>(above) / draws, p, 5.0 * sd);
}

TEST(Binomial, MassDistributionAndQuantile) {
  // Bin(4, 0.3): P(0) = 0.7^4, P(X <= 1) = 0.7^4 + 4 0.3 0.7^3.
  const Vector pmf = binomial_pmf(4, 0.3);
  EXPECT_NEAR(pmf.sum(), 1.0, 1e-15);
  EXPECT_NEAR(pmf[0], std::pow(0.7, 4), 1e-15);
  EXPECT_NEAR(binomial_cdf(1, 4, 0.3), std::pow(0.7, 4) + 4 * 0.3 * std::pow(0.7, 3), 1e-15);
  EXPECT_EQ(binomial_cdf(-1, 4, 0.3), 0.0);
  EXPECT_EQ(binomial_cdf(4, 4, 0.3), 1.0);
  // Symmetry of Bin(n, 1/2) and the quantile's definition (smallest k with cdf >= q).
  for (Index k = 0; k < 30; ++k) EXPECT_NEAR(binomial_cdf(k, 30, 0.5), 1.0 - binomial_cdf(29 - k, 30, 0.5), 1e-14);
  for (double q : {0.001, 0.05, 0.5, 0.9, 0.999}) {
    const Index k = binomial_quantile(q, 200, 0.05);
    EXPECT_GE(binomial_cdf(k, 200, 0.05), q);
    if (k > 0) {
      EXPECT_LT(binomial_cdf(k - 1, 200, 0.05), q);
    }
  }
  EXPECT_EQ(binomial_pmf(5, 0.0)[0], 1.0);
  EXPECT_EQ(binomial_pmf(5, 1.0)[5], 1.0);
  EXPECT_THROW(binomial_pmf(5, 1.5), InvalidArgument);
  EXPECT_THROW(binomial_quantile(1.5, 5, 0.5), InvalidArgument);
}

TEST(Binomial, ExactRationalReferenceValues) {
  // Exact sums of C(n, k) p^k (1 - p)^(n - k) in rational arithmetic, rounded to double.
  EXPECT_LT(rel(binomial_pmf(10, 0.3)[3], 0.266827932), 1e-14);
  EXPECT_LT(rel(binomial_cdf(3, 10, 0.3), 0.6496107184), 1e-14);
  EXPECT_LT(rel(binomial_pmf(1000, 0.01)[0], 4.317124741065825e-05), 1e-13);
  // P(X <= 29) for Bin(1000, 0.01): 1 - 2.0599888509719576e-07.
  EXPECT_LT(rel(binomial_cdf(29, 1000, 0.01), 0.9999997940011149), 1e-14);
  EXPECT_EQ(binomial_quantile(0.6496107184 - 1e-9, 10, 0.3), 3);
  EXPECT_EQ(binomial_quantile(0.6496107184 + 1e-9, 10, 0.3), 4);
  EXPECT_EQ(binomial_quantile(0.0, 10, 0.3), 0);
  EXPECT_EQ(binomial_quantile(1.0, 10, 0.3), 10);
}

TEST(Binomial, RejectsBadArguments) {
  EXPECT_THROW(binomial_pmf(-1, 0.5), InvalidArgument);
  EXPECT_THROW(binomial_cdf(2, 5, -0.1), InvalidArgument);
  EXPECT_THROW(binomial_cdf(2, 5, std::nan("")), InvalidArgument);
  EXPECT_THROW(binomial_quantile(0.5, -3, 0.5), InvalidArgument);
  EXPECT_THROW(binomial_quantile(std::nan(""), 5, 0.5), InvalidArgument);
}

TEST(ChiSquare, InfiniteStatisticHasZeroSurvival) {
  EXPECT_EQ(chi_square_survival(std::numeric_limits<double>::infinity(), 3.0), 0.0);
  EXPECT_THROW(chi_square_survival(std::nan(""), 3.0), InvalidArgument);
  EXPECT_THROW(chi_square_survival(1.0, std::numeric_limits<double>::infinity()), InvalidArgument);
}

TEST(EmpiricalQuantile, LinearInterpolationBetweenOrderStatistics) {
  const std::vector<double> v = {4.0, 1.0, 3.0, 2.0};
  EXPECT_DOUBLE_EQ(empirical_quantile(v, 0.0), 1.0);
  EXPECT_DOUBLE_EQ(empirical_quantile(v, 0.25), 1.75);
  EXPECT_DOUBLE_EQ(empirical_quantile(v, 0.5), 2.5);
  EXPECT_DOUBLE_EQ(empirical_quantile(v, 1.0), 4.0);
  EXPECT_TRUE(std::isnan(empirical_quantile({1.0, std::nan("")}, 1.0)));
  EXPECT_THROW(empirical_quantile({}, 0.5), InvalidArgument);
}

}  // namespace
}  // namespace varflow
