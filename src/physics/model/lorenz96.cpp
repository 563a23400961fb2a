#include "varflow/model/lorenz96.h"

#include <utility>

#include "varflow/core/error.h"
#include "scratch.h"

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

// ---- fused kernels --------------------------------------------------------------------------------
// Each element is computed with the operations, and in the order, of tendency / tendency_tangent /
// tendency_adjoint and of the generic Rk4Model step, so the results equal the generic path bit for
// bit. Indices i + 1, i - 1, i - 2 wrap only near the ends: those elements go through the `*_at`
// helpers with explicit indices, the rest through a plain contiguous loop.

// f_i = (s[i+1] - s[i-2]) s[i-1] - s[i] + F.
inline double f_at(const double* s, Index i, Index n, double forcing) {
  return (s[wrap(i + 1, n)] - s[wrap(i - 2, n)]) * s[wrap(i - 1, n)] - s[i] + forcing;
}
// g_i = (J(s) d)_i = (d[i+1] - d[i-2]) s[i-1] + (s[i+1] - s[i-2]) d[i-1] - d[i].
inline double g_at(const double* s, const double* d, Index i, Index n) {
  const Index ip1 = wrap(i + 1, n), im1 = wrap(i - 1, n), im2 = wrap(i - 2, n);
  return (d[ip1] - d[im2]) * s[im1] + (s[ip1] - s[im2]) * d[im1] - d[i];
}
// u_j = (J(s)^T a)_j: the four terms tendency_adjoint scatters into ax[j] (from i = j-1, j, j+1,
// j+2, indices periodic), summed from zero in the order of its loop over i (a - p == a + (-p)).
inline double u_at(const double* s, const double* a, Index j, Index n) {
  struct Term {
    Index i;
    double v;
  };
  const Index jm2 = wrap(j - 2, n), jm1 = wrap(j - 1, n), jp1 = wrap(j + 1, n), jp2 = wrap(j + 2, n);
  Term t[4] = {{jm1, s[jm2] * a[jm1]}, {j, -a[j]}, {jp1, (s[jp2] - s[jm1]) * a[jp1]}, {jp2, -(s[jp1] * a[jp2])}};
  for (int p = 1; p < 4; ++p) {
    for (int q = p; q > 0 && t[q - 1].i > t[q].i; --q) std::swap(t[q - 1], t[q]);
  }
  double u = 0.0;
  for (const Term& term : t) u += term.v;
  return u;
}

// Which RK4 stage a pass computes (see forward_stage).
enum class Stage { First, Middle, Last, StateOnly };

// One forward stage from the stage state s (which may be x, read only): f = L96(s), then
//   First:     acc = f,            next = x + c f
//   Middle:    acc = acc + 2 f,    next = x + c f
//   Last:      x = x + c (acc + f)           (c = dt/6; s must not be x)
//   StateOnly: next = x + c f.
template <Stage K>
void forward_stage(const double* s, double* x, double* __restrict acc,
                   double* __restrict next, Index n, double forcing, double c) {
  auto emit = [&](Index i, double f) {
    if constexpr (K == Stage::First) {
      acc[i] = f;
      next[i] = x[i] + c * f;
    } else if constexpr (K == Stage::Middle) {
      acc[i] = acc[i] + 2.0 * f;
      next[i] = x[i] + c * f;
    } else if constexpr (K == Stage::Last) {
      x[i] = x[i] + c * (acc[i] + f);
    } else {
      next[i] = x[i] + c * f;
    }
  };
  emit(0, f_at(s, 0, n, forcing));
  emit(1, f_at(s, 1, n, forcing));
  for (Index i = 2; i < n - 1; ++i) emit(i, (s[i + 1] - s[i - 2]) * s[i - 1] - s[i] + forcing);
  emit(n - 1, f_at(s, n - 1, n, forcing));
}

// One TL stage from the stage state s and the stage input d: f = L96(s), g = J(s) d, then
//   First:  acc = g,          s_next = x + c f,  d_next = dx + c g
//   Middle: acc = acc + 2 g,  s_next = x + c f,  d_next = dx + c g
//   Last:   dx = dx + c (acc + g)                (c = dt/6; d must not be dx).
template <Stage K>
void tangent_stage(const double* s, const double* d, const double* __restrict x,
                   double* dx, double* __restrict acc, double* __restrict s_next,
                   double* __restrict d_next, Index n, double forcing, double c) {
  auto emit = [&](Index i, double g, double f) {
    if constexpr (K == Stage::First) {
      acc[i] = g;
    } else if constexpr (K == Stage::Middle) {
      acc[i] = acc[i] + 2.0 * g;
    }
    if constexpr (K == Stage::Last) {
      dx[i] = dx[i] + c * (acc[i] + g);
    } else {
      s_next[i] = x[i] + c * f;
      d_next[i] = dx[i] + c * g;
    }
  };
  emit(0, g_at(s, d, 0, n), f_at(s, 0, n, forcing));
  emit(1, g_at(s, d, 1, n), f_at(s, 1, n, forcing));
  for (Index i = 2; i < n - 1; ++i) {
    const double g = (d[i + 1] - d[i - 2]) * s[i - 1] + (s[i + 1] - s[i - 2]) * d[i - 1] - d[i];
    const double f = (s[i + 1] - s[i - 2]) * s[i - 1] - s[i] + forcing;
    emit(i, g, f);
  }
  emit(n - 1, g_at(s, d, n - 1, n), f_at(s, n - 1, n, forcing));
}

