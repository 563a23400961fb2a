#pragma once
// Covariance operators (B, R, Q) for a Gaussian N(0, C) on R^n, never required to be dense.
//
// C = L L^T for a square-root factor L chosen by the implementation (Cholesky, or the symmetric
// square root). The control-variable transform of variational DA uses L: x = x_b + L v, v ~ N(0, I).
// The public functions check sizes and finiteness of their input, then call the do_* functions,
// which may assume an input of size size(). Implementations are immutable and thread-safe.
#include <string>

#include "varflow/core/random.h"
#include "varflow/core/types.h"

namespace varflow {

class Covariance {
 public:
  virtual ~Covariance() = default;

  virtual Index size() const = 0;
  virtual std::string name() const = 0;

  Vector multiply(const Vector& x) const;                 // C x
  Vector inverse_multiply(const Vector& x) const;         // C^-1 x
  Vector sqrt_multiply(const Vector& v) const;            // L v
  Vector sqrt_transpose_multiply(const Vector& x) const;  // L^T x
  Vector sqrt_inverse_multiply(const Vector& x) const;    // L^-1 x
  // One draw from N(0, C): L z with z ~ N(0, I).
  Vector sample(Rng& rng) const;
  // n draws as the columns of a size() x n matrix.
  Matrix samples(Rng& rng, Index n) const;
  // log det C.
  virtual double log_determinant() const = 0;
  // C as a dense matrix (size()^2 memory; for tests and small problems).
  virtual Matrix dense() const;
  // The diagonal of C (the marginal variances). The default forms it from one product per unit
  // vector (size() products); the built-in operators override it in O(size()) (a low-rank update in
  // O(size() k)), so that a posterior's spread costs no more than one product at large n.
  virtual Vector diagonal() const;

 protected:
  virtual Vector do_multiply(const Vector& x) const = 0;
  virtual Vector do_inverse_multiply(const Vector& x) const = 0;
  virtual Vector do_sqrt_multiply(const Vector& v) const = 0;
  virtual Vector do_sqrt_transpose_multiply(const Vector& x) const = 0;
  virtual Vector do_sqrt_inverse_multiply(const Vector& x) const = 0;

 private:
  void check_input(const char* where, const Vector& x) const;
};

}  // namespace varflow
