#pragma once
// A prior covariance with a low-rank update in its whitened space:
//     P = L (I - V diag(lambda / (1 + lambda)) V^T) L^T,     C_prior = L L^T,
// with V (n x k) orthonormal columns and lambda_i > -1. This is the Laplace (Gauss-Newton) posterior
// covariance of a linearised inverse problem when (lambda_i, v_i) are the leading eigenpairs of the
// prior-preconditioned data-misfit Hessian L^T G L: (I + L^T G L)^-1 = I - V diag(l/(1+l)) V^T exactly
// on span(V), and the prior elsewhere (Bui-Thanh, Ghattas, Martin & Stadler 2013, "A computational
// framework for infinite-dimensional Bayesian inverse problems Part I", SISC 35, section 4;
// Flath et al. 2011, SISC 33).
//
// Every operation is in closed form, O(n k) plus the prior's own operation:
//     P x      = L (w - V D V^T w),  w = L^T x,                D = diag(l / (1 + l))
//     P^-1 x   = L^-T (w + V diag(l) V^T w),  w = L^-1 x,       L^-T u = C_prior^-1 (L u)
//     S v      = L (v - V E V^T v),   E = diag(1 - 1/sqrt(1 + l))   (S S^T = P)
//     S^T x    = (I - V E V^T) L^T x
//     S^-1 x   = (I + V F V^T) L^-1 x,  F = diag(sqrt(1 + l) - 1)
//     log det P = log det C_prior - sum log(1 + l)
//     diag P    = diag C_prior - sum_i d_i (L v_i)^2
#include <memory>

#include "varflow/covariance/covariance.h"

namespace varflow {

class LowRankUpdateCovariance final : public Covariance {
 public:
  // Throws InvalidArgument when prior is null, V has prior->size() rows and not lambda.size() columns,
  // an eigenvalue is not finite or <= -1, or the columns of V are not orthonormal (max |V^T V - I|
  // above 1e-8, naming the value).
  LowRankUpdateCovariance(std::shared_ptr<const Covariance> prior, Matrix vectors, Vector eigenvalues);

  Index size() const override { return v_.rows(); }
  std::string name() const override;
  double log_determinant() const override;

  const Covariance& prior() const { return *prior_; }
  std::shared_ptr<const Covariance> prior_ptr() const { return prior_; }
  const Matrix& vectors() const { return v_; }
  const Vector& eigenvalues() const { return lambda_; }
  Index rank() const { return lambda_.size(); }
  // diag(C_prior) - sum_i d_i (L v_i)^2: k square-root products, O(n k) plus the prior's.
  Vector diagonal() const override;

 protected:
  Vector do_multiply(const Vector& x) const override;
  Vector do_inverse_multiply(const Vector& x) const override;
  Vector do_sqrt_multiply(const Vector& v) const override;
  Vector do_sqrt_transpose_multiply(const Vector& x) const override;
  Vector do_sqrt_inverse_multiply(const Vector& x) const override;

 private:
  // w - V diag(c) V^T w.
  Vector update(const Vector& w, const Vector& c) const { return w - v_ * c.cwiseProduct(v_.transpose() * w); }
  std::shared_ptr<const Covariance> prior_;
  Matrix v_;
  Vector lambda_;
  Vector d_, e_, neg_lambda_, neg_f_;
};

}  // namespace varflow
