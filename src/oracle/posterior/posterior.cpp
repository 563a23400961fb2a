#include "varflow/posterior/posterior.h"

#include <cmath>

#include "varflow/core/error.h"
#include "varflow/covariance/covariance.h"
#include "varflow/version.h"

namespace varflow {

GaussianPosterior::GaussianPosterior(Vector mean, std::shared_ptr<const Covariance> covariance)
    : mean_(std::move(mean)), covariance_(std::move(covariance)) {
  if (!covariance_) throw InvalidArgument("GaussianPosterior: covariance is null");
  check_size("GaussianPosterior", "mean", mean_.size(), covariance_->size());
  check_finite("GaussianPosterior", "mean", mean_);
  const Index n = mean_.size();
  const Vector variances = covariance_->diagonal();
  marginal_std_.resize(n);
  for (Index i = 0; i < n; ++i) {
    const double var = variances[i];
    if (!(var > 0.0)) {
      throw NumericalError(format_message("GaussianPosterior: variance of component ", i, " = ", var,
                                          " is not positive"));
    }
    marginal_std_[i] = std::sqrt(var);
  }
}

Matrix GaussianPosterior::samples(Index n, Rng& rng) const {
  Matrix out = covariance_->samples(rng, n);
  out.colwise() += mean_;
  return out;
}

SamplePosterior::SamplePosterior(Matrix draws) : draws_(std::move(draws)) {
  check_at_least("SamplePosterior", "number of draws", draws_.cols(), 2);
  for (Index j = 0; j < draws_.cols(); ++j) {
    check_finite("SamplePosterior", format_message("draw ", j), Vector(draws_.col(j)));
  }
}

Vector SamplePosterior::marginal_std() const {
  const Vector m = mean();
  const Matrix centred = draws_.colwise() - m;
  return (centred.rowwise().squaredNorm() / static_cast<double>(draws_.cols() - 1)).cwiseSqrt();
}

Matrix SamplePosterior::samples(Index n, Rng& rng) const {
  if (n == draws_.cols()) return draws_;
  Matrix out(draws_.rows(), n);
  for (Index j = 0; j < n; ++j) out.col(j) = draws_.col(rng.uniform_index(draws_.cols()));
  return out;
}

}  // namespace varflow
