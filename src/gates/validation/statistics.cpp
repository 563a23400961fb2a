#include "varflow/validation/statistics.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "varflow/core/error.h"

namespace varflow {

namespace {

constexpr double kEpsilon = std::numeric_limits<double>::epsilon();
// Smallest magnitude the Lentz algorithm lets a denominator take (it replaces an exact zero).
constexpr double kTiny = 1e-300;

void check_gamma_arguments(const char* where, double a, double x) {
  if (!(a > 0.0) || !std::isfinite(a)) {
    throw InvalidArgument(format_message(where, ": a = ", a, " must be positive and finite"));
  }
  if (!(x >= 0.0)) throw InvalidArgument(format_message(where, ": x = ", x, " must be >= 0"));
}

// The iteration cap: both expansions need O(sqrt(a)) terms near x = a.
int max_iterations(double a) { return 1000 + static_cast<int>(50.0 * std::sqrt(a)); }

// log of the prefactor x^a e^-x / Gamma(a).
double log_prefactor(double a, double x) { return a * std::log(x) - x - std::lgamma(a); }

// P(a, x) by its series, for x < a + 1:  P = x^a e^-x / Gamma(a) * sum_n x^n / (a (a+1) ... (a+n)).
double gamma_series(double a, double x) {
  double ap = a, term = 1.0 / a, sum = term;
  const int cap = max_iterations(a);
  for (int n = 0; n < cap; ++n) {
    ap += 1.0;
    term *= x / ap;
    sum += term;
    if (std::abs(term) < std::abs(sum) * kEpsilon) return sum * std::exp(log_prefactor(a, x));
  }
  throw NumericalError(format_message("regularized_gamma: series for a = ", a, ", x = ", x,
                                      " did not converge in ", cap, " terms"));
}

// Q(a, x) by its continued fraction, for x >= a + 1, evaluated by the modified Lentz method:
//   Q = x^a e^-x / Gamma(a) * 1 / (x + 1 - a - 1 (1 - a) / (x + 3 - a - 2 (2 - a) / (x + 5 - a - ...))).
double gamma_continued_fraction(double a, double x) {
  double b = x + 1.0 - a;
  double c = 1.0 / kTiny;
  double d = 1.0 / b;
  double h = d;
  const int cap = max_iterations(a);
  for (int i = 1; i <= cap; ++i) {
    const double an = -i * (i - a);
    b += 2.0;
    d = an * d + b;
    if (std::abs(d) < kTiny) d = kTiny;
    c = b + an / c;
    if (std::abs(c) < kTiny) c = kTiny;
    d = 1.0 / d;
    const double delta = d * c;
    h *= delta;
    if (std::abs(delta - 1.0) < kEpsilon) return std::exp(log_prefactor(a, x)) * h;
  }
  throw NumericalError(format_message("regularized_gamma: continued fraction for a = ", a, ", x = ", x,
                                      " did not converge in ", cap, " terms"));
}

}  // namespace

double regularized_gamma_p(double a, double x) {
  check_gamma_arguments("regularized_gamma_p", a, x);
  if (x == 0.0) return 0.0;
  if (std::isinf(x)) return 1.0;
  return x < a + 1.0 ? gamma_series(a, x) : 1.0 - gamma_continued_fraction(a, x);
}

double regularized_gamma_q(double a, double x) {
  check_gamma_arguments("regularized_gamma_q", a, x);
  if (x == 0.0) return 1.0;
  if (std::isinf(x)) return 0.0;
  return x < a + 1.0 ? 1.0 - gamma_series(a, x) : gamma_continued_fraction(a, x);
}

double chi_square_survival(double x, double dof) {
  if (!(dof > 0.0) || !std::isfinite(dof)) {
    throw InvalidArgument(format_message("chi_square_survival: dof = ", dof, " must be positive and finite"));
  }
  if (std::isnan(x)) throw InvalidArgument("chi_square_survival: x = nan is not a number");
  if (x <= 0.0) return 1.0;
  return regularized_gamma_q(0.5 * dof, 0.5 * x);
}

Vector binomial_pmf(Index n, double p) {
  if (n < 0) throw InvalidArgument(format_message("binomial_pmf: n = ", n, " must be >= 0"));
  if (!(p >= 0.0 && p <= 1.0)) throw InvalidArgument(format_message("binomial_pmf: p = ", p, " outside [0, 1]"));
  Vector pmf = Vector::Zero(n + 1);
  if (p == 0.0) {
    pmf[0] = 1.0;
    return pmf;
  }
  if (p == 1.0) {
    pmf[n] = 1.0;
    return pmf;
  }
  const double log_p = std::log(p), log_q = std::log1p(-p);
  const double log_n_factorial = std::lgamma(static_cast<double>(n) + 1.0);
  for (Index k = 0; k <= n; ++k) {
    const double kd = static_cast<double>(k), rest = static_cast<double>(n - k);
    pmf[k] = std::exp(log_n_factorial - std::lgamma(kd + 1.0) - std::lgamma(rest + 1.0) + kd * log_p +
                      rest * log_q);
  }
  return pmf;
}

double binomial_cdf(Index k, Index n, double p) {
  const Vector pmf = binomial_pmf(n, p);
  if (k < 0) return 0.0;
  if (k >= n) return 1.0;
  // Sum the shorter tail, so that both tails keep their relative accuracy.
  if (k < n / 2) return std::min(1.0, pmf.head(k + 1).sum());
  return std::max(0.0, 1.0 - pmf.tail(n - k).sum());
}

Index binomial_quantile(double q, Index n, double p) {
  if (!(q >= 0.0 && q <= 1.0)) throw InvalidArgument(format_message("binomial_quantile: q = ", q, " outside [0, 1]"));
  const Vector pmf = binomial_pmf(n, p);
  double cdf = 0.0;
  for (Index k = 0; k < n; ++k) {
    cdf += pmf[k];
    if (cdf >= q) return k;
  }
  return n;
}

double empirical_quantile(std::vector<double> values, double p) {
  if (values.empty()) throw InvalidArgument("empirical_quantile: the sample is empty");
  if (!(p >= 0.0 && p <= 1.0)) throw InvalidArgument(format_message("empirical_quantile: p = ", p, " outside [0, 1]"));
  // NaN sorts after every number.
  std::sort(values.begin(), values.end(), [](double a, double b) {
    if (std::isnan(a)) return false;
    if (std::isnan(b)) return true;
    return a < b;
  });
  const double h = p * static_cast<double>(values.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(h));
  const std::size_t hi = std::min(lo + 1, values.size() - 1);
  const double frac = h - static_cast<double>(lo);
  if (frac == 0.0) return values[lo];
  return values[lo] + frac * (values[hi] - values[lo]);
}

}  // namespace varflow
