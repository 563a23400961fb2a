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

Vector anchored_adjoint_probe(const Vector& ldx, const Vector& ay) {
  const double ldx2 = ldx.squaredNorm();
  if (!(ldx2 > 0.0) || !std::isfinite(ldx2)) return ay;
  Vector w = ay - (ldx.dot(ay) / ldx2) * ldx;  // the part of ay orthogonal to L dx
  const double wn = w.norm();
  if (wn > 0.0) w *= std::sqrt(ldx2) / wn;
  return Vector(ldx + w);
}

DotProductResult dot_product_test(const VectorMap& tangent, const VectorMap& adjoint, const Vector& dx,
                                  const Vector& ay, const LinearizationTolerances& tol) {
  DotProductResult r;
  const Vector ldx = tangent(dx);
  check_size("dot_product_test", "L dx", ldx.size(), ay.size());
  const Vector anchored = anchored_adjoint_probe(ldx, ay);
  const Vector ltay = adjoint(anchored);
  check_size("dot_product_test", "L^T ay", ltay.size(), dx.size());
  r.lhs = ldx.dot(anchored);
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

// ---- second-order adjoints ---------------------------------------------------------------------------

std::string SymmetryResult::report() const {
  return format_message("symmetry test: <S dx1, dx2> = ", lhs, ", <dx1, S dx2> = ", rhs, ", relative error ",
                        relative_error, (passed ? " <= " : " > "), tolerance, passed ? " (pass)" : " (FAIL)");
}

SymmetryResult symmetry_test(const VectorMap& second_order, const Vector& dx1, const Vector& dx2,
                             const LinearizationTolerances& tol) {
  SymmetryResult r;
  const Vector s1 = second_order(dx1), s2 = second_order(dx2);
  check_size("symmetry_test", "S dx1", s1.size(), dx2.size());
  check_size("symmetry_test", "S dx2", s2.size(), dx1.size());
  r.lhs = s1.dot(dx2);
  r.rhs = dx1.dot(s2);
  // Relative to the size of the terms summed (a zero S, e.g. of a linear map, passes exactly).
  const double scale = std::max(s1.norm() * dx2.norm(), s2.norm() * dx1.norm());
  r.relative_error = scale > 0.0 ? std::abs(r.lhs - r.rhs) / scale : 0.0;
  r.tolerance = tol.second_order_symmetry;
  r.passed = std::isfinite(r.relative_error) && r.relative_error <= tol.second_order_symmetry;
  return r;
}

namespace {

// The model trajectory from x over `steps` steps; false when it stops being finite.
bool trajectory(const Model& model, const Vector& x, Index steps, std::vector<Vector>& states) {
  states.assign(1, x);
  Vector s = x;
  for (Index k = 0; k < steps; ++k) {
    model.step(s);
    if (!s.allFinite()) return false;
    states.push_back(s);
  }
  return true;
}

// lambda_k, k = 0..steps: the adjoint of a at the last state along the trajectory.
std::vector<Vector> adjoint_trajectory(const Model& model, const std::vector<Vector>& states, const Vector& a) {
  const std::size_t steps = states.size() - 1;
  std::vector<Vector> lambda(steps + 1);
  lambda[steps] = a;
  for (std::size_t k = steps; k-- > 0;) {
    lambda[k] = lambda[k + 1];
    model.step_adjoint(states[k], lambda[k]);
  }
  return lambda;
}

}  // namespace

SecondOrderMap linearize_second_order(const Model& model, const Vector& x, const Vector& a, Index steps) {
  check_at_least("linearize_second_order", "steps", steps, 1);
  check_size("linearize_second_order", "a", a.size(), model.state_size());
  auto states = std::make_shared<std::vector<Vector>>();
  if (!trajectory(model, x, steps, *states)) {
    throw InvalidArgument("linearize_second_order: the trajectory from x is not finite");
  }
  auto lambda = std::make_shared<std::vector<Vector>>(adjoint_trajectory(model, *states, a));
  SecondOrderMap map;
  map.input_size = model.state_size();
  map.adjoint_at = [&model, a, steps](const Vector& x0) {
    std::vector<Vector> st;
    if (!x0.allFinite() || !trajectory(model, x0, steps, st)) {
      return Vector(Vector::Constant(x0.size(), std::numeric_limits<double>::quiet_NaN()));
    }
    return Vector(adjoint_trajectory(model, st, a).front());
  };
  // mu_k = M'(x_k)^T mu_{k+1} + S_M(x_k, dx_k, lambda_{k+1}), mu_steps = 0; returns mu_0.
  map.second_order = [&model, states, lambda, steps](const Vector& dx0) {
    std::vector<Vector> dx(static_cast<std::size_t>(steps) + 1);
    dx[0] = dx0;
    for (std::size_t k = 0; k < static_cast<std::size_t>(steps); ++k) {
      dx[k + 1] = dx[k];
      model.step_tangent((*states)[k], dx[k + 1]);
    }
    Vector mu = Vector::Zero(dx0.size()), s;
    for (std::size_t k = static_cast<std::size_t>(steps); k-- > 0;) {
      model.step_second_order_adjoint((*states)[k], dx[k], (*lambda)[k + 1], s);
      model.step_adjoint((*states)[k], mu);
      mu += s;
    }
    return mu;
  };
  return map;
}

SecondOrderMap linearize_second_order(const ObservationOperator& op, const Vector& x, const Vector& ay) {
  check_size("linearize_second_order", "ay", ay.size(), op.obs_size());
  SecondOrderMap map;
  map.input_size = op.state_size();
  map.adjoint_at = [&op, ay](const Vector& xx) {
    if (!xx.allFinite()) return Vector(Vector::Constant(xx.size(), std::numeric_limits<double>::quiet_NaN()));
    Vector ax;
    op.apply_adjoint(xx, ay, ax);
    return ax;
  };
  map.second_order = [&op, x, ay](const Vector& dx) {
    Vector out;
    op.apply_second_order_adjoint(x, dx, ay, out);
    return out;
  };
  return map;
}

SecondOrderReport check_second_order(const SecondOrderMap& map, const Vector& x, Rng& rng,
                                     const LinearizationTolerances& tol) {
  SecondOrderReport report;
  const Vector dx = rng.normal_vector(map.input_size);
  const double xnorm = x.norm();
  const Vector dir = dx * ((xnorm > 0.0 ? xnorm : 1.0) / dx.norm());
  report.taylor = taylor_test(map.adjoint_at, map.second_order, x, dir, tol);
  report.symmetry = symmetry_test(map.second_order, dx, rng.normal_vector(map.input_size), tol);
  return report;
}

}  // namespace varflow
