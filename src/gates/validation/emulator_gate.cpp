// The emulator's promotion gate: forward agreement, Jacobian operator-norm calibration, TL/AD tests.
#include "varflow/validation/emulator_gate.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "varflow/core/error.h"

namespace varflow {

void EmulatorGateOptions::validate() const {
  auto positive = [](const char* name, double v) {
    if (!(v > 0.0) || !std::isfinite(v)) {
      throw InvalidArgument(format_message("EmulatorGateOptions: ", name, " = ", v, " must be positive and finite"));
    }
  };
  positive("forward_tolerance", forward_tolerance);
  positive("operator_norm_tolerance", operator_norm_tolerance);
  positive("power_tolerance", power_tolerance);
  check_at_least("EmulatorGateOptions", "jacobian_states", jacobian_states, 1);
  check_at_least("EmulatorGateOptions", "power_iterations", power_iterations, 1);
  check_at_least("EmulatorGateOptions", "step_multiple", step_multiple, 1);
}

std::string EmulatorGateResult::report() const {
  std::ostringstream os;
  os.precision(4);
  os << "emulator gate: " << (passed() ? "PASS" : "FAIL") << "\n";
  os << "  forward: relative one-step error " << forward_error << " (per state: max " << max_forward_error
     << ", mean " << mean_forward_error << ") over " << forward_errors.size() << " held-out states (tolerance " << forward_tolerance << ") "
     << (forward_passed ? "pass" : "FAIL") << "\n";
  os << "  Jacobian: max ||E' - M'|| / ||M'|| " << max_jacobian_difference << " over " << jacobian_differences.size()
     << " states (tolerance " << operator_norm_tolerance << ")"
     << (power_converged ? "" : ", power iteration not converged (estimate is a lower bound)")
     << " " << (jacobian_passed ? "pass" : "FAIL") << "\n";
  os << "  emulator TL/AD: " << (adjoint_passed ? "pass" : "FAIL") << "\n";
  for (const auto& l : linearizations) {
    if (!l.passed()) os << l.report_text();
  }
  return os.str();
}

EmulatorGateResult emulator_gate(const Model& emulator, const Model& physics, const Matrix& held_out, Rng& rng,
                                 const EmulatorGateOptions& options) {
  options.validate();
  const Index full = physics.state_size(), n = emulator.state_size(), m = options.step_multiple;
  if (n > full || n < 1 || held_out.rows() != full || held_out.cols() < 1) {
    throw InvalidArgument(format_message("emulator_gate: emulator state size ", emulator.state_size(),
                                         ", physics ", full, ", held-out states ", held_out.rows(), " x ",
                                         held_out.cols(), " (the emulator resolves at most the physics' components; "
                                         "held-out states are physics states, at least one)"));
  }
  // The physics over one emulator step, from a full state; the resolved part of the result.
  const auto advance = [&](const Vector& x) {
    Vector y = x;
    for (Index k = 0; k < m; ++k) physics.step(y);
    return Vector(y.head(n));
  };
  EmulatorGateResult r;
  r.forward_tolerance = options.forward_tolerance;
  r.operator_norm_tolerance = options.operator_norm_tolerance;

  // (1) forward agreement relative to the physics increment.
  const Index states = held_out.cols();
  r.forward_errors.resize(static_cast<std::size_t>(states));
  double sum = 0.0, err2 = 0.0, inc2 = 0.0;
  r.max_forward_error = 0.0;
  for (Index j = 0; j < states; ++j) {
    const Vector x0 = held_out.col(j).head(n);
    const Vector xm = advance(held_out.col(j));
    Vector xe = x0;
    double e = std::numeric_limits<double>::infinity();
    try {
      emulator.step(xe);
      const double inc = (xm - x0).norm();
      e = (xe - xm).norm() / (inc > 0.0 ? inc : std::numeric_limits<double>::min());
      err2 += (xe - xm).squaredNorm();
      inc2 += inc * inc;
    } catch (const InvalidArgument&) {
      // A non-finite emulator output is a failed state (e stays infinite), not a crash.
    }
    if (!std::isfinite(e)) {
      e = std::numeric_limits<double>::infinity();
      err2 = e;
    }
    r.forward_errors[static_cast<std::size_t>(j)] = e;
    r.max_forward_error = std::max(r.max_forward_error, e);
    sum += e;
  }
  r.mean_forward_error = sum / static_cast<double>(states);
  r.forward_error = inc2 > 0.0 ? std::sqrt(err2 / inc2) : std::numeric_limits<double>::infinity();
  if (!std::isfinite(r.forward_error)) r.forward_error = std::numeric_limits<double>::infinity();
  r.forward_passed = r.forward_error < options.forward_tolerance;

  // (2) and (3) at the first jacobian_states states.
  const Index jstates = std::min(states, options.jacobian_states);
  r.max_jacobian_difference = 0.0;
  r.adjoint_passed = true;
  for (Index j = 0; j < jstates; ++j) {
    const Vector x = held_out.col(j).head(n);
    // The physics states of the m steps, for P M'^m P^T and its transpose.
    std::vector<Vector> path{held_out.col(j)};
    for (Index k = 1; k < m; ++k) {
      path.push_back(path.back());
      physics.step(path.back());
    }
    const auto physics_tangent = [&](const Vector& v) {
      Vector d = Vector::Zero(full);
      d.head(n) = v;
      for (Index k = 0; k < m; ++k) physics.step_tangent(path[static_cast<std::size_t>(k)], d);
      return Vector(d.head(n));
    };
    const auto physics_adjoint = [&](const Vector& w) {
      Vector a = Vector::Zero(full);
      a.head(n) = w;
      for (Index k = m - 1; k >= 0; --k) physics.step_adjoint(path[static_cast<std::size_t>(k)], a);
      return Vector(a.head(n));
    };
    const VectorMap diff = [&](const Vector& v) {
      Vector a = v;
      emulator.step_tangent(x, a);
      return Vector(a - physics_tangent(v));
    };
    const VectorMap diff_t = [&](const Vector& w) {
      Vector a = w;
      emulator.step_adjoint(x, a);
      return Vector(a - physics_adjoint(w));
    };
    const VectorMap phys = physics_tangent;
    const VectorMap phys_t = physics_adjoint;
    double rho = std::numeric_limits<double>::infinity();
    try {
      const OperatorNormEstimate d =
          estimate_operator_norm(diff, diff_t, n, n, rng, options.power_iterations, options.power_tolerance);
      const OperatorNormEstimate p =
          estimate_operator_norm(phys, phys_t, n, n, rng, options.power_iterations, options.power_tolerance);
      r.power_converged = r.power_converged && d.converged && p.converged;
      rho = d.norm / p.norm;
    } catch (const Error&) {
      r.power_converged = false;
    }
    if (!std::isfinite(rho)) rho = std::numeric_limits<double>::infinity();
    r.jacobian_differences.push_back(rho);
    r.max_jacobian_difference = std::max(r.max_jacobian_difference, rho);

    LinearizationCase c{format_message("emulator_step_", j), linearize(emulator, x, 1), x};
    try {
      r.linearizations.push_back(check_linearization_case(c, rng, options.tolerances));
    } catch (const Error& e) {
      LinearizationCaseResult failed;
      failed.name = c.name + " (error: " + e.what() + ")";
      failed.report.dot_product.passed = false;
      r.linearizations.push_back(failed);
    }
    r.adjoint_passed = r.adjoint_passed && r.linearizations.back().passed();
  }
  r.jacobian_passed = r.max_jacobian_difference < options.operator_norm_tolerance;
  return r;
}

bool ForecastSkill::model_better(double factor) const {
  if (model_rmse.empty()) return false;
  for (std::size_t l = 0; l < model_rmse.size(); ++l) {
    if (!(model_rmse[l] * factor <= baseline_rmse[l])) return false;
  }
  return true;
}

std::string ForecastSkill::table() const {
  std::ostringstream os;
  os.precision(3);
  os << "  lead time | RMSE emulator | RMSE truncated (no closure)   (climatology " << climatology_rmse << ")\n";
  for (std::size_t l = 0; l < model_rmse.size(); ++l) {
    os << "  " << lead_time[l] << " | " << model_rmse[l] << " | " << baseline_rmse[l] << "\n";
  }
  return os.str();
}

ForecastSkill forecast_skill(const Model& model, const Model& baseline, Index baseline_steps, const Model& physics,
                             Index step_multiple, double physics_dt, const Matrix& held_out, Index steps) {
  const Index n = model.state_size(), full = physics.state_size();
  if (baseline.state_size() != n || n > full || held_out.rows() != full || held_out.cols() < 1) {
    throw InvalidArgument(format_message("forecast_skill: model size ", n, ", baseline ", baseline.state_size(),
                                         ", physics ", full, ", held-out states ", held_out.rows(), " x ",
                                         held_out.cols()));
  }
  check_at_least("forecast_skill", "steps", steps, 1);
  check_at_least("forecast_skill", "step_multiple", step_multiple, 1);
  check_at_least("forecast_skill", "baseline_steps", baseline_steps, 1);
  ForecastSkill s;
  const auto count = static_cast<std::size_t>(steps);
  std::vector<double> e_model(count, 0.0), e_base(count, 0.0);
  const double inf = std::numeric_limits<double>::infinity();
  const Matrix slow = held_out.topRows(n);
  const double mean = slow.mean();
  s.climatology_rmse = std::sqrt(2.0 * (slow.array() - mean).square().mean());
  for (Index j = 0; j < held_out.cols(); ++j) {
    Vector x = held_out.col(j);
    Vector xm = x.head(n), xb = x.head(n);
    bool model_ok = true, base_ok = true;
    for (std::size_t l = 0; l < count; ++l) {
      for (Index k = 0; k < step_multiple; ++k) physics.step(x);
      try {
        if (model_ok) model.step(xm);
      } catch (const Error&) {
        model_ok = false;
      }
      try {
        if (base_ok) {
          for (Index k = 0; k < baseline_steps; ++k) baseline.step(xb);
        }
      } catch (const Error&) {
        base_ok = false;
      }
      e_model[l] += model_ok ? (xm - x.head(n)).squaredNorm() : inf;
      e_base[l] += base_ok ? (xb - x.head(n)).squaredNorm() : inf;
    }
  }
  const double norm = static_cast<double>(n * held_out.cols());
  for (std::size_t l = 0; l < count; ++l) {
    s.lead_time.push_back(static_cast<double>((static_cast<Index>(l) + 1) * step_multiple) *
                          (physics_dt > 0.0 ? physics_dt : 1.0 / static_cast<double>(step_multiple)));
    s.model_rmse.push_back(std::sqrt(e_model[l] / norm));
    s.baseline_rmse.push_back(std::sqrt(e_base[l] / norm));
  }
  return s;
}

}  // namespace varflow