// One adjoint stage: u = J(s)^T a, ax = ax + u, and unless `last`, a_prev = co o + cu u.
template <bool Last>
void adjoint_stage(const double* __restrict s, const double* __restrict a, const double* __restrict o,
                   double* __restrict ax, double* __restrict a_prev, Index n, double co, double cu) {
  auto emit = [&](Index j, double u) {
    ax[j] = ax[j] + u;
    if constexpr (!Last) a_prev[j] = co * o[j] + cu * u;
  };
  emit(0, u_at(s, a, 0, n));
  emit(1, u_at(s, a, 1, n));
  for (Index j = 2; j < n - 2; ++j) {
    double u = 0.0;
    u += s[j - 2] * a[j - 1];
    u -= a[j];
    u += (s[j + 2] - s[j - 1]) * a[j + 1];
    u -= s[j + 1] * a[j + 2];
    emit(j, u);
  }
  emit(n - 2, u_at(s, a, n - 2, n));
  emit(n - 1, u_at(s, a, n - 1, n));
}

// x <- M(x) with scratch w of 3 n doubles.
void step_kernel(double* x, double* w, Index n, double forcing, double dt) {
  double *acc = w, *sa = w + n, *sb = w + 2 * n;
  const double h = 0.5 * dt;
  forward_stage<Stage::First>(x, x, acc, sa, n, forcing, h);
  forward_stage<Stage::Middle>(sa, x, acc, sb, n, forcing, h);
  forward_stage<Stage::Middle>(sb, x, acc, sa, n, forcing, dt);
  forward_stage<Stage::Last>(sa, x, acc, nullptr, n, forcing, dt / 6.0);
}
}  // namespace

void Lorenz96::do_step(Vector& x) const {
  detail::ScratchLease w(static_cast<std::size_t>(3 * n_));
  step_kernel(x.data(), w.data(), n_, forcing_, dt());
}

void Lorenz96::do_step_batch(Matrix& states) const {
  detail::ScratchLease w(static_cast<std::size_t>(3 * n_));
  for (Index c = 0; c < states.cols(); ++c) step_kernel(states.col(c).data(), w.data(), n_, forcing_, dt());
}

void Lorenz96::do_step_tangent(const Vector& xv, Vector& dxv) const {
  const Index n = n_;
  const double dt = this->dt(), h = 0.5 * dt, f = forcing_;
  detail::ScratchLease w(static_cast<std::size_t>(5 * n));
  double *acc = w.data(), *sa = acc + n, *sb = sa + n, *da = sb + n, *db = da + n;
  const double* x = xv.data();
  double* dx = dxv.data();
  tangent_stage<Stage::First>(x, dx, x, dx, acc, sa, da, n, f, h);
  tangent_stage<Stage::Middle>(sa, da, x, dx, acc, sb, db, n, f, h);
  tangent_stage<Stage::Middle>(sb, db, x, dx, acc, sa, da, n, f, dt);
  tangent_stage<Stage::Last>(sa, da, x, dx, acc, nullptr, nullptr, n, f, dt / 6.0);
}

void Lorenz96::do_step_adjoint(const Vector& xv, Vector& axv) const {
  const Index n = n_;
  const double dt = this->dt(), h = 0.5 * dt, f = forcing_;
  detail::ScratchLease w(static_cast<std::size_t>(6 * n));
  double *s1 = w.data(), *s2 = s1 + n, *s3 = s2 + n, *o = s3 + n, *aa = o + n, *ab = aa + n;
  double* x = const_cast<double*>(xv.data());  // read only: StateOnly stages do not write x
  double* ax = axv.data();
  // Stage states s1, s2, s3 (s0 = x).
  forward_stage<Stage::StateOnly>(x, x, nullptr, s1, n, f, h);
  forward_stage<Stage::StateOnly>(s1, x, nullptr, s2, n, f, h);
  forward_stage<Stage::StateOnly>(s2, x, nullptr, s3, n, f, dt);
  // o = adjoint of the step's output; aa = a_dk4 = dt/6 o.
  const double c6 = dt / 6.0, c3 = dt / 3.0;
  for (Index i = 0; i < n; ++i) {
    o[i] = ax[i];
    aa[i] = c6 * ax[i];
  }
  adjoint_stage<false>(s3, aa, o, ax, ab, n, c3, dt);  // ab = a_dk3 = dt/3 o + dt u3
  adjoint_stage<false>(s2, ab, o, ax, aa, n, c3, h);   // aa = a_dk2 = dt/3 o + dt/2 u2
  adjoint_stage<false>(s1, aa, o, ax, ab, n, c6, h);   // ab = a_dk1 = dt/6 o + dt/2 u1
  adjoint_stage<true>(x, ab, o, ax, nullptr, n, 0.0, 0.0);
}

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
