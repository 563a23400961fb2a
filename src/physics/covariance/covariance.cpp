#include "varflow/covariance/covariance.h"

#include "varflow/core/error.h"

namespace varflow {

void Covariance::check_input(const char* where, const Vector& x) const {
  const std::string w = name() + "::" + where;
  check_size(w, "x", x.size(), size());
  check_finite(w, "x", x);
}

Vector Covariance::multiply(const Vector& x) const {
  check_input("multiply", x);
  return do_multiply(x);
}
Vector Covariance::inverse_multiply(const Vector& x) const {
  check_input("inverse_multiply", x);
  return do_inverse_multiply(x);
}
Vector Covariance::sqrt_multiply(const Vector& v) const {
  check_input("sqrt_multiply", v);
  return do_sqrt_multiply(v);
}
Vector Covariance::sqrt_transpose_multiply(const Vector& x) const {
  check_input("sqrt_transpose_multiply", x);
  return do_sqrt_transpose_multiply(x);
}
Vector Covariance::sqrt_inverse_multiply(const Vector& x) const {
  check_input("sqrt_inverse_multiply", x);
  return do_sqrt_inverse_multiply(x);
}

Vector Covariance::sample(Rng& rng) const { return do_sqrt_multiply(rng.normal_vector(size())); }

Matrix Covariance::samples(Rng& rng, Index n) const {
  check_at_least(name() + "::samples", "n", n, 0);
  Matrix out(size(), n);
  for (Index j = 0; j < n; ++j) out.col(j) = sample(rng);
  return out;
}

Matrix Covariance::dense() const {
  const Index n = size();
  Matrix c(n, n);
  Vector e = Vector::Zero(n);
  for (Index j = 0; j < n; ++j) {
    e[j] = 1.0;
    c.col(j) = do_multiply(e);
    e[j] = 0.0;
  }
  return c;
}

Vector Covariance::diagonal() const {
  const Index n = size();
  Vector d(n);
  Vector e = Vector::Zero(n);
  for (Index j = 0; j < n; ++j) {
    e[j] = 1.0;
    d[j] = do_multiply(e)[j];
    e[j] = 0.0;
  }
  return d;
}

}  // namespace varflow
