#include "varflow/model/lorenz96.h"

#include <algorithm>
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

// The range loops below write element i (or j) of their outputs and read their inputs only at
// stencil positions of arrays they do not write, or at i itself (in-place updates), so iterations are
// independent whatever the pointers alias; this tells the compiler so (it cannot version for every
// pointer pair of the TL stage).
#if defined(__clang__)
#define VARFLOW_INDEPENDENT_ITERATIONS _Pragma("clang loop vectorize(assume_safety)")
#elif defined(__GNUC__)
#define VARFLOW_INDEPENDENT_ITERATIONS _Pragma("GCC ivdep")
#else
#define VARFLOW_INDEPENDENT_ITERATIONS
#endif

// Which RK4 stage a pass computes (see forward_range).
enum class Stage { First, Middle, Last, StateOnly };

// One forward stage at i in [lo, hi) from the stage state s (which may be x, read only):
// f = L96(s) (no wrapping: s[i-2] .. s[i+1] must be valid), then
//   First:     acc = f,            next = x + c f
//   Middle:    acc = acc + 2 f,    next = x + c f
//   Last:      x = x + c (acc + f)           (c = dt/6; s must not be x)
//   StateOnly: next = x + c f.
template <Stage K>
inline void forward_emit(Index i, double f, double* x, double* __restrict acc, double* __restrict next, double c) {
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
}
template <Stage K>
void forward_range(const double* s, double* x, double* __restrict acc, double* __restrict next, Index lo, Index hi,
                   double forcing, double c) {
  VARFLOW_INDEPENDENT_ITERATIONS
  for (Index i = lo; i < hi; ++i) forward_emit<K>(i, (s[i + 1] - s[i - 2]) * s[i - 1] - s[i] + forcing, x, acc, next, c);
}
// The same stage over a whole periodic state of n variables.
template <Stage K>
void forward_stage(const double* s, double* x, double* acc, double* next, Index n, double forcing, double c) {
  forward_emit<K>(0, f_at(s, 0, n, forcing), x, acc, next, c);
  forward_emit<K>(1, f_at(s, 1, n, forcing), x, acc, next, c);
  forward_range<K>(s, x, acc, next, 2, n - 1, forcing, c);
  forward_emit<K>(n - 1, f_at(s, n - 1, n, forcing), x, acc, next, c);
}

// One TL stage at i from the stage state s and the stage input d: f = L96(s), g = J(s) d, then
//   First:  acc = g,          s_next = x + c f,  d_next = dx + c g
//   Middle: acc = acc + 2 g,  s_next = x + c f,  d_next = dx + c g
//   Last:   out = dx + c (acc + g)               (c = dt/6; d must not be dx or out; out may be dx).
template <Stage K>
inline void tangent_emit(Index i, double g, double f, const double* x, const double* dx, double* acc, double* s_next,
                         double* d_next, double* out, double c) {
  if constexpr (K == Stage::First) {
    acc[i] = g;
  } else if constexpr (K == Stage::Middle) {
    acc[i] = acc[i] + 2.0 * g;
  }
  if constexpr (K == Stage::Last) {
    out[i] = dx[i] + c * (acc[i] + g);
  } else {
    s_next[i] = x[i] + c * f;
    d_next[i] = dx[i] + c * g;
  }
}
template <Stage K>
void tangent_range(const double* s, const double* d, const double* x, const double* dx, double* acc, double* s_next,
                   double* d_next, double* out, Index lo, Index hi, double forcing, double c) {
  VARFLOW_INDEPENDENT_ITERATIONS
  for (Index i = lo; i < hi; ++i) {
    const double g = (d[i + 1] - d[i - 2]) * s[i - 1] + (s[i + 1] - s[i - 2]) * d[i - 1] - d[i];
    const double f = (s[i + 1] - s[i - 2]) * s[i - 1] - s[i] + forcing;
    tangent_emit<K>(i, g, f, x, dx, acc, s_next, d_next, out, c);
  }
}
template <Stage K>
void tangent_stage(const double* s, const double* d, const double* x, double* dx, double* acc, double* s_next,
                   double* d_next, Index n, double forcing, double c) {
  for (Index i : {Index{0}, Index{1}}) {
    tangent_emit<K>(i, g_at(s, d, i, n), f_at(s, i, n, forcing), x, dx, acc, s_next, d_next, dx, c);
  }
  tangent_range<K>(s, d, x, dx, acc, s_next, d_next, dx, 2, n - 1, forcing, c);
  tangent_emit<K>(n - 1, g_at(s, d, n - 1, n), f_at(s, n - 1, n, forcing), x, dx, acc, s_next, d_next, dx, c);
}

