// The Gaussianization (mixture-of-Gaussians CDF) layer of flow.h.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <vector>

#include <boost/math/special_functions/erf.hpp>

#include "varflow/core/error.h"
#include "varflow/vi/flow.h"

namespace varflow::vi {

namespace {

constexpr double kHalfLog2Pi = 0.91893853320467274178;
constexpr double kInfinity = std::numeric_limits<double>::infinity();
// The inverse's tolerance on x (relative to 1 + |x|) and its most Newton / bisection steps.
constexpr double kRootTolerance = 1e-10;
constexpr int kMaxRootSteps = 200;

double normal_cdf(double u) { return 0.5 * std::erfc(-u / std::numbers::sqrt2); }
double normal_ccdf(double u) { return 0.5 * std::erfc(u / std::numbers::sqrt2); }
// Phi^-1 from whichever of p = F and q = 1 - F carries the digits; +-inf at the ends.
double normal_quantile(double p, double q) {
  if (p < 0.5) return p > 0.0 ? -std::numbers::sqrt2 * boost::math::erfc_inv(2.0 * p) : -kInfinity;
  return q > 0.0 ? std::numbers::sqrt2 * boost::math::erfc_inv(2.0 * q) : kInfinity;
}

// Everything one coordinate's forward and reverse passes need at x. theta = [K logits, K means,
// K log-sigmas]. Scratch vectors are per call (K is small).
struct MixturePoint {
  int k = 0;
  std::vector<double> pi, u, sigma, logw, cdf, ccdf;
  double f_cdf = 0.0, f_ccdf = 0.0;  // F and 1 - F
  double logf = 0.0;                 // log of the mixture density at x
  double y = 0.0, logphi = 0.0;      // output and log phi(y)

