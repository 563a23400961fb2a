#include "varflow/posterior/low_rank_covariance.h"

#include <cmath>

#include "varflow/core/error.h"

namespace varflow {

LowRankUpdateCovariance::LowRankUpdateCovariance(std::shared_ptr<const Covariance> prior, Matrix vectors,
                                                 Vector eigenvalues)
    : prior_(std::move(prior)), v_(std::move(vectors)), lambda_(std::move(eigenvalues)) {
  const char* where = "LowRankUpdateCovariance";
  if (!prior_) throw InvalidArgument("LowRankUpdateCovariance: prior is null");
  check_size(where, "vectors (rows)", v_.rows(), prior_->size());
  check_size(where, "vectors (columns)", v_.cols(), lambda_.size());
  for (Index i = 0; i < lambda_.size(); ++i) {
    if (!std::isfinite(lambda_[i]) || !(lambda_[i] > -1.0)) {
      throw InvalidArgument(format_message(where, ": eigenvalues[", i, "] = ", lambda_[i], " must be finite and > -1"));
    }
  }
  if (!v_.allFinite()) throw InvalidArgument("LowRankUpdateCovariance: vectors are not finite");
  if (v_.cols() > 0) {
    const double err = (v_.transpose() * v_ - Matrix::Identity(v_.cols(), v_.cols())).cwiseAbs().maxCoeff();
    if (!(err <= 1e-8)) {
      throw InvalidArgument(format_message(where, ": vectors are not orthonormal, max |V^T V - I| = ", err, " > 1e-8"));
    }
  }
  const Vector one_plus = (lambda_.array() + 1.0).matrix();
  d_ = lambda_.cwiseQuotient(one_plus);
  e_ = (1.0 - one_plus.array().rsqrt()).matrix();
  neg_lambda_ = -lambda_;
  neg_f_ = (1.0 - one_plus.array().sqrt()).matrix();
}

std::string LowRankUpdateCovariance::name() const {
  return format_message("low_rank_update(prior=", prior_->name(), ", rank=", rank(), ")");
}

double LowRankUpdateCovariance::log_determinant() const {
  return prior_->log_determinant() - lambda_.array().log1p().sum();
}

Vector LowRankUpdateCovariance::diagonal() const {
  Vector d = prior_->diagonal();
  for (Index i = 0; i < v_.cols(); ++i) {
    d -= d_[i] * prior_->sqrt_multiply(v_.col(i)).cwiseAbs2();
  }
  return d;
}

Vector LowRankUpdateCovariance::do_multiply(const Vector& x) const {
  return prior_->sqrt_multiply(update(prior_->sqrt_transpose_multiply(x), d_));
}

Vector LowRankUpdateCovariance::do_inverse_multiply(const Vector& x) const {
  const Vector u = update(prior_->sqrt_inverse_multiply(x), neg_lambda_);
  return prior_->inverse_multiply(prior_->sqrt_multiply(u));
}

Vector LowRankUpdateCovariance::do_sqrt_multiply(const Vector& v) const {
  return prior_->sqrt_multiply(update(v, e_));
}

Vector LowRankUpdateCovariance::do_sqrt_transpose_multiply(const Vector& x) const {
  return update(prior_->sqrt_transpose_multiply(x), e_);
}

Vector LowRankUpdateCovariance::do_sqrt_inverse_multiply(const Vector& x) const {
  return update(prior_->sqrt_inverse_multiply(x), neg_f_);
}

}  // namespace varflow
