#pragma once
// Checks that a Covariance operator is consistent, returning structured results. Used by the
// conformance suites (varflow::testing).
//  - symmetry       |<u, C v> - <C u, v>| / max(|<u, C v>|, |<C u, v>|)
//  - inverse        ||C^-1 (C u) - u|| / ||u||  and  ||L^-1 (L u) - u|| / ||u||
//  - square root    ||L (L^T u) - C u|| / ||C u||
//  - sampling       the sample covariance S of n draws against C, entry by entry: under the null,
//                   z_ij = (S_ij - C_ij) / sqrt((C_ii C_jj + C_ij^2) / n) is approximately N(0, 1)
//                   (Wishart variance of a sample covariance with known zero mean); the test fails
//                   when max |z_ij| over the n(n+1)/2 entries exceeds the two-sided normal quantile at
//                   family-wise level alpha with a Bonferroni correction.
#include <string>

#include "varflow/core/random.h"
#include "varflow/core/types.h"

namespace varflow {

class Covariance;

struct CovarianceTolerances {
  double symmetry = 1e-12;   // round-off of two products
  // Inverse and square-root consistency; loosened by the caller for ill-conditioned C
  // (the error grows like cond(C) * machine epsilon).
  double inverse = 1e-9;
  double square_root = 1e-10;
  double sampling_alpha = 1e-3;  // family-wise false-alarm probability of the sampling test
};

struct CovarianceCheckResult {
  double symmetry_error = 0.0;
  double inverse_error = 0.0;
  double sqrt_inverse_error = 0.0;
  double square_root_error = 0.0;
  bool symmetry_passed = false, inverse_passed = false, square_root_passed = false;
  bool passed() const { return symmetry_passed && inverse_passed && square_root_passed; }
  std::string report() const;
};

struct SamplingCheckResult {
  Index draws = 0;
  double max_abs_z = 0.0;   // largest standardised entry error
  Index worst_row = 0, worst_col = 0;
  double threshold = 0.0;   // Bonferroni-corrected normal quantile
  bool passed = false;
  std::string report() const;
};

CovarianceCheckResult check_covariance(const Covariance& c, Rng& rng, const CovarianceTolerances& tol = {});
SamplingCheckResult check_covariance_sampling(const Covariance& c, Rng& rng, Index draws = 10000,
                                              const CovarianceTolerances& tol = {});

// The standard normal quantile Phi^-1(p), 0 < p < 1 (bisection on erfc; accurate to ~1e-12).
double normal_quantile(double p);

}  // namespace varflow
