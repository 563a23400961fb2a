#include "varflow/validation/gaussian_accuracy.h"

#include <algorithm>
#include <cmath>

#include "varflow/core/error.h"
#include "varflow/covariance/covariance.h"

namespace varflow {

void GaussianAccuracy::add(const Posterior& p, const Vector& exact_mean, double exact_variance, Index draws,
                           Rng& rng) {
  check_size("GaussianAccuracy::add", "exact_mean", exact_mean.size(), p.size());
  check_positive("GaussianAccuracy::add", "exact_variance", exact_variance);
  Vector m;
  Matrix c;
  if (p.covariance() != nullptr) {
    m = p.mean();
    c = p.covariance()->dense();
  } else {
    check_at_least("GaussianAccuracy::add", "draws", draws, 2);
    const Matrix s = p.samples(draws, rng);
    m = s.rowwise().mean();
    const Matrix centred = s.colwise() - m;
    c = centred * centred.transpose() / static_cast<double>(draws - 1);
  }
  mean_sq_ += (m - exact_mean).squaredNorm() / exact_variance;
  for (Index i = 0; i < c.rows(); ++i) {
    const double ratio = c(i, i) / exact_variance;
    ratio_sum_ += ratio;
    ratio_sq_ += (ratio - 1.0) * (ratio - 1.0);
    for (Index j = 0; j < i; ++j) {
      max_correlation_ = std::max(max_correlation_, std::abs(c(i, j)) / std::sqrt(c(i, i) * c(j, j)));
    }
  }
  components_ += c.rows();
  ++observations_;
}

double GaussianAccuracy::mean_error() const {
  return components_ > 0 ? std::sqrt(mean_sq_ / static_cast<double>(components_)) : 0.0;
}

double GaussianAccuracy::variance_ratio() const {
  return components_ > 0 ? ratio_sum_ / static_cast<double>(components_) : 0.0;
}

double GaussianAccuracy::variance_ratio_rms() const {
  return components_ > 0 ? std::sqrt(ratio_sq_ / static_cast<double>(components_)) : 0.0;
}

}  // namespace varflow
