#include "varflow/model/lorenz96_two_scale.h"

#include <cmath>

#include "varflow/core/error.h"

namespace varflow {

namespace {
inline Index wrap(Index i, Index n) { return (i % n + n) % n; }
}  // namespace

TwoScaleLorenz96::TwoScaleLorenz96(const TwoScaleLorenz96Parameters& p)
    : Rk4Model(p.dt), p_(p), k_(p.k), j_(p.j), m_(p.k * p.j) {
  check_at_least("TwoScaleLorenz96", "k", p.k, 4);
  check_at_least("TwoScaleLorenz96", "j", p.j, 1);
  check_at_least("TwoScaleLorenz96", "j * k", p.j * p.k, 4);
  for (auto [key, v] : {std::pair{"forcing", p.forcing}, std::pair{"h", p.h}}) check_finite("TwoScaleLorenz96", key, v);
  check_positive("TwoScaleLorenz96", "b", p.b);
  check_positive("TwoScaleLorenz96", "c", p.c);
}

std::string TwoScaleLorenz96::name() const {
  return format_message("lorenz96_two_scale(K=", k_, ", J=", j_, ", F=", p_.forcing, ", h=", p_.h, ", b=", p_.b,
                        ", c=", p_.c, ", dt=", dt(), ")");
}

void TwoScaleLorenz96::tendency(const Vector& x, Vector& f) const {
  const double hcb = p_.h * p_.c / p_.b, cb = p_.c * p_.b, c = p_.c;
  for (Index k = 0; k < k_; ++k) {
    double sum = 0.0;
    for (Index j = 0; j < j_; ++j) sum += x[k_ + k * j_ + j];
    f[k] = -x[wrap(k - 1, k_)] * (x[wrap(k - 2, k_)] - x[wrap(k + 1, k_)]) - x[k] + p_.forcing - hcb * sum;
  }
  const double* y = x.data() + k_;
  for (Index i = 0; i < m_; ++i) {
    f[k_ + i] = -cb * y[wrap(i + 1, m_)] * (y[wrap(i + 2, m_)] - y[wrap(i - 1, m_)]) - c * y[i] + hcb * x[i / j_];
  }
}

void TwoScaleLorenz96::tendency_tangent(const Vector& x, const Vector& dx, Vector& df) const {
  const double hcb = p_.h * p_.c / p_.b, cb = p_.c * p_.b, c = p_.c;
  for (Index k = 0; k < k_; ++k) {
    const Index km1 = wrap(k - 1, k_), km2 = wrap(k - 2, k_), kp1 = wrap(k + 1, k_);
    double sum = 0.0;
    for (Index j = 0; j < j_; ++j) sum += dx[k_ + k * j_ + j];
    df[k] = -dx[km1] * (x[km2] - x[kp1]) - x[km1] * (dx[km2] - dx[kp1]) - dx[k] - hcb * sum;
  }
  const double* y = x.data() + k_;
  const double* dy = dx.data() + k_;
  for (Index i = 0; i < m_; ++i) {
    const Index ip1 = wrap(i + 1, m_), ip2 = wrap(i + 2, m_), im1 = wrap(i - 1, m_);
    df[k_ + i] = -cb * (dy[ip1] * (y[ip2] - y[im1]) + y[ip1] * (dy[ip2] - dy[im1])) - c * dy[i] + hcb * dx[i / j_];
  }
}

void TwoScaleLorenz96::add_quadratic_adjoint(const Vector& x, const Vector& a, Vector& ax) const {
  const double cb = p_.c * p_.b;
  for (Index k = 0; k < k_; ++k) {
    const Index km1 = wrap(k - 1, k_), km2 = wrap(k - 2, k_), kp1 = wrap(k + 1, k_);
    ax[km1] -= (x[km2] - x[kp1]) * a[k];
    ax[km2] -= x[km1] * a[k];
    ax[kp1] += x[km1] * a[k];
  }
  const double* y = x.data() + k_;
  double* ay = ax.data() + k_;
  const double* af = a.data() + k_;
  for (Index i = 0; i < m_; ++i) {
    const Index ip1 = wrap(i + 1, m_), ip2 = wrap(i + 2, m_), im1 = wrap(i - 1, m_);
    ay[ip1] -= cb * (y[ip2] - y[im1]) * af[i];
    ay[ip2] -= cb * y[ip1] * af[i];
    ay[im1] += cb * y[ip1] * af[i];
  }
}

void TwoScaleLorenz96::tendency_adjoint(const Vector& x, const Vector& a, Vector& ax) const {
  const double hcb = p_.h * p_.c / p_.b, c = p_.c;
  ax.setZero();
  add_quadratic_adjoint(x, a, ax);
  for (Index k = 0; k < k_; ++k) {
    ax[k] -= a[k];
    for (Index j = 0; j < j_; ++j) ax[k_ + k * j_ + j] -= hcb * a[k];
  }
  for (Index i = 0; i < m_; ++i) {
    ax[k_ + i] -= c * a[k_ + i];
    ax[i / j_] += hcb * a[k_ + i];
  }
}

// The tendency is quadratic, so J(x)^T a is linear in x and its derivative in direction dx is the
// quadratic part's adjoint evaluated at dx.
void TwoScaleLorenz96::tendency_second_order_adjoint(const Vector&, const Vector& dx, const Vector& a,
                                                     Vector& out) const {
  out.setZero();
  add_quadratic_adjoint(dx, a, out);
}

}  // namespace varflow
