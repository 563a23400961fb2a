#include "varflow/validation/covariance_checks.h"

#include <algorithm>
#include <cmath>

#include "varflow/core/error.h"
#include "varflow/covariance/covariance.h"

namespace varflow {

std::string CovarianceCheckResult::report() const {
  return format_message("covariance checks: symmetry ", symmetry_error, symmetry_passed ? " (pass)" : " (FAIL)",
                        ", inverse ", inverse_error, " / sqrt-inverse ", sqrt_inverse_error,
                        inverse_passed ? " (pass)" : " (FAIL)", ", square root ", square_root_error,
                        square_root_passed ? " (pass)" : " (FAIL)");
}

std::string SamplingCheckResult::report() const {
  return format_message("sampling check over ", draws, " draws: max |z| = ", max_abs_z, " at (", worst_row, ", ",
                        worst_col, "), threshold ", threshold, passed ? " (pass)" : " (FAIL)");
}

double normal_quantile(double p) {
  if (!(p > 0.0 && p < 1.0)) throw InvalidArgument(format_message("normal_quantile: p = ", p, " outside (0, 1)"));
  // Phi(z) = erfc(-z / sqrt 2) / 2 is increasing; bisect on [-40, 40].
  double lo = -40.0, hi = 40.0;
  for (int it = 0; it < 200 && hi - lo > 1e-13; ++it) {
    const double mid = 0.5 * (lo + hi);
    if (0.5 * std::erfc(-mid / std::sqrt(2.0)) < p) lo = mid; else hi = mid;
  }
  return 0.5 * (lo + hi);
}

CovarianceCheckResult check_covariance(const Covariance& c, Rng& rng, const CovarianceTolerances& tol) {
  CovarianceCheckResult r;
  const Index n = c.size();
  const Vector u = rng.normal_vector(n), v = rng.normal_vector(n);
  const double a = u.dot(c.multiply(v)), b = c.multiply(u).dot(v);
  const double scale = std::max(std::abs(a), std::abs(b));
  r.symmetry_error = scale > 0.0 ? std::abs(a - b) / scale : 0.0;
  r.symmetry_passed = r.symmetry_error <= tol.symmetry;

  r.inverse_error = (c.inverse_multiply(c.multiply(u)) - u).norm() / u.norm();
  r.sqrt_inverse_error = (c.sqrt_inverse_multiply(c.sqrt_multiply(u)) - u).norm() / u.norm();
  r.inverse_passed = r.inverse_error <= tol.inverse && r.sqrt_inverse_error <= tol.inverse;

  const Vector cu = c.multiply(u);
  r.square_root_error = (c.sqrt_multiply(c.sqrt_transpose_multiply(u)) - cu).norm() / cu.norm();
  r.square_root_passed = r.square_root_error <= tol.square_root;
  return r;
}

SamplingCheckResult check_covariance_sampling(const Covariance& c, Rng& rng, Index draws,
                                              const CovarianceTolerances& tol) {
  check_at_least("check_covariance_sampling", "draws", draws, 2);
  SamplingCheckResult r;
  r.draws = draws;
  const Index n = c.size();
  const Matrix x = c.samples(rng, draws);
  const Matrix s = (x * x.transpose()) / static_cast<double>(draws);  // known zero mean
  const Matrix cd = c.dense();
  const double entries = static_cast<double>(n) * static_cast<double>(n + 1) / 2.0;
  r.threshold = normal_quantile(1.0 - tol.sampling_alpha / (2.0 * entries));
  for (Index j = 0; j < n; ++j) {
    for (Index i = j; i < n; ++i) {
      const double sd = std::sqrt((cd(i, i) * cd(j, j) + cd(i, j) * cd(i, j)) / static_cast<double>(draws));
      const double z = std::abs(s(i, j) - cd(i, j)) / sd;
      if (z > r.max_abs_z) {
        r.max_abs_z = z;
        r.worst_row = i;
        r.worst_col = j;
      }
    }
  }
  r.passed = r.max_abs_z <= r.threshold;
  return r;
}

}  // namespace varflow
