#pragma once
// Distribution functions the validation gates need, written out so the gates depend on nothing but
// Eigen:
//  - the regularized incomplete gamma functions P(a, x) and Q(a, x) = 1 - P(a, x), by the series
//    for x < a + 1 and by the continued fraction (modified Lentz) otherwise, as in Press, Teukolsky,
//    Vetterling & Flannery, "Numerical Recipes", 3rd ed. (2007), section 6.2; Q is computed directly
//    in the upper tail, so tiny p-values keep their relative accuracy;
//  - the chi-square survival function P(X > x) = Q(k / 2, x / 2);
//  - the binomial probability mass, distribution and quantile functions (exact sums of the mass
//    function in log space; meant for n up to ~10^5);
//  - empirical quantiles of a sample.
#include <vector>

#include "varflow/core/types.h"

namespace varflow {

// P(a, x) = gamma(a, x) / Gamma(a) for a > 0, x >= 0 (x = +inf allowed). Throws InvalidArgument on
// a <= 0, x < 0 or NaN, and NumericalError if the series or the continued fraction does not
// converge within 1000 + 50 sqrt(a) terms (both need O(sqrt(a)) terms, about 8.5 sqrt(a) at
// worst, so this guards against a broken input rather than a hard case). Relative accuracy ~1e-14
// for small a, degrading like a * 1e-15 (the exponent a log x - x - log Gamma(a) of the prefactor
// is a difference of terms of size ~a): ~1e-12 at a = 1000.
double regularized_gamma_p(double a, double x);
// Q(a, x) = Gamma(a, x) / Gamma(a) = 1 - P(a, x); same domain and errors.
double regularized_gamma_q(double a, double x);

// P(X > x) for X ~ chi-square with `dof` > 0 degrees of freedom; 1 for x <= 0.
double chi_square_survival(double x, double dof);

// The binomial distribution Bin(n, p), n >= 0, p in [0, 1]. The mass function as a vector of n + 1
// probabilities, k = 0..n.
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
