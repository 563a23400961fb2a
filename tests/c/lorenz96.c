/* dx_i/dt = (x_{i+1} - x_{i-2}) x_{i-1} - x_i + F on a ring, one RK4 step of dt; the TL and AD are
 * those of the RK4 step (stages recomputed from x). */
#include "lorenz96.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int64_t wrap(int64_t i, int64_t n) { return ((i % n) + n) % n; }

/* f = tendency at x. */
static void tendency(int64_t n, double forcing, const double* x, double* f) {
  for (int64_t i = 0; i < n; ++i) {
    f[i] = (x[wrap(i + 1, n)] - x[wrap(i - 2, n)]) * x[wrap(i - 1, n)] - x[i] + forcing;
  }
}
/* df = f'(x) dx. */
static void tendency_tangent(int64_t n, const double* x, const double* dx, double* df) {
  for (int64_t i = 0; i < n; ++i) {
    const int64_t p = wrap(i + 1, n), m = wrap(i - 1, n), mm = wrap(i - 2, n);
    df[i] = (dx[p] - dx[mm]) * x[m] + (x[p] - x[mm]) * dx[m] - dx[i];
  }
}
/* ax += f'(x)^T a. */
static void tendency_adjoint(int64_t n, const double* x, const double* a, double* ax) {
  for (int64_t i = 0; i < n; ++i) {
    const int64_t p = wrap(i + 1, n), m = wrap(i - 1, n), mm = wrap(i - 2, n);
    ax[p] += a[i] * x[m];
    ax[mm] -= a[i] * x[m];
    ax[m] += a[i] * (x[p] - x[mm]);
    ax[i] -= a[i];
  }
}

/* The four stage states x1..x4 (each n), stored in s[0..4n). */
static void stages(int64_t n, double forcing, double dt, const double* x, double* s, double* k) {
  double* x1 = s;
  double* x2 = s + n;
  double* x3 = s + 2 * n;
  double* x4 = s + 3 * n;
  memcpy(x1, x, (size_t)n * sizeof(double));
  tendency(n, forcing, x1, k);
  for (int64_t i = 0; i < n; ++i) x2[i] = x[i] + 0.5 * dt * k[i];
  tendency(n, forcing, x2, k + n);
  for (int64_t i = 0; i < n; ++i) x3[i] = x[i] + 0.5 * dt * k[n + i];
  tendency(n, forcing, x3, k + 2 * n);
  for (int64_t i = 0; i < n; ++i) x4[i] = x[i] + dt * k[2 * n + i];
  tendency(n, forcing, x4, k + 3 * n);
}

int lorenz96_step(void* user, int64_t n, double* x) {
  struct lorenz96* m = (struct lorenz96*)user;
  ++m->calls;
  if (m->fail_after > 0 && m->calls >= m->fail_after) return 7;
  double* s = malloc((size_t)(8 * n) * sizeof(double));
  if (!s) return 1;
  double* k = s + 4 * n;
  stages(n, m->forcing, m->dt, x, s, k);
  for (int64_t i = 0; i < n; ++i) {
    x[i] += m->dt / 6.0 * (k[i] + 2.0 * k[n + i] + 2.0 * k[2 * n + i] + k[3 * n + i]);
  }
  if (m->nan_after > 0 && m->calls >= m->nan_after) x[n / 2] = NAN;
  free(s);
  return 0;
}

int lorenz96_tangent(void* user, int64_t n, const double* x, double* dx) {
  const struct lorenz96* m = (const struct lorenz96*)user;
  const double dt = m->dt;
  double* s = malloc((size_t)(14 * n) * sizeof(double));
  if (!s) return 1;
  double* k = s + 4 * n;
  double* dk = s + 8 * n;
  double* u = s + 12 * n;
  stages(n, m->forcing, dt, x, s, k);
  tendency_tangent(n, s, dx, dk);
  for (int64_t i = 0; i < n; ++i) u[i] = dx[i] + 0.5 * dt * dk[i];
  tendency_tangent(n, s + n, u, dk + n);
  for (int64_t i = 0; i < n; ++i) u[i] = dx[i] + 0.5 * dt * dk[n + i];
  tendency_tangent(n, s + 2 * n, u, dk + 2 * n);
  for (int64_t i = 0; i < n; ++i) u[i] = dx[i] + dt * dk[2 * n + i];
  tendency_tangent(n, s + 3 * n, u, dk + 3 * n);
  for (int64_t i = 0; i < n; ++i) {
    dx[i] += dt / 6.0 * (dk[i] + 2.0 * dk[n + i] + 2.0 * dk[2 * n + i] + dk[3 * n + i]);
  }
  free(s);
  return 0;
}

int lorenz96_adjoint(void* user, int64_t n, const double* x, double* ax) {
  const struct lorenz96* m = (const struct lorenz96*)user;
  const double dt = m->dt;
  double* s = malloc((size_t)(14 * n) * sizeof(double));
  if (!s) return 1;
  double* k = s + 4 * n;
  double* ak = s + 8 * n; /* adjoints of the four stage tendencies */
  double* u = s + 12 * n;
  stages(n, m->forcing, dt, x, s, k);
  for (int64_t i = 0; i < n; ++i) {
    ak[i] = dt / 6.0 * ax[i];
    ak[n + i] = dt / 3.0 * ax[i];
    ak[2 * n + i] = dt / 3.0 * ax[i];
    ak[3 * n + i] = dt / 6.0 * ax[i];
  }
  /* Stage 4: dk4 = f'(x4) (dx + dt dk3). */
  memset(u, 0, (size_t)n * sizeof(double));
  tendency_adjoint(n, s + 3 * n, ak + 3 * n, u);
  for (int64_t i = 0; i < n; ++i) {
    ax[i] += u[i];
    ak[2 * n + i] += dt * u[i];
  }
  /* Stage 3: dk3 = f'(x3) (dx + dt/2 dk2). */
  memset(u, 0, (size_t)n * sizeof(double));
  tendency_adjoint(n, s + 2 * n, ak + 2 * n, u);
  for (int64_t i = 0; i < n; ++i) {
    ax[i] += u[i];
    ak[n + i] += 0.5 * dt * u[i];
  }
  /* Stage 2: dk2 = f'(x2) (dx + dt/2 dk1). */
  memset(u, 0, (size_t)n * sizeof(double));
  tendency_adjoint(n, s + n, ak + n, u);
  for (int64_t i = 0; i < n; ++i) {
    ax[i] += u[i];
    ak[i] += 0.5 * dt * u[i];
  }
  /* Stage 1: dk1 = f'(x) dx. */
  memset(u, 0, (size_t)n * sizeof(double));
  tendency_adjoint(n, s, ak, u);
  for (int64_t i = 0; i < n; ++i) ax[i] += u[i];
  free(s);
  return 0;
}
