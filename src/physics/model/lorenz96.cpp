#include "varflow/model/lorenz96.h"

#include "varflow/core/error.h"

namespace varflow {

Lorenz96::Lorenz96(Index n, double forcing, double dt) : Rk4Model(dt), n_(n), forcing_(forcing) {
  check_at_least("Lorenz96", "n", n, 4);
  check_finite("Lorenz96", "forcing", forcing);
}

std::string Lorenz96::name() const {
  return format_message("lorenz96(n=", n_, ", F=", forcing_, ", dt=", dt(), ")");
}

namespace {
inline Index wrap(Index i, Index n) { return (i % n + n) % n; }
}  // namespace

void Lorenz96::tendency(const Vector& x, Vector& f) const {
  for (Index i = 0; i < n_; ++i) {
    f[i] = (x[wrap(i + 1, n_)] - x[wrap(i - 2, n_)]) * x[wrap(i - 1, n_)] - x[i] + forcing_;
  }
}

void Lorenz96::tendency_tangent(const Vector& x, const Vector& dx, Vector& df) const {
  for (Index i = 0; i < n_; ++i) {
    const Index ip1 = wrap(i + 1, n_), im1 = wrap(i - 1, n_), im2 = wrap(i - 2, n_);
    df[i] = (dx[ip1] - dx[im2]) * x[im1] + (x[ip1] - x[im2]) * dx[im1] - dx[i];
  }
}

void Lorenz96::tendency_adjoint(const Vector& x, const Vector& a, Vector& ax) const {
  ax.setZero();
  for (Index i = 0; i < n_; ++i) {
    const Index ip1 = wrap(i + 1, n_), im1 = wrap(i - 1, n_), im2 = wrap(i - 2, n_);
    ax[ip1] += x[im1] * a[i];
    ax[im2] -= x[im1] * a[i];
    ax[im1] += (x[ip1] - x[im2]) * a[i];
    ax[i] -= a[i];
  }
}

// J(x)^T a is linear in x (the tendency is quadratic), so its derivative is J(dx)^T a without the
// x-independent -a and F terms.
void Lorenz96::tendency_second_order_adjoint(const Vector&, const Vector& dx, const Vector& a, Vector& out) const {
  out.setZero();
  for (Index i = 0; i < n_; ++i) {
    const Index ip1 = wrap(i + 1, n_), im1 = wrap(i - 1, n_), im2 = wrap(i - 2, n_);
    out[ip1] += dx[im1] * a[i];
    out[im2] -= dx[im1] * a[i];
    out[im1] += (dx[ip1] - dx[im2]) * a[i];
  }
}

}  // namespace varflow
