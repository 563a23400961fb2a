#pragma once
// Textbook reference implementations of the built-in models, for checking their fast kernels bit
// for bit (tests/model_kernel_test.cpp) and for timing what the kernels replaced
// (bench/model_kernel_bench.cpp): the Lorenz-96 and Lorenz-63 tendencies with their tangent and
// adjoint as plain loops, and the classical RK4 step, TL and AD written with Eigen expressions and
// fresh vectors per stage. Header-only; slow on purpose.
#include "varflow/core/types.h"

namespace varflow::testing {

inline Index wrap(Index i, Index n) { return (i % n + n) % n; }

// The tendencies of Lorenz-96 and Lorenz-63 as plain loops (the definitions of the models).
struct L96Tendency {
  Index n;
  double forcing;
  void f(const Vector& x, Vector& out) const {
    for (Index i = 0; i < n; ++i) out[i] = (x[wrap(i + 1, n)] - x[wrap(i - 2, n)]) * x[wrap(i - 1, n)] - x[i] + forcing;
  }
  void tangent(const Vector& x, const Vector& dx, Vector& df) const {
    for (Index i = 0; i < n; ++i) {
      const Index ip1 = wrap(i + 1, n), im1 = wrap(i - 1, n), im2 = wrap(i - 2, n);
      df[i] = (dx[ip1] - dx[im2]) * x[im1] + (x[ip1] - x[im2]) * dx[im1] - dx[i];
    }
  }
  void adjoint(const Vector& x, const Vector& a, Vector& ax) const {
    ax.setZero();
    for (Index i = 0; i < n; ++i) {
      const Index ip1 = wrap(i + 1, n), im1 = wrap(i - 1, n), im2 = wrap(i - 2, n);
      ax[ip1] += x[im1] * a[i];
      ax[im2] -= x[im1] * a[i];
      ax[im1] += (x[ip1] - x[im2]) * a[i];
      ax[i] -= a[i];
    }
  }
};

struct L63Tendency {
  double sigma = 10.0, rho = 28.0, beta = 8.0 / 3.0;
  void f(const Vector& s, Vector& out) const {
    out[0] = sigma * (s[1] - s[0]);
    out[1] = s[0] * (rho - s[2]) - s[1];
    out[2] = s[0] * s[1] - beta * s[2];
  }
  void tangent(const Vector& s, const Vector& d, Vector& df) const {
    df[0] = sigma * (d[1] - d[0]);
    df[1] = (rho - s[2]) * d[0] - d[1] - s[0] * d[2];
    df[2] = s[1] * d[0] + s[0] * d[1] - beta * d[2];
  }
  void adjoint(const Vector& s, const Vector& a, Vector& ax) const {
    ax[0] = -sigma * a[0] + (rho - s[2]) * a[1] + s[1] * a[2];
    ax[1] = sigma * a[0] - a[1] + s[0] * a[2];
    ax[2] = -s[0] * a[1] - beta * a[2];
  }
};

// The textbook RK4 step, TL and AD with Eigen expressions and fresh vectors.
template <class T>
struct ReferenceRk4 {
  T t;
  double dt;
  void stage_states(const Vector& x, Vector s[4]) const {
    Vector k(x.size());
    s[0] = x;
    t.f(s[0], k);
    s[1] = x + 0.5 * dt * k;
    t.f(s[1], k);
    s[2] = x + 0.5 * dt * k;
    t.f(s[2], k);
    s[3] = x + dt * k;
  }
  void step(Vector& x) const {
    const Index n = x.size();
    Vector k1(n), k2(n), k3(n), k4(n);
    t.f(x, k1);
    t.f(x + 0.5 * dt * k1, k2);
    t.f(x + 0.5 * dt * k2, k3);
    t.f(x + dt * k3, k4);
    x += (dt / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4);
  }
  void tangent(const Vector& x, Vector& dx) const {
    Vector s[4];
    stage_states(x, s);
    const Index n = x.size();
    Vector dk1(n), dk2(n), dk3(n), dk4(n);
    t.tangent(s[0], dx, dk1);
    t.tangent(s[1], dx + 0.5 * dt * dk1, dk2);
    t.tangent(s[2], dx + 0.5 * dt * dk2, dk3);
    t.tangent(s[3], dx + dt * dk3, dk4);
    dx += (dt / 6.0) * (dk1 + 2.0 * dk2 + 2.0 * dk3 + dk4);
  }
  void adjoint(const Vector& x, Vector& ax) const {
    Vector s[4];
    stage_states(x, s);
    const Index n = x.size();
    const Vector a_out = ax;
    Vector a_dk1 = (dt / 6.0) * a_out, a_dk2 = (dt / 3.0) * a_out, a_dk3 = (dt / 3.0) * a_out;
    const Vector a_dk4 = (dt / 6.0) * a_out;
    Vector u(n);
    t.adjoint(s[3], a_dk4, u);
    ax += u;
    a_dk3 += dt * u;
    t.adjoint(s[2], a_dk3, u);
    ax += u;
    a_dk2 += 0.5 * dt * u;
    t.adjoint(s[1], a_dk2, u);
    ax += u;
    a_dk1 += 0.5 * dt * u;
    t.adjoint(s[0], a_dk1, u);
    ax += u;
  }
};

}  // namespace varflow::testing
