#pragma once
// Distribution functions the validation gates need. The special functions are Boost.Math's (private
// to the library: this header shows only Eigen types):
//  - the regularized incomplete gamma functions P(a, x) and Q(a, x) = 1 - P(a, x); Q is computed
//    directly in the upper tail, so tiny p-values keep their relative accuracy;
//  - the chi-square survival function P(X > x) = Q(k / 2, x / 2);
//  - the binomial probability mass, distribution and quantile functions (meant for n up to ~10^5);
//  - empirical quantiles of a sample.
#include <vector>

#include "varflow/core/types.h"

namespace varflow {

// P(a, x) = gamma(a, x) / Gamma(a) for a > 0, x >= 0 (x = +inf allowed). Throws InvalidArgument on
// a <= 0, x < 0 or NaN, and NumericalError if the evaluation overflows or does not converge.
// Relative accuracy ~1e-15 (tests/validation/statistics_test.cpp checks 1e-11 at a = 1000).
double regularized_gamma_p(double a, double x);
// Q(a, x) = Gamma(a, x) / Gamma(a) = 1 - P(a, x); same domain and errors.
double regularized_gamma_q(double a, double x);

// P(X > x) for X ~ chi-square with `dof` > 0 degrees of freedom; 1 for x <= 0.
double chi_square_survival(double x, double dof);

// The binomial distribution Bin(n, p), n >= 0, p in [0, 1] (InvalidArgument otherwise). The mass
// function as a vector of n + 1 probabilities, k = 0..n.
Vector binomial_pmf(Index n, double p);
// P(X <= k) (0 for k < 0, 1 for k >= n).
double binomial_cdf(Index k, Index n, double p);
// The quantile: the smallest k with P(X <= k) >= q, for q in [0, 1].
Index binomial_quantile(double q, Index n, double p);

// The p-quantile (p in [0, 1]) of a sample by linear interpolation between order statistics
// (Hyndman & Fan 1996, definition 7: the default of R and NumPy). NaN values sort last, so a NaN
// in the sample shows in the upper quantiles. Throws InvalidArgument on an empty sample.
double empirical_quantile(std::vector<double> values, double p);

}  // namespace varflow