// The adjoint input of a stage: a plain array, or c * o read on the fly (the first stage's
// a_dk4 = dt/6 o, each element the same product the stored array would hold).
struct Plain {
  const double* p;
  double operator[](Index k) const { return p[k]; }
};
struct Scaled {
  const double* p;
  double c;
  double operator[](Index k) const { return c * p[k]; }
};

// One adjoint stage at j: u = J(s)^T a, out = ax + u, and unless Last, a_prev = co o + cu u
// (out may be ax).
template <bool Last>
inline void adjoint_emit(Index j, double u, const double* o, const double* ax, double* out, double* a_prev, double co,
                         double cu) {
  out[j] = ax[j] + u;
  if constexpr (!Last) a_prev[j] = co * o[j] + cu * u;
}
// Over [lo, hi) where the four terms come in their natural order (j - 1 >= 0 and j + 2 <= n - 1 in
// the global periodic index) and s[j-2] .. s[j+2], a[j-1] .. a[j+2] are valid.
template <bool Last, class A>
void adjoint_range(const double* s, A a, const double* o, const double* ax, double* out, double* a_prev, Index lo,
                   Index hi, double co, double cu) {
  VARFLOW_INDEPENDENT_ITERATIONS
  for (Index j = lo; j < hi; ++j) {
    double u = 0.0;
    u += s[j - 2] * a[j - 1];
    u -= a[j];
    u += (s[j + 2] - s[j - 1]) * a[j + 1];
    u -= s[j + 1] * a[j + 2];
    adjoint_emit<Last>(j, u, o, ax, out, a_prev, co, cu);
  }
}
template <bool Last>
void adjoint_stage(const double* s, const double* a, const double* o, double* ax, double* a_prev, Index n, double co,
                   double cu) {
  adjoint_emit<Last>(0, u_at(s, a, 0, n), o, ax, ax, a_prev, co, cu);
  adjoint_emit<Last>(1, u_at(s, a, 1, n), o, ax, ax, a_prev, co, cu);
  adjoint_range<Last>(s, Plain{a}, o, ax, ax, a_prev, 2, n - 2, co, cu);
  adjoint_emit<Last>(n - 2, u_at(s, a, n - 2, n), o, ax, ax, a_prev, co, cu);
  adjoint_emit<Last>(n - 1, u_at(s, a, n - 1, n), o, ax, ax, a_prev, co, cu);
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

// ---- tiled kernels for large n --------------------------------------------------------------------
// The state is processed in tiles: each tile copies its variables plus the halo its stencils reach
// into local arrays (in cache), runs every stage there, and writes its result back, so a step streams
// the state through memory once instead of once per stage. Each element is still computed by the
// same expressions as above (bit for bit the same result). A tile overwrites its part of the in/out
// vector, so the original values that later tiles' halos need (the tail of the previous tile, and the
// head of the vector for the last tile's right halo) are kept aside. The TL and AD read the state x,
// which they do not write, in place wherever a tile and its halo do not wrap, and their last stage
// writes the tile's result straight into the in/out vector.
constexpr Index kTile = 512;  // 256 and 384 measured no faster for the TL and AD
constexpr Index kTiledMin = 4 * kTile;

// Gathers local[p] = original v[b0 - hl + p] (periodic) for p in [0, L), where the variables before b0
// in this tile's left halo come from `carry` (b0 > 0) and wrapped indices past n from `head`.
// Two plain copies, not one loop with a select: vectorised with AVX-512, the select became masked
// loads of both sources, and those whose masked-off lanes point far outside `head` ran ~10x slower
// (n = 4 10^5: 32 against 3 ns per variable and step).
void gather(const double* v, Index n, Index b0, Index hl, Index length, const double* carry, const double* head,
            double* local) {
  for (Index p = 0; p < hl; ++p) local[p] = b0 == 0 ? v[n - hl + p] : carry[p];
  const Index split = std::max(hl, std::min(length, n - b0 + hl));  // local[p] for p < split is v[b0 + p - hl]
  for (Index p = hl; p < split; ++p) local[p] = v[b0 + p - hl];
  for (Index p = split; p < length; ++p) local[p] = head[b0 + p - hl - n];
}
// v[b0 - hl + p] (periodic) for p in [0, L) of a vector that is not overwritten: in place when that
// range does not wrap, else gathered into `local`.
const double* tile_view(const double* v, Index n, Index b0, Index hl, Index length, double* local) {
  const Index g0 = b0 - hl;
  if (g0 >= 0 && g0 + length <= n) return v + g0;
  for (Index p = 0; p < length; ++p) {
    const Index g = g0 + p;
    local[p] = v[g < 0 ? g + n : (g >= n ? g - n : g)];
  }
  return local;
}

std::size_t step_tiled_scratch() { return static_cast<std::size_t>(4 * (kTile + 12) + 12); }
void step_tiled(double* x, double* w, Index n, double forcing, double dt) {
  constexpr Index hl = 8, hr = 4, cap = kTile + hl + hr;
  double *lx = w, *acc = w + cap, *sa = w + 2 * cap, *sb = w + 3 * cap, *head = w + 4 * cap, *carry = head + hr;
  const double h = 0.5 * dt;
  for (Index k = 0; k < hr; ++k) head[k] = x[k];
  for (Index b0 = 0; b0 < n; b0 += kTile) {
    const Index len = std::min(kTile, n - b0), L = len + hl + hr;
    gather(x, n, b0, hl, L, carry, head, lx);
    forward_range<Stage::First>(lx, lx, acc, sa, 2, L - 1, forcing, h);
    forward_range<Stage::Middle>(sa, lx, acc, sb, 4, L - 2, forcing, h);
    forward_range<Stage::Middle>(sb, lx, acc, sa, 6, L - 3, forcing, dt);
    for (Index k = 0; k < hl; ++k) carry[k] = lx[len + k];  // original x[b1 - hl, b1)
    forward_range<Stage::Last>(sa, lx, acc, nullptr, hl, hl + len, forcing, dt / 6.0);
    for (Index k = 0; k < len; ++k) x[b0 + k] = lx[hl + k];
  }
}

std::size_t tangent_tiled_scratch() { return static_cast<std::size_t>(7 * (kTile + 12) + 12); }
void tangent_tiled(const double* x, double* dx, double* w, Index n, double forcing, double dt) {
  constexpr Index hl = 8, hr = 4, cap = kTile + hl + hr;
  double *ld = w, *acc = ld + cap, *sa = acc + cap, *sb = sa + cap, *da = sb + cap, *db = da + cap, *bx = db + cap;
  double *head = bx + cap, *carry = head + hr;
  const double h = 0.5 * dt;
  for (Index k = 0; k < hr; ++k) head[k] = dx[k];
  for (Index b0 = 0; b0 < n; b0 += kTile) {
    const Index len = std::min(kTile, n - b0), L = len + hl + hr;
    const double* lx = tile_view(x, n, b0, hl, L, bx);
    gather(dx, n, b0, hl, L, carry, head, ld);
    tangent_range<Stage::First>(lx, ld, lx, ld, acc, sa, da, nullptr, 2, L - 1, forcing, h);
    tangent_range<Stage::Middle>(sa, da, lx, ld, acc, sb, db, nullptr, 4, L - 2, forcing, h);
    tangent_range<Stage::Middle>(sb, db, lx, ld, acc, sa, da, nullptr, 6, L - 3, forcing, dt);
    for (Index k = 0; k < hl; ++k) carry[k] = ld[len + k];  // original dx[b1 - hl, b1)
    // Local hl + k is dx[b0 + k].
    tangent_range<Stage::Last>(sa + hl, da + hl, lx + hl, ld + hl, acc + hl, nullptr, nullptr, dx + b0, 0, len,
                               forcing, dt / 6.0);
  }
}

// u at local p of a tile whose global index is j: the terms of u_at in their periodic order.
template <class A>
inline double u_local(const double* s, A a, Index p, Index j, Index n) {
  struct Term {
    Index i;
    double v;
  };
  Term t[4] = {{wrap(j - 1, n), s[p - 2] * a[p - 1]},
               {j, -a[p]},
               {wrap(j + 1, n), (s[p + 2] - s[p - 1]) * a[p + 1]},
               {wrap(j + 2, n), -(s[p + 1] * a[p + 2])}};
  for (int q0 = 1; q0 < 4; ++q0) {
    for (int q = q0; q > 0 && t[q - 1].i > t[q].i; --q) std::swap(t[q - 1], t[q]);
  }
  double u = 0.0;
  for (const Term& term : t) u += term.v;
  return u;
}

// One adjoint stage over local [lo, hi) of the tile whose local p is global b0 - hl + p: the global
// j = 0, n - 2, n - 1, whose terms wrap out of order, go through u_local.
template <bool Last, class A>
void adjoint_tile_range(const double* s, A a, const double* o, const double* ax, double* out, double* a_prev, Index lo,
                        Index hi, Index b0, Index hl, Index n, double co, double cu) {
  Index special[9] = {};
  int count = 0;
  for (Index j : {Index{0}, n - 2, n - 1}) {
    for (Index m = -1; m <= 1; ++m) {
      const Index p = j - b0 + hl + m * n;
      if (p >= lo && p < hi) special[count++] = p;
    }
  }
  for (int q0 = 1; q0 < count; ++q0) {
    for (int q = q0; q > 0 && special[q - 1] > special[q]; --q) std::swap(special[q - 1], special[q]);
  }
  Index from = lo;
  for (int q = 0; q < count; ++q) {
    const Index p = special[q];
    adjoint_range<Last>(s, a, o, ax, out, a_prev, from, p, co, cu);
    adjoint_emit<Last>(p, u_local(s, a, p, wrap(b0 - hl + p, n), n), o, ax, out, a_prev, co, cu);
    from = p + 1;
  }
  adjoint_range<Last>(s, a, o, ax, out, a_prev, from, hi, co, cu);
}

std::size_t adjoint_tiled_scratch() { return static_cast<std::size_t>(7 * (kTile + 22) + 11); }
void adjoint_tiled(const double* x, double* ax, double* w, Index n, double forcing, double dt) {
  constexpr Index hl = 11, hr = 11, cap = kTile + hl + hr;
  double *s1 = w, *s2 = s1 + cap, *s3 = s2 + cap, *lo = s3 + cap, *la = lo + cap, *ab = la + cap, *bx = ab + cap;
  double* head = bx + cap;
  const double h = 0.5 * dt, c6 = dt / 6.0, c3 = dt / 3.0;
  for (Index k = 0; k < hr; ++k) head[k] = ax[k];
  Index previous_len = 0;
  for (Index b0 = 0; b0 < n; b0 += kTile) {
    const Index len = std::min(kTile, n - b0), L = len + hl + hr;
    // The left halo of o (original ax) is the tail of the previous tile's o: move it to the front.
    if (b0 > 0) std::copy(lo + previous_len, lo + previous_len + hl, lo);
    gather(ax, n, b0, hl, L, lo, head, lo);
    double* lx = const_cast<double*>(tile_view(x, n, b0, hl, L, bx));  // read only: StateOnly does not write x
    forward_range<Stage::StateOnly>(lx, lx, nullptr, s1, 2, L - 1, forcing, h);
    forward_range<Stage::StateOnly>(s1, lx, nullptr, s2, 4, L - 2, forcing, h);
    forward_range<Stage::StateOnly>(s2, lx, nullptr, s3, 6, L - 3, forcing, dt);
    // a_dk4 = dt/6 o; la = o + u4; ab = a_dk3; then s3 (no longer needed) holds a_dk2, ab a_dk1.
    adjoint_tile_range<false>(s3, Scaled{lo, c6}, lo, lo, la, ab, 8, L - 5, b0, hl, n, c3, dt);
    double* a2 = s3;
    adjoint_tile_range<false>(s2, Plain{ab}, lo, la, la, a2, 9, L - 7, b0, hl, n, c3, h);
    adjoint_tile_range<false>(s1, Plain{a2}, lo, la, la, ab, 10, L - 9, b0, hl, n, c6, h);
    // Local hl + k is ax[b0 + k].
    adjoint_tile_range<true>(lx + hl, Plain{ab + hl}, nullptr, la + hl, ax + b0, nullptr, 0, len, b0, 0, n, 0.0, 0.0);
    previous_len = len;
  }
}
}  // namespace

