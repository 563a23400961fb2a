#pragma once
// The built-in covariance operators.
#include <memory>

#include "varflow/covariance/covariance.h"

namespace varflow {

// C = diag(variances). L = diag(sqrt(variances)).
class DiagonalCovariance final : public Covariance {
 public:
  // Every variance positive and finite; throws InvalidArgument naming the first bad entry.
  explicit DiagonalCovariance(Vector variances);
  // sigma^2 I of size n.
  static DiagonalCovariance scaled_identity(Index n, double variance);

  Index size() const override { return variances_.size(); }
  std::string name() const override;
  double log_determinant() const override;
  const Vector& variances() const { return variances_; }
  Vector diagonal() const override { return variances_; }

 protected:
  Vector do_multiply(const Vector& x) const override;
  Vector do_inverse_multiply(const Vector& x) const override;
  Vector do_sqrt_multiply(const Vector& v) const override;
  Vector do_sqrt_transpose_multiply(const Vector& x) const override;
  Vector do_sqrt_inverse_multiply(const Vector& x) const override;

 private:
  Vector variances_;
  Vector std_devs_;
};

// A dense symmetric positive definite C, factorised once by Cholesky: L is the lower Cholesky factor.
class DenseCovariance final : public Covariance {
 public:
  // Throws InvalidArgument when C is not square, has a non-finite entry, is not symmetric (naming the
  // entry pair and values) or is not positive definite (giving its smallest eigenvalue).
  explicit DenseCovariance(Matrix c);

  Index size() const override { return c_.rows(); }
  std::string name() const override;
  double log_determinant() const override;
  Matrix dense() const override { return c_; }
  Vector diagonal() const override { return c_.diagonal(); }

 protected:
  Vector do_multiply(const Vector& x) const override;
  Vector do_inverse_multiply(const Vector& x) const override;
  Vector do_sqrt_multiply(const Vector& v) const override;
  Vector do_sqrt_transpose_multiply(const Vector& x) const override;
  Vector do_sqrt_inverse_multiply(const Vector& x) const override;

 private:
  Matrix c_;
  Matrix l_;  // lower Cholesky factor
};

// Homogeneous Gaussian correlation on a periodic 1-D grid of n points with spacing ds:
//   C_ij = variance * [(1 - nugget) g(d_ij) / g(0) + nugget delta_ij],
//   g(d) = sum_m exp(-(d + m n ds)^2 / (2 length_scale^2))     (the Gaussian wrapped onto the circle,
// which keeps C positive definite). C is circulant, so all operations are exact circulant algebra
// by FFT (FFTW) in O(n log n): C = F^* diag(lambda) F, and L = C^(1/2) is the symmetric square root.
// The nugget (default 0) adds white noise; without it a long length scale makes C numerically
// singular: the constructor throws InvalidArgument when cond(C) exceeds max_condition_number().
class PeriodicGaussianCovariance final : public Covariance {
 public:
  PeriodicGaussianCovariance(Index n, double variance, double length_scale, double ds = 1.0,
                             double nugget = 0.0);
  ~PeriodicGaussianCovariance() override;

  static constexpr double max_condition_number() { return 1e12; }

  Index size() const override { return n_; }
  std::string name() const override;
  double log_determinant() const override;
  // The circulant eigenvalues lambda_k, k = 0 .. n-1.
  const Vector& eigenvalues() const { return eigenvalues_; }
  double condition_number() const;
  // Circulant: every diagonal entry is the mean of the eigenvalues.
  Vector diagonal() const override;

 protected:
  Vector do_multiply(const Vector& x) const override;
  Vector do_inverse_multiply(const Vector& x) const override;
  Vector do_sqrt_multiply(const Vector& v) const override;
  Vector do_sqrt_transpose_multiply(const Vector& x) const override;
  Vector do_sqrt_inverse_multiply(const Vector& x) const override;

 private:
  // Circulant product with spectrum `spectrum` (the eigenvalue vector raised to some power).
  Vector circulant_apply(const Vector& x, const Vector& spectrum) const;

  Index n_;
  double variance_, length_scale_, ds_, nugget_;
  Vector eigenvalues_;
  Vector sqrt_eigenvalues_, inverse_eigenvalues_, inverse_sqrt_eigenvalues_;
  struct FftPlans;
  std::unique_ptr<FftPlans> plans_;
};

}  // namespace varflow
