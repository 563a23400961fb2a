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
  const Index n = physics.state_size();
  if (emulator.state_size() != n || held_out.rows() != n || held_out.cols() < 1) {
    throw InvalidArgument(format_message("emulator_gate: emulator state size ", emulator.state_size(),
                                         ", physics ", n, ", held-out states ", held_out.rows(), " x ",
                                         held_out.cols(), " (sizes must agree, at least one state)"));
  }
  EmulatorGateResult r;
  r.forward_tolerance = options.forward_tolerance;
  r.operator_norm_tolerance = options.operator_norm_tolerance;

  // (1) forward agreement relative to the physics increment.
  const Index states = held_out.cols();
  r.forward_errors.resize(static_cast<std::size_t>(states));
  double sum = 0.0, err2 = 0.0, inc2 = 0.0;
  r.max_forward_error = 0.0;
  for (Index j = 0; j < states; ++j) {
    Vector xm = held_out.col(j), xe = held_out.col(j);
    physics.step(xm);
    double e = std::numeric_limits<double>::infinity();
    try {
      emulator.step(xe);
      const double inc = (xm - held_out.col(j)).norm();
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
    const Vector x = held_out.col(j);
    const VectorMap diff = [&](const Vector& v) {
      Vector a = v, b = v;
      emulator.step_tangent(x, a);
      physics.step_tangent(x, b);
      return Vector(a - b);
    };
    const VectorMap diff_t = [&](const Vector& w) {
      Vector a = w, b = w;
      emulator.step_adjoint(x, a);
      physics.step_adjoint(x, b);
      return Vector(a - b);
    };
    const VectorMap phys = [&](const Vector& v) {
      Vector b = v;
      physics.step_tangent(x, b);
      return b;
    };
    const VectorMap phys_t = [&](const Vector& w) {
      Vector b = w;
      physics.step_adjoint(x, b);
      return b;
    };
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

}  // namespace varflow