  void evaluate(const double* theta, int components, double x) {
    k = components;
    pi.resize(k); u.resize(k); sigma.resize(k); logw.resize(k); cdf.resize(k); ccdf.resize(k);
    double m = theta[0];
    for (int i = 1; i < k; ++i) m = std::max(m, theta[i]);
    double s = 0.0;
    for (int i = 0; i < k; ++i) s += (pi[i] = std::exp(theta[i] - m));
    f_cdf = f_ccdf = 0.0;
    double lmax = -kInfinity;
    for (int i = 0; i < k; ++i) {
      pi[i] /= s;
      sigma[i] = std::exp(theta[2 * k + i]);
      u[i] = (x - theta[k + i]) / sigma[i];
      cdf[i] = normal_cdf(u[i]);
      ccdf[i] = normal_ccdf(u[i]);
      f_cdf += pi[i] * cdf[i];
      f_ccdf += pi[i] * ccdf[i];
      logw[i] = std::log(pi[i]) - 0.5 * u[i] * u[i] - kHalfLog2Pi - theta[2 * k + i];
      lmax = std::max(lmax, logw[i]);
    }
    double t = 0.0;
    for (int i = 0; i < k; ++i) t += std::exp(logw[i] - lmax);
    logf = lmax + std::log(t);
    y = normal_quantile(f_cdf, f_ccdf);
    logphi = -0.5 * y * y - kHalfLog2Pi;
  }
  double log_derivative() const { return logf - logphi; }  // log dy/dx
  double derivative() const { return std::exp(logf - logphi); }
};

// Reverse mode at x: returns dL/dx for dL/dy = gy, dL/d(log dy/dx) = gl; writes dL/dtheta (3K).
double mixture_backward(const MixturePoint& p, double gy, double gl, double* gtheta) {
  const int k = p.k;
  const double q = p.derivative();
  double dlogf_dx = 0.0;
  for (int i = 0; i < k; ++i) {
    const double r = std::exp(p.logw[i] - p.logf);  // responsibility
    const double e = std::exp(p.logw[i] - p.logphi);  // w_i / phi(y)
    const double sig = p.sigma[i];
    dlogf_dx -= r * p.u[i] / sig;
    // dy/dtheta = (dF/dtheta) / phi(y); dl/dtheta = (df/dtheta) / f + y dy/dtheta.
    const double dF_da = p.f_cdf < 0.5 ? p.pi[i] * (p.cdf[i] - p.f_cdf) : p.pi[i] * (p.f_ccdf - p.ccdf[i]);
    const double dy_da = dF_da * std::exp(-p.logphi);
    const double dy_dmu = -e;
    const double dy_drho = -p.u[i] * sig * e;
    gtheta[i] = gy * dy_da + gl * (r - p.pi[i] + p.y * dy_da);
    gtheta[k + i] = gy * dy_dmu + gl * (r * p.u[i] / sig + p.y * dy_dmu);
    gtheta[2 * k + i] = gy * dy_drho + gl * (r * (p.u[i] * p.u[i] - 1.0) + p.y * dy_drho);
  }
  return gy * q + gl * (dlogf_dx + p.y * q);
}

// x with y(x) = target, by safeguarded Newton inside the exact bracket; counts the steps.
double mixture_inverse(const double* theta, int k, double target, MixturePoint& p, Index* steps) {
  double lo = kInfinity, hi = -kInfinity, x = 0.0;
  {
    double m = theta[0], s = 0.0;
    for (int i = 1; i < k; ++i) m = std::max(m, theta[i]);
    for (int i = 0; i < k; ++i) s += std::exp(theta[i] - m);
    for (int i = 0; i < k; ++i) {
      // Each component's CDF at mu_i + sigma_i target equals Phi(target): F is below it at the
      // smallest such point and above it at the largest.
      const double xi = theta[k + i] + std::exp(theta[2 * k + i]) * target;
      lo = std::min(lo, xi);
      hi = std::max(hi, xi);
      x += std::exp(theta[i] - m) / s * xi;
    }
  }
  if (!std::isfinite(target)) return target;
  if (!(hi > lo)) return lo;
  for (int it = 0; it < kMaxRootSteps; ++it) {
    ++*steps;
    p.evaluate(theta, k, x);
    const double g = p.y - target;
    if (g == 0.0) return x;
    if (g > 0.0) hi = std::min(hi, x); else lo = std::max(lo, x);
    double next = x - g / p.derivative();
    if (!(next > lo && next < hi)) next = 0.5 * (lo + hi);
    const double tol = kRootTolerance * (1.0 + std::abs(next));
    if (std::abs(next - x) <= tol || hi - lo <= tol) return next;
    x = next;
  }
  return x;
}

}  // namespace

MixtureCdf::MixtureCdf(Index d, Index components) : d_(d), k_(components) {
  check_at_least("MixtureCdf", "d", d, 1);
  check_at_least("MixtureCdf", "components", components, 1);
}

std::string MixtureCdf::describe() const { return format_message("mixture_cdf(", d_, ", ", k_, " components)"); }

void MixtureCdf::bind(nn::ParameterBinder& binder, const std::string& prefix) {
  theta_ = binder.take(prefix + ".mixture", 3 * k_, d_, false);
}

void MixtureCdf::initialize(Rng& rng) {
  Eigen::Map<Matrix> t(theta_.value, 3 * k_, d_);
  t.setZero();
  for (Index i = 0; i < d_; ++i)
    for (Index c = 0; c < k_; ++c) t(k_ + c, i) = 0.3 * rng.normal();
}

void MixtureCdf::forward(const Matrix& x, Matrix& y, Vector& logdet) {
  if (x.rows() != d_) throw InvalidArgument(format_message("mixture_cdf forward: x has ", x.rows(), " rows, expected ", d_));
  const Index n = x.cols();
  x_ = x;
  y.resize(d_, n);
  Vector add = Vector::Zero(n);
#pragma omp parallel for schedule(static) if (n >= 64)
  for (Index j = 0; j < n; ++j) {
    MixturePoint p;
    for (Index i = 0; i < d_; ++i) {
      p.evaluate(theta_.value + i * 3 * k_, static_cast<int>(k_), x(i, j));
      y(i, j) = p.y;
      add[j] += p.log_derivative();
    }
  }
  logdet += add;
}

void MixtureCdf::backward(const Matrix& gy, const Vector& gl, Matrix& gx, bool accumulate) {
  const Index n = x_.cols();
  if (gy.rows() != d_ || gy.cols() != n || gl.size() != n) {
    throw InvalidArgument(format_message("mixture_cdf backward: gy is ", gy.rows(), " x ", gy.cols(), ", expected ", d_, " x ", n));
  }
  gx.resize(d_, n);
  Matrix gtheta = Matrix::Zero(3 * k_, d_);
#pragma omp parallel
  {
    Matrix local = Matrix::Zero(3 * k_, d_);
    std::vector<double> g(static_cast<std::size_t>(3 * k_));
    MixturePoint p;
#pragma omp for schedule(static)
    for (Index j = 0; j < n; ++j) {
      for (Index i = 0; i < d_; ++i) {
        p.evaluate(theta_.value + i * 3 * k_, static_cast<int>(k_), x_(i, j));
        gx(i, j) = mixture_backward(p, gy(i, j), gl[j], g.data());
        local.col(i) += Eigen::Map<const Vector>(g.data(), 3 * k_);
      }
    }
#pragma omp critical
    gtheta += local;
  }
  if (accumulate) Eigen::Map<Matrix>(theta_.gradient, 3 * k_, d_) += gtheta;
}

void MixtureCdf::inverse(const Matrix& y, Matrix& x, Vector& logdet) {
  if (y.rows() != d_) throw InvalidArgument(format_message("mixture_cdf inverse: y has ", y.rows(), " rows, expected ", d_));
  const Index n = y.cols();
  x.resize(d_, n);
  Vector add = Vector::Zero(n);
  Index total = 0, most = 0;
#pragma omp parallel for schedule(static) reduction(+ : total) reduction(max : most) if (n >= 64)
  for (Index j = 0; j < n; ++j) {
    MixturePoint p;
    for (Index i = 0; i < d_; ++i) {
      Index steps = 0;
      const double* th = theta_.value + i * 3 * k_;
      x(i, j) = mixture_inverse(th, static_cast<int>(k_), y(i, j), p, &steps);
      p.evaluate(th, static_cast<int>(k_), x(i, j));
      add[j] -= p.log_derivative();
      total += steps;
      most = std::max(most, steps);
    }
  }
  iterations_ = total;
  max_iterations_ = most;
  logdet += add;
  x_ = x;
}

void MixtureCdf::inverse_backward(const Matrix& gx, const Vector& gl, Matrix& gy, bool accumulate) {
  const Index n = x_.cols();
  if (gx.rows() != d_ || gx.cols() != n || gl.size() != n) {
    throw InvalidArgument(format_message("mixture_cdf inverse_backward: gx is ", gx.rows(), " x ", gx.cols(), ", expected ", d_, " x ", n));
  }
  gy.resize(d_, n);
  Matrix gtheta = Matrix::Zero(3 * k_, d_);
#pragma omp parallel
  {
    Matrix local = Matrix::Zero(3 * k_, d_);
    std::vector<double> g(static_cast<std::size_t>(3 * k_));
    MixturePoint p;
#pragma omp for schedule(static)
    for (Index j = 0; j < n; ++j) {
      for (Index i = 0; i < d_; ++i) {
        p.evaluate(theta_.value + i * 3 * k_, static_cast<int>(k_), x_(i, j));
        // Implicit-function rule at x = f^-1(y): with b = gx - gl dl/dx (l = log dy/dx),
        // dL/dy = b / (dy/dx) and dL/dtheta = -(dL/dy) dy/dtheta - gl dl/dtheta.
        const double dl_dx = mixture_backward(p, 0.0, 1.0, g.data());
        const double lambda = (gx(i, j) - gl[j] * dl_dx) / p.derivative();
        gy(i, j) = lambda;
        mixture_backward(p, -lambda, -gl[j], g.data());
        local.col(i) += Eigen::Map<const Vector>(g.data(), 3 * k_);
      }
    }
#pragma omp critical
    gtheta += local;
  }
  if (accumulate) Eigen::Map<Matrix>(theta_.gradient, 3 * k_, d_) += gtheta;
}

}  // namespace varflow::vi
