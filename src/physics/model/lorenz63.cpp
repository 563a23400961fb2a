#include "varflow/model/lorenz63.h"

#include "varflow/core/error.h"

namespace varflow {

Lorenz63::Lorenz63(double dt, double sigma, double rho, double beta)
    : Rk4Model(dt), sigma_(sigma), rho_(rho), beta_(beta) {
  check_finite("Lorenz63", "sigma", sigma);
  check_finite("Lorenz63", "rho", rho);
  check_finite("Lorenz63", "beta", beta);
}

std::string Lorenz63::name() const {
  return format_message("lorenz63(sigma=", sigma_, ", rho=", rho_, ", beta=", beta_, ", dt=", dt(), ")");
}

void Lorenz63::tendency(const Vector& s, Vector& f) const {
  f[0] = sigma_ * (s[1] - s[0]);
  f[1] = s[0] * (rho_ - s[2]) - s[1];
  f[2] = s[0] * s[1] - beta_ * s[2];
}

void Lorenz63::tendency_tangent(const Vector& s, const Vector& d, Vector& df) const {
  df[0] = sigma_ * (d[1] - d[0]);
  df[1] = (rho_ - s[2]) * d[0] - d[1] - s[0] * d[2];
  df[2] = s[1] * d[0] + s[0] * d[1] - beta_ * d[2];
}

void Lorenz63::tendency_adjoint(const Vector& s, const Vector& a, Vector& ax) const {
  ax[0] = -sigma_ * a[0] + (rho_ - s[2]) * a[1] + s[1] * a[2];
  ax[1] = sigma_ * a[0] - a[1] + s[0] * a[2];
  ax[2] = -s[0] * a[1] - beta_ * a[2];
}

// The derivative of tendency_adjoint in s along d (the tendency is quadratic: constant in s).
void Lorenz63::tendency_second_order_adjoint(const Vector&, const Vector& d, const Vector& a, Vector& out) const {
  out[0] = -d[2] * a[1] + d[1] * a[2];
  out[1] = d[0] * a[2];
  out[2] = -d[0] * a[1];
}

}  // namespace varflow
