#include <Eigen/Cholesky>
#include <Eigen/Eigenvalues>
#include <cmath>

#include "varflow/core/error.h"
#include "varflow/covariance/covariances.h"

namespace varflow {

DenseCovariance::DenseCovariance(Matrix c) : c_(std::move(c)) {
  const char* where = "DenseCovariance";
  if (c_.rows() != c_.cols() || c_.rows() == 0) {
    throw InvalidArgument(format_message(where, ": matrix is ", c_.rows(), " x ", c_.cols(),
                                         ", expected square and non-empty"));
  }
  const Index n = c_.rows();
  for (Index j = 0; j < n; ++j) {
    for (Index i = 0; i < n; ++i) {
      if (!std::isfinite(c_(i, j))) {
        throw InvalidArgument(format_message(where, ": C(", i, ", ", j, ") = ", c_(i, j), " is not finite"));
      }
    }
  }
  // Symmetric to round-off relative to the largest entry.
  const double scale = c_.cwiseAbs().maxCoeff();
  for (Index j = 0; j < n; ++j) {
    for (Index i = j + 1; i < n; ++i) {
      if (std::abs(c_(i, j) - c_(j, i)) > 1e-12 * scale) {
        throw InvalidArgument(format_message(where, ": matrix is not symmetric: C(", i, ", ", j, ") = ", c_(i, j),
                                             " but C(", j, ", ", i, ") = ", c_(j, i)));
      }
    }
  }
  Eigen::LLT<Matrix> llt(c_);
  if (llt.info() != Eigen::Success) {
    const double smallest = Eigen::SelfAdjointEigenSolver<Matrix>(c_, Eigen::EigenvaluesOnly).eigenvalues()[0];
    throw InvalidArgument(format_message(where, ": matrix (", n, " x ", n,
                                         ") is not positive definite: smallest eigenvalue ", smallest));
  }
  l_ = llt.matrixL();
  for (Index i = 0; i < n; ++i) {
    if (!(l_(i, i) > 0.0)) {
      throw InvalidArgument(format_message(where, ": matrix is numerically singular: Cholesky pivot ", i,
                                           " = ", l_(i, i)));
    }
  }
}

std::string DenseCovariance::name() const { return format_message("dense(n=", size(), ")"); }

double DenseCovariance::log_determinant() const { return 2.0 * l_.diagonal().array().log().sum(); }

Vector DenseCovariance::do_multiply(const Vector& x) const { return c_ * x; }
Vector DenseCovariance::do_inverse_multiply(const Vector& x) const {
  const Vector z = l_.triangularView<Eigen::Lower>().solve(x);
  return l_.transpose().triangularView<Eigen::Upper>().solve(z);
}
Vector DenseCovariance::do_sqrt_multiply(const Vector& v) const { return l_.triangularView<Eigen::Lower>() * v; }
Vector DenseCovariance::do_sqrt_transpose_multiply(const Vector& x) const {
  return l_.transpose().triangularView<Eigen::Upper>() * x;
}
Vector DenseCovariance::do_sqrt_inverse_multiply(const Vector& x) const {
  return l_.triangularView<Eigen::Lower>().solve(x);
}

}  // namespace varflow
