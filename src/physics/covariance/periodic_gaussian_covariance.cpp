#include <fftw3.h>

#include <cmath>
#include <complex>
#include <mutex>
#include <vector>

#include "varflow/core/error.h"
#include "varflow/covariance/covariances.h"

namespace varflow {

namespace {
// FFTW's planner is not thread-safe; plan creation and destruction go through this mutex.
// Execution with the new-array interface on distinct buffers is thread-safe.
std::mutex& fftw_planner_mutex() {
  static std::mutex m;
  return m;
}
}  // namespace

struct PeriodicGaussianCovariance::FftPlans {
  fftw_plan forward = nullptr;   // real n -> complex n/2 + 1
  fftw_plan backward = nullptr;  // complex n/2 + 1 -> real n (unnormalised)
  explicit FftPlans(Index n) {
    std::vector<double> real(static_cast<std::size_t>(n));
    std::vector<fftw_complex> spectral(static_cast<std::size_t>(n / 2 + 1));
    const std::lock_guard<std::mutex> lock(fftw_planner_mutex());
    const unsigned flags = FFTW_ESTIMATE | FFTW_UNALIGNED;
    forward = fftw_plan_dft_r2c_1d(static_cast<int>(n), real.data(), spectral.data(), flags);
    backward = fftw_plan_dft_c2r_1d(static_cast<int>(n), spectral.data(), real.data(), flags);
  }
  ~FftPlans() {
    const std::lock_guard<std::mutex> lock(fftw_planner_mutex());
    fftw_destroy_plan(forward);
    fftw_destroy_plan(backward);
  }
  FftPlans(const FftPlans&) = delete;
  FftPlans& operator=(const FftPlans&) = delete;
};

PeriodicGaussianCovariance::PeriodicGaussianCovariance(Index n, double variance, double length_scale, double ds,
                                                       double nugget)
    : n_(n), variance_(variance), length_scale_(length_scale), ds_(ds), nugget_(nugget) {
  const char* where = "PeriodicGaussianCovariance";
  check_at_least(where, "n", n, 1);
  check_positive(where, "variance", variance);
  check_positive(where, "length_scale", length_scale);
  check_positive(where, "ds", ds);
  if (!(nugget >= 0.0 && nugget < 1.0)) {
    throw InvalidArgument(format_message(where, ": nugget = ", nugget, " must be in [0, 1)"));
  }
  plans_ = std::make_unique<FftPlans>(n);

  // First column of C: the wrapped Gaussian, normalised to variance at lag 0.
  const double period = static_cast<double>(n) * ds;
  const int images = static_cast<int>(std::ceil(10.0 * length_scale / period)) + 1;
  auto wrapped = [&](double d) {
    double g = 0.0;
    for (int m = -images; m <= images; ++m) {
      const double s = (d + m * period) / length_scale;
      g += std::exp(-0.5 * s * s);
    }
    return g;
  };
  const double g0 = wrapped(0.0);
  std::vector<double> column(static_cast<std::size_t>(n));
  for (Index j = 0; j < n; ++j) {
    column[static_cast<std::size_t>(j)] =
        variance * ((1.0 - nugget) * wrapped(static_cast<double>(j) * ds) / g0 + (j == 0 ? nugget : 0.0));
  }
  // Eigenvalues of a symmetric circulant: the (real) DFT of its first column.
  std::vector<fftw_complex> spectrum(static_cast<std::size_t>(n / 2 + 1));
  fftw_execute_dft_r2c(plans_->forward, column.data(), spectrum.data());
  eigenvalues_.resize(n);
  for (Index k = 0; k < n; ++k) {
    const Index kk = k <= n / 2 ? k : n - k;  // lambda_k = lambda_{n-k}
    eigenvalues_[k] = spectrum[static_cast<std::size_t>(kk)][0];
  }
  const double lmin = eigenvalues_.minCoeff(), lmax = eigenvalues_.maxCoeff();
  if (!(lmin > 0.0) || lmax / lmin > max_condition_number()) {
    throw InvalidArgument(format_message(
        where, ": length_scale = ", length_scale, " on a grid of n = ", n, " points with spacing ds = ", ds,
        " gives a numerically singular matrix (eigenvalues from ", lmin, " to ", lmax, ", condition number ",
        lmax / lmin, " > ", max_condition_number(), "); shorten the length scale or set nugget > 0"));
  }
  sqrt_eigenvalues_ = eigenvalues_.cwiseSqrt();
  inverse_eigenvalues_ = eigenvalues_.cwiseInverse();
  inverse_sqrt_eigenvalues_ = sqrt_eigenvalues_.cwiseInverse();
}

PeriodicGaussianCovariance::~PeriodicGaussianCovariance() = default;

std::string PeriodicGaussianCovariance::name() const {
  return format_message("periodic_gaussian(n=", n_, ", variance=", variance_, ", length_scale=", length_scale_,
                        ", ds=", ds_, ", nugget=", nugget_, ")");
}

double PeriodicGaussianCovariance::log_determinant() const { return eigenvalues_.array().log().sum(); }

double PeriodicGaussianCovariance::condition_number() const {
  return eigenvalues_.maxCoeff() / eigenvalues_.minCoeff();
}

Vector PeriodicGaussianCovariance::circulant_apply(const Vector& x, const Vector& spectrum) const {
  std::vector<double> real(x.data(), x.data() + n_);
  std::vector<fftw_complex> z(static_cast<std::size_t>(n_ / 2 + 1));
  fftw_execute_dft_r2c(plans_->forward, real.data(), z.data());
  const double scale = 1.0 / static_cast<double>(n_);
  for (Index k = 0; k <= n_ / 2; ++k) {
    const double s = spectrum[k] * scale;
    z[static_cast<std::size_t>(k)][0] *= s;
    z[static_cast<std::size_t>(k)][1] *= s;
  }
  Vector y(n_);
  fftw_execute_dft_c2r(plans_->backward, z.data(), y.data());
  return y;
}

Vector PeriodicGaussianCovariance::diagonal() const { return Vector::Constant(n_, eigenvalues_.mean()); }

Vector PeriodicGaussianCovariance::do_multiply(const Vector& x) const { return circulant_apply(x, eigenvalues_); }
Vector PeriodicGaussianCovariance::do_inverse_multiply(const Vector& x) const {
  return circulant_apply(x, inverse_eigenvalues_);
}
Vector PeriodicGaussianCovariance::do_sqrt_multiply(const Vector& v) const {
  return circulant_apply(v, sqrt_eigenvalues_);
}
Vector PeriodicGaussianCovariance::do_sqrt_transpose_multiply(const Vector& x) const {
  return circulant_apply(x, sqrt_eigenvalues_);  // the symmetric square root is its own transpose
}
Vector PeriodicGaussianCovariance::do_sqrt_inverse_multiply(const Vector& x) const {
  return circulant_apply(x, inverse_sqrt_eigenvalues_);
}

}  // namespace varflow
