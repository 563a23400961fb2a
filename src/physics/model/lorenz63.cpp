#include "varflow/model/lorenz63.h"

#include <array>

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

// ---- fused kernels: the generic Rk4Model step, TL and AD on stack arrays, element for element the
// same operations in the same order (so bit for bit the same results), without allocation.
namespace {
using V3 = std::array<double, 3>;
struct L63 {
  double sigma, rho, beta;
  V3 f(const V3& s) const { return {sigma * (s[1] - s[0]), s[0] * (rho - s[2]) - s[1], s[0] * s[1] - beta * s[2]}; }
  V3 g(const V3& s, const V3& d) const {
    return {sigma * (d[1] - d[0]), (rho - s[2]) * d[0] - d[1] - s[0] * d[2], s[1] * d[0] + s[0] * d[1] - beta * d[2]};
  }
  V3 u(const V3& s, const V3& a) const {
    return {-sigma * a[0] + (rho - s[2]) * a[1] + s[1] * a[2], sigma * a[0] - a[1] + s[0] * a[2],
            -s[0] * a[1] - beta * a[2]};
  }
};
// x + c y
V3 axpy(const V3& x, double c, const V3& y) { return {x[0] + c * y[0], x[1] + c * y[1], x[2] + c * y[2]}; }
V3 load(const Vector& v) { return {v[0], v[1], v[2]}; }
// The stage states s1, s2, s3 of the step from x.
void stages(const L63& m, const V3& x, double dt, V3& s1, V3& s2, V3& s3) {
  s1 = axpy(x, 0.5 * dt, m.f(x));
  s2 = axpy(x, 0.5 * dt, m.f(s1));
  s3 = axpy(x, dt, m.f(s2));
}
}  // namespace

void Lorenz63::do_step(Vector& xv) const {
  const L63 m{sigma_, rho_, beta_};
  const double dt = this->dt();
  const V3 x = load(xv);
  const V3 k1 = m.f(x);
  const V3 k2 = m.f(axpy(x, 0.5 * dt, k1));
  const V3 k3 = m.f(axpy(x, 0.5 * dt, k2));
  const V3 k4 = m.f(axpy(x, dt, k3));
  for (int i = 0; i < 3; ++i) xv[i] = x[i] + (dt / 6.0) * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]);
}

void Lorenz63::do_step_tangent(const Vector& xv, Vector& dxv) const {
  const L63 m{sigma_, rho_, beta_};
  const double dt = this->dt();
  const V3 x = load(xv), dx = load(dxv);
  V3 s1, s2, s3;
  stages(m, x, dt, s1, s2, s3);
  const V3 dk1 = m.g(x, dx);
  const V3 dk2 = m.g(s1, axpy(dx, 0.5 * dt, dk1));
  const V3 dk3 = m.g(s2, axpy(dx, 0.5 * dt, dk2));
  const V3 dk4 = m.g(s3, axpy(dx, dt, dk3));
  for (int i = 0; i < 3; ++i) dxv[i] = dx[i] + (dt / 6.0) * (dk1[i] + 2.0 * dk2[i] + 2.0 * dk3[i] + dk4[i]);
}

void Lorenz63::do_step_adjoint(const Vector& xv, Vector& axv) const {
  const L63 m{sigma_, rho_, beta_};
  const double dt = this->dt();
  const V3 x = load(xv), o = load(axv);
  V3 s1, s2, s3;
  stages(m, x, dt, s1, s2, s3);
  V3 ax = o, a4, a3, a2, a1;
  for (int i = 0; i < 3; ++i) {
    a4[i] = (dt / 6.0) * o[i];
    a3[i] = (dt / 3.0) * o[i];
    a2[i] = (dt / 3.0) * o[i];
    a1[i] = (dt / 6.0) * o[i];
  }
  V3 u = m.u(s3, a4);
  for (int i = 0; i < 3; ++i) ax[i] += u[i], a3[i] += dt * u[i];
  u = m.u(s2, a3);
  for (int i = 0; i < 3; ++i) ax[i] += u[i], a2[i] += 0.5 * dt * u[i];
  u = m.u(s1, a2);
  for (int i = 0; i < 3; ++i) ax[i] += u[i], a1[i] += 0.5 * dt * u[i];
  u = m.u(x, a1);
  for (int i = 0; i < 3; ++i) axv[i] = ax[i] + u[i];
}

}  // namespace varflow
