#include "varflow/core/error.h"
#include "varflow/covariance/covariances.h"

namespace varflow {

DiagonalCovariance::DiagonalCovariance(Vector variances) : variances_(std::move(variances)) {
  if (variances_.size() == 0) throw InvalidArgument("DiagonalCovariance: variances is empty");
  for (Index i = 0; i < variances_.size(); ++i) {
    check_positive("DiagonalCovariance", format_message("variances[", i, "]"), variances_[i]);
  }
  std_devs_ = variances_.cwiseSqrt();
}

DiagonalCovariance DiagonalCovariance::scaled_identity(Index n, double variance) {
  check_at_least("DiagonalCovariance::scaled_identity", "n", n, 1);
  check_positive("DiagonalCovariance::scaled_identity", "variance", variance);
  return DiagonalCovariance(Vector::Constant(n, variance));
}

std::string DiagonalCovariance::name() const { return format_message("diagonal(n=", size(), ")"); }
double DiagonalCovariance::log_determinant() const { return variances_.array().log().sum(); }

Vector DiagonalCovariance::do_multiply(const Vector& x) const { return variances_.cwiseProduct(x); }
Vector DiagonalCovariance::do_inverse_multiply(const Vector& x) const { return x.cwiseQuotient(variances_); }
Vector DiagonalCovariance::do_sqrt_multiply(const Vector& v) const { return std_devs_.cwiseProduct(v); }
Vector DiagonalCovariance::do_sqrt_transpose_multiply(const Vector& x) const { return std_devs_.cwiseProduct(x); }
Vector DiagonalCovariance::do_sqrt_inverse_multiply(const Vector& x) const { return x.cwiseQuotient(std_devs_); }

}  // namespace varflow
