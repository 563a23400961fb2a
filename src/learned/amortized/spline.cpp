#include "varflow/amortized/spline.h"

#include <algorithm>
#include <array>
#include <cassert>
#include <cmath>

#include "varflow/core/error.h"

namespace varflow::amortized {

void SplineShape::validate() const {
  if (bins < 2 || bins > 64) throw InvalidArgument(format_message("spline: bins = ", bins, " must be in [2, 64]"));
  check_positive("spline", "bound", bound);
  const double cap = 1.0 / static_cast<double>(bins);
  if (!(min_width > 0.0 && min_width < cap)) {
    throw InvalidArgument(format_message("spline: min_width = ", min_width, " must be in (0, 1/bins)"));
  }
  if (!(min_height > 0.0 && min_height < cap)) {
    throw InvalidArgument(format_message("spline: min_height = ", min_height, " must be in (0, 1/bins)"));
  }
  check_positive("spline", "min_derivative", min_derivative);
}

namespace {

constexpr int kMaxBins = 64;

inline double sigmoid(double x) {
  if (x >= 0.0) return 1.0 / (1.0 + std::exp(-x));
  const double e = std::exp(x);
  return e / (1.0 + e);
}
inline double softplus(double x) { return std::max(x, 0.0) + std::log1p(std::exp(-std::abs(x))); }

// Knots of the spline from theta.
struct Knots {
  int k = 0;                                // number of bins
  std::array<double, kMaxBins> pw, ph;      // softmax probabilities
  std::array<double, kMaxBins> w, h;        // bin widths and heights
  std::array<double, kMaxBins + 1> x, y, d; // knot positions and derivatives
  std::array<double, kMaxBins + 1> dpre;    // pre-activation of interior derivatives (for sigmoid)
};

void softmax(const double* v, int n, double* p) {
  double m = v[0];
  for (int i = 1; i < n; ++i) m = std::max(m, v[i]);
  double s = 0.0;
  for (int i = 0; i < n; ++i) { p[i] = std::exp(v[i] - m); s += p[i]; }
  for (int i = 0; i < n; ++i) p[i] /= s;
}

// Offset c with d_min + softplus(c) = 1: theta = 0 gives unit interior derivatives.
double derivative_offset(double dmin) { return std::log(std::expm1(1.0 - dmin)); }

void make_knots(const SplineShape& s, const double* theta, Knots& kn) {
  const int K = static_cast<int>(s.bins);
  kn.k = K;
  const double B = s.bound;
  softmax(theta, K, kn.pw.data());
  softmax(theta + K, K, kn.ph.data());
  const double cw = 2.0 * B * (1.0 - K * s.min_width), ch = 2.0 * B * (1.0 - K * s.min_height);
  kn.x[0] = -B;
  kn.y[0] = -B;
  for (int j = 0; j < K; ++j) {
    kn.w[j] = 2.0 * B * s.min_width + cw * kn.pw[j];
    kn.h[j] = 2.0 * B * s.min_height + ch * kn.ph[j];
    kn.x[j + 1] = kn.x[j] + kn.w[j];
    kn.y[j + 1] = kn.y[j] + kn.h[j];
  }
  kn.x[K] = B;
  kn.y[K] = B;
  const double off = derivative_offset(s.min_derivative);
  kn.d[0] = 1.0;
  kn.d[K] = 1.0;
  for (int j = 1; j < K; ++j) {
    kn.dpre[j] = theta[2 * K + j - 1] + off;
    kn.d[j] = s.min_derivative + softplus(kn.dpre[j]);
  }
}

int find_bin(const std::array<double, kMaxBins + 1>& knots, int K, double v) {
  int b = static_cast<int>(std::upper_bound(knots.begin() + 1, knots.begin() + K, v) - (knots.begin() + 1));
  return std::clamp(b, 0, K - 1);
}

// Local partial derivatives of y and of l = log(dy/dx) inside bin k with respect to
// (x, X_k, W_k, Y_k, H_k, D_k, D_k+1).
enum { kX = 0, kXk, kWk, kYk, kHk, kDk, kDk1, kLocals };
struct Local {
  int bin = 0;
  double y = 0.0, logd = 0.0, dydx = 1.0;
  std::array<double, kLocals> py{}, pl{};
};

void evaluate(const Knots& kn, double x, Local& e) {
  const int K = kn.k;
  const int k = find_bin(kn.x, K, x);
  e.bin = k;
  const double W = kn.w[k], H = kn.h[k], Dk = kn.d[k], Dk1 = kn.d[k + 1];
  const double xi = std::clamp((x - kn.x[k]) / W, 0.0, 1.0);
  const double s = H / W;
  const double a = xi * (1.0 - xi), ap = 1.0 - 2.0 * xi;
  const double q = Dk1 + Dk - 2.0 * s;
  const double N = s * xi * xi + Dk * a;
  const double den = s + q * a;
  const double R = N / den;
  e.y = kn.y[k] + H * R;
  const double P = Dk1 * xi * xi + 2.0 * s * a + Dk * (1.0 - xi) * (1.0 - xi);
  e.dydx = s * s * P / (den * den);
  e.logd = 2.0 * std::log(s) + std::log(P) - 2.0 * std::log(den);
  // y
  const double yxi = (H / den) * ((2.0 * s * xi + Dk * ap) - R * q * ap);
  const double ys = (H / den) * (xi * xi - R * (1.0 - 2.0 * a));
  e.py[kX] = yxi / W;
  e.py[kXk] = -yxi / W;
  e.py[kWk] = -yxi * xi / W - ys * s / W;
  e.py[kYk] = 1.0;
  e.py[kHk] = R + ys / W;
  e.py[kDk] = (H / den) * (a - R * a);
  e.py[kDk1] = (H / den) * (-R * a);
  // l = 2 log s + log P - 2 log den
  const double lxi = (2.0 * Dk1 * xi + 2.0 * s * ap - 2.0 * Dk * (1.0 - xi)) / P - 2.0 * q * ap / den;
  const double ls = 2.0 / s + 2.0 * a / P - 2.0 * (1.0 - 2.0 * a) / den;
  e.pl[kX] = lxi / W;
  e.pl[kXk] = -lxi / W;
  e.pl[kWk] = -lxi * xi / W - ls * s / W;
  e.pl[kYk] = 0.0;
  e.pl[kHk] = ls / W;
  e.pl[kDk] = (1.0 - xi) * (1.0 - xi) / P - 2.0 * a / den;
  e.pl[kDk1] = xi * xi / P - 2.0 * a / den;
}

bool inside(const SplineShape& s, double v) { return v >= -s.bound && v <= s.bound; }

}  // namespace

double rqs_forward(const SplineShape& s, const double* theta, double x, double* log_derivative) {
  if (!inside(s, x)) {
    *log_derivative = 0.0;
    return x;
  }
  Knots kn;
  make_knots(s, theta, kn);
  Local e;
  evaluate(kn, x, e);
  *log_derivative = e.logd;
  return e.y;
}

double rqs_inverse(const SplineShape& s, const double* theta, double y) {
  if (!inside(s, y)) return y;
  Knots kn;
  make_knots(s, theta, kn);
  const int K = kn.k;
  const int k = find_bin(kn.y, K, y);
  const double W = kn.w[k], H = kn.h[k], Dk = kn.d[k], Dk1 = kn.d[k + 1];
  const double sl = H / W, q = Dk1 + Dk - 2.0 * sl, dy = y - kn.y[k];
  // Solve a xi^2 + b xi + c = 0 for the root in [0, 1] (Durkan et al. 2019, eqs. 6-8).
  const double a = dy * q + H * (sl - Dk);
  const double b = H * Dk - dy * q;
  const double c = -sl * dy;
  const double disc = std::max(0.0, b * b - 4.0 * a * c);
  const double denom = -b - std::sqrt(disc);
  const double xi = denom != 0.0 ? std::clamp(2.0 * c / denom, 0.0, 1.0) : 0.0;
  return kn.x[k] + xi * W;
}

double rqs_backward(const SplineShape& s, const double* theta, double x, double gy, double gl, double* gtheta) {
  const int K = static_cast<int>(s.bins);
  std::fill(gtheta, gtheta + 3 * K - 1, 0.0);
  if (!inside(s, x)) return gy;
  Knots kn;
  make_knots(s, theta, kn);
  Local e;
  evaluate(kn, x, e);
  std::array<double, kLocals> g{};
  for (int j = 0; j < kLocals; ++j) g[j] = gy * e.py[j] + gl * e.pl[j];
  const int k = e.bin;
  // Widths: W_k directly, and X_k = -B + sum_{j<k} W_j.
  std::array<double, kMaxBins> gw{}, gh{};
  gw[k] += g[kWk];
  for (int j = 0; j < k; ++j) gw[j] += g[kXk];
  gh[k] += g[kHk];
  for (int j = 0; j < k; ++j) gh[j] += g[kYk];
  const double cw = 2.0 * s.bound * (1.0 - K * s.min_width), ch = 2.0 * s.bound * (1.0 - K * s.min_height);
  // Softmax reverse: d/dtheta_i = p_i (g_i - sum_j p_j g_j), with g = c * gW.
  double dotw = 0.0, doth = 0.0;
  for (int j = 0; j < K; ++j) { dotw += kn.pw[j] * gw[j]; doth += kn.ph[j] * gh[j]; }
  for (int j = 0; j < K; ++j) {
    gtheta[j] = cw * kn.pw[j] * (gw[j] - dotw);
    gtheta[K + j] = ch * kn.ph[j] * (gh[j] - doth);
  }
  // Interior derivatives D_k (k = 1 .. K-1) <- theta_d[k-1].
  if (k >= 1) gtheta[2 * K + k - 1] += g[kDk] * sigmoid(kn.dpre[k]);
  if (k + 1 <= K - 1) gtheta[2 * K + k] += g[kDk1] * sigmoid(kn.dpre[k + 1]);
  return g[kX];
}

double rqs_tangent_theta(const SplineShape& s, const double* theta, double x, const double* dtheta, double* dydx) {
  if (!inside(s, x)) {
    *dydx = 1.0;
    return 0.0;
  }
  const int K = static_cast<int>(s.bins);
  Knots kn;
  make_knots(s, theta, kn);
  Local e;
  evaluate(kn, x, e);
  *dydx = e.dydx;
  const int k = e.bin;
  const double cw = 2.0 * s.bound * (1.0 - K * s.min_width), ch = 2.0 * s.bound * (1.0 - K * s.min_height);
  double dotw = 0.0, doth = 0.0;
  for (int j = 0; j < K; ++j) { dotw += kn.pw[j] * dtheta[j]; doth += kn.ph[j] * dtheta[K + j]; }
  auto dW = [&](int j) { return cw * kn.pw[j] * (dtheta[j] - dotw); };
  auto dH = [&](int j) { return ch * kn.ph[j] * (dtheta[K + j] - doth); };
  double dXk = 0.0, dYk = 0.0;
  for (int j = 0; j < k; ++j) { dXk += dW(j); dYk += dH(j); }
  const double dDk = k >= 1 ? sigmoid(kn.dpre[k]) * dtheta[2 * K + k - 1] : 0.0;
  const double dDk1 = k + 1 <= K - 1 ? sigmoid(kn.dpre[k + 1]) * dtheta[2 * K + k] : 0.0;
  return e.py[kXk] * dXk + e.py[kWk] * dW(k) + e.py[kYk] * dYk + e.py[kHk] * dH(k) + e.py[kDk] * dDk +
         e.py[kDk1] * dDk1;
}

// ---- affine --------------------------------------------------------------------------------------

double affine_forward(double clamp, const double* theta, double x, double* log_derivative) {
  const double s = clamp * std::tanh(theta[1] / clamp);
  *log_derivative = s;
  return x * std::exp(s) + theta[0];
}

double affine_inverse(double clamp, const double* theta, double y) {
  const double s = clamp * std::tanh(theta[1] / clamp);
  return (y - theta[0]) * std::exp(-s);
}

double affine_backward(double clamp, const double* theta, double x, double gy, double gl, double* gtheta) {
  const double th = std::tanh(theta[1] / clamp);
  const double e = std::exp(clamp * th);
  const double ds = 1.0 - th * th;  // ds/ds_raw
  gtheta[0] = gy;
  gtheta[1] = (gy * x * e + gl) * ds;
  return gy * e;
}

double affine_tangent_theta(double clamp, const double* theta, double x, const double* dtheta, double* dydx) {
  const double th = std::tanh(theta[1] / clamp);
  const double e = std::exp(clamp * th);
  *dydx = e;
  return dtheta[0] + x * e * (1.0 - th * th) * dtheta[1];
}

}  // namespace varflow::amortized