void Lorenz96::do_step(Vector& x) const {
  if (n_ >= kTiledMin) {
    detail::ScratchLease w(step_tiled_scratch());
    step_tiled(x.data(), w.data(), n_, forcing_, dt());
    return;
  }
  detail::ScratchLease w(static_cast<std::size_t>(3 * n_));
  step_kernel(x.data(), w.data(), n_, forcing_, dt());
}

void Lorenz96::do_step_batch(Matrix& states) const {
  const Index cols = states.cols();
  // The columns are independent: with enough work (kParallelBatchMin variables) they are
  // split over the OpenMP threads, each with its own scratch lease; a column's bits do not depend on
  // the thread that steps it. Inside an enclosing parallel region this runs serially.
#pragma omp parallel if (cols > 1 && cols * n_ >= kParallelBatchMin)
  {
    if (n_ >= kTiledMin) {
      detail::ScratchLease w(step_tiled_scratch());
#pragma omp for schedule(static)
      for (Index c = 0; c < cols; ++c) step_tiled(states.col(c).data(), w.data(), n_, forcing_, dt());
    } else {
      detail::ScratchLease w(static_cast<std::size_t>(3 * n_));
#pragma omp for schedule(static)
      for (Index c = 0; c < cols; ++c) step_kernel(states.col(c).data(), w.data(), n_, forcing_, dt());
    }
  }
}

void Lorenz96::do_step_tangent(const Vector& xv, Vector& dxv) const {
  const Index n = n_;
  const double dt = this->dt(), h = 0.5 * dt, f = forcing_;
  if (n >= kTiledMin) {
    detail::ScratchLease w(tangent_tiled_scratch());
    tangent_tiled(xv.data(), dxv.data(), w.data(), n, f, dt);
    return;
  }
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
  if (n >= kTiledMin) {
    detail::ScratchLease w(adjoint_tiled_scratch());
    adjoint_tiled(xv.data(), axv.data(), w.data(), n, f, dt);
    return;
  }
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
