#include "varflow/validation/linearization_checks.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <sstream>

#include "varflow/core/error.h"
#include "varflow/model/model.h"
#include "varflow/obs/observation_operator.h"

namespace varflow {

namespace {
bool all_finite(const Vector& v) { return v.allFinite(); }
}  // namespace

std::string DotProductResult::report() const {
  return format_message("dot-product test: <L dx, ay> = ", lhs, ", <dx, L^T ay> = ", rhs,
                        ", relative error ", relative_error, (passed ? " <= " : " > "), tolerance,
                        passed ? " (pass)" : " (FAIL)");
}

std::string TaylorResult::report() const {
  std::ostringstream os;
  os << "Taylor test: " << (exactly_linear ? "exactly linear, " : "") << linear_decades
     << " linear decades, min ratio " << min_ratio << (passed ? " (pass)" : " (FAIL)") << "\n";
  os << "  eps        r(eps)\n";
  for (std::size_t i = 0; i < epsilons.size(); ++i) os << "  " << epsilons[i] << "  " << ratios[i] << "\n";
  return os.str();
}

std::string LinearityResult::report() const {
  return format_message("linearity test: relative error ", linearity_error, ", ||L 0|| = ", zero_tangent_norm,
                        ", ||L^T 0|| = ", zero_adjoint_norm, ", tolerance ", tolerance,
                        passed ? " (pass)" : " (FAIL)");
}

DotProductResult dot_product_test(const VectorMap& tangent, const VectorMap& adjoint, const Vector& dx,
                                  const Vector& ay, const LinearizationTolerances& tol) {
  DotProductResult r;
  const Vector ldx = tangent(dx);
  const Vector ltay = adjoint(ay);
  check_size("dot_product_test", "L dx", ldx.size(), ay.size());
  check_size("dot_product_test", "L^T ay", ltay.size(), dx.size());
  r.lhs = ldx.dot(ay);
  r.rhs = dx.dot(ltay);
  const double scale = std::max(std::abs(r.lhs), std::abs(r.rhs));
  r.relative_error = scale > 0.0 ? std::abs(r.lhs - r.rhs) / scale : 0.0;
  r.tolerance = tol.dot_product;
  r.passed = std::isfinite(r.relative_error) && r.relative_error <= tol.dot_product;
  return r;
}

TaylorResult taylor_test(const VectorMap& nonlinear, const VectorMap& tangent, const Vector& x, const Vector& dx,
                         const LinearizationTolerances& tol) {
  TaylorResult r;
  const Vector nx = nonlinear(x);
  const Vector ldx = tangent(dx);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  // e = 10^1, 10^0.5, ..., 10^-13: half-decade steps resolve the width of the linear regime.
  constexpr double kStep = 0.5;  // log10 of the ratio between consecutive e
  for (int i = 0; i <= 28; ++i) {
    const double e = std::pow(10.0, 1.0 - kStep * i);
    const Vector nxe = nonlinear(x + e * dx);
    double ratio = nan;
    if (all_finite(nxe)) {
      const Vector change = nxe - nx;
      const double denom = change.norm();
      ratio = denom > 0.0 ? (change - e * ldx).norm() / denom : (ldx.norm() == 0.0 ? 0.0 : nan);
    }
    r.epsilons.push_back(e);
    r.ratios.push_back(ratio);
  }
  // For a linear map r(e) is round-off in N(x + e dx) - N(x), which grows like 1/e for small e.
  r.exactly_linear = true;
  for (std::size_t i = 0; i < r.ratios.size(); ++i) {
    const double bound = tol.linear_ratio * std::max(1.0, 1.0 / r.epsilons[i]);
    if (!(std::isfinite(r.ratios[i]) && r.ratios[i] <= bound)) r.exactly_linear = false;
  }
  // The linear regime: the longest run of consecutive e over which r(e) / e stays within a band of
  // width log10(taylor_band_factor) decades, i.e. r shrinks like e with a constant prefactor.
  r.min_ratio = std::numeric_limits<double>::infinity();
  std::vector<double> log_prefactor(r.ratios.size(), nan);
  for (std::size_t i = 0; i < r.ratios.size(); ++i) {
    if (std::isfinite(r.ratios[i]) && r.ratios[i] > 0.0) {
      r.min_ratio = std::min(r.min_ratio, r.ratios[i]);
      log_prefactor[i] = std::log10(r.ratios[i] / r.epsilons[i]);
    }
  }
  const double band = std::log10(tol.taylor_band_factor);
  for (std::size_t i = 0; i < log_prefactor.size(); ++i) {
    if (!std::isfinite(log_prefactor[i])) continue;
    double lo = log_prefactor[i], hi = log_prefactor[i];
    for (std::size_t j = i + 1; j < log_prefactor.size() && std::isfinite(log_prefactor[j]); ++j) {
      lo = std::min(lo, log_prefactor[j]);
      hi = std::max(hi, log_prefactor[j]);
      if (hi - lo > band) break;
      r.linear_decades = std::max(r.linear_decades, kStep * static_cast<double>(j - i));
    }
  }
  r.passed = r.exactly_linear || (r.linear_decades >= tol.taylor_decades && r.min_ratio < tol.taylor_min_ratio);
  return r;
}

LinearityResult linearity_test(const VectorMap& tangent, const VectorMap& adjoint, const Vector& dx1,
                               const Vector& dx2, Index output_size, const LinearizationTolerances& tol) {
  LinearityResult r;
  const double a = 0.7, b = -1.3;
  const Vector l1 = tangent(dx1), l2 = tangent(dx2);
  const Vector l12 = tangent(a * dx1 + b * dx2);
  const double scale = std::abs(a) * l1.norm() + std::abs(b) * l2.norm();
  r.linearity_error = scale > 0.0 ? (l12 - a * l1 - b * l2).norm() / scale : l12.norm();
  r.zero_tangent_norm = tangent(Vector::Zero(dx1.size())).norm();
  r.zero_adjoint_norm = adjoint(Vector::Zero(output_size)).norm();
  r.tolerance = tol.linearity;
  r.passed = r.linearity_error <= tol.linearity && r.zero_tangent_norm == 0.0 && r.zero_adjoint_norm == 0.0;
  return r;
}

LinearizedMap linearize(const Model& model, const Vector& x, Index steps) {
  check_at_least("linearize", "steps", steps, 1);
  // The trajectory from x, kept for the TL/AD sweeps.
  auto states = std::make_shared<std::vector<Vector>>();
  states->push_back(x);
  Vector s = x;
  for (Index k = 0; k < steps; ++k) {
    model.step(s);
    states->push_back(s);
  }
  LinearizedMap map;
  map.input_size = map.output_size = model.state_size();
  map.nonlinear = [&model, steps](const Vector& x0) {
    Vector y = x0;
    for (Index k = 0; k < steps && y.allFinite(); ++k) model.step(y);
    return y;
  };
  map.tangent = [&model, states, steps](const Vector& dx0) {
    Vector dx = dx0;
    for (Index k = 0; k < steps; ++k) model.step_tangent((*states)[static_cast<std::size_t>(k)], dx);
    return dx;
  };
  map.adjoint = [&model, states, steps](const Vector& ay) {
    Vector ax = ay;
    for (Index k = steps - 1; k >= 0; --k) model.step_adjoint((*states)[static_cast<std::size_t>(k)], ax);
    return ax;
  };
  return map;
}

LinearizedMap linearize(const ObservationOperator& op, const Vector& x) {
  LinearizedMap map;
  map.input_size = op.state_size();
  map.output_size = op.obs_size();
  map.nonlinear = [&op](const Vector& xx) {
    Vector y;
    op.apply(xx, y);
    return y;
  };
  map.tangent = [&op, x](const Vector& dx) {
    Vector dy;
    op.apply_tangent(x, dx, dy);
    return dy;
  };
  map.adjoint = [&op, x](const Vector& ay) {
    Vector ax;
    op.apply_adjoint(x, ay, ax);
    return ax;
  };
  return map;
}

LinearizationReport check_linearization(const LinearizedMap& map, const Vector& x, Rng& rng,
                                        const LinearizationTolerances& tol) {
  LinearizationReport report;
  const Vector dx = rng.normal_vector(map.input_size);
  const Vector ay = rng.normal_vector(map.output_size);
  report.dot_product = dot_product_test(map.tangent, map.adjoint, dx, ay, tol);
  // Taylor direction with the norm of x (or unit norm at x = 0), so e is a relative perturbation size.
  const double xnorm = x.norm();
  const Vector dir = dx * ((xnorm > 0.0 ? xnorm : 1.0) / dx.norm());
  report.taylor = taylor_test(map.nonlinear, map.tangent, x, dir, tol);
  report.linearity = linearity_test(map.tangent, map.adjoint, dx, rng.normal_vector(map.input_size),
                                    map.output_size, tol);
  return report;
}

}  // namespace varflow
