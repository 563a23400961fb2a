#include "varflow/var/exact_sensitivity.h"

#include <algorithm>

#include "varflow/core/error.h"
#include "varflow/var/lanczos.h"

namespace varflow {

void ExactSensitivityOptions::validate() const {
  std::string e;
  if (!(relative_tolerance > 0.0 && relative_tolerance < 1.0)) {
    e = format_message("relative_tolerance = ", relative_tolerance, " must be in (0, 1)");
  } else if (max_iterations < 1) {
    e = format_message("max_iterations = ", max_iterations, " must be at least 1");
  }
  if (!e.empty()) throw InvalidArgument(e);
}

ExactObservationSensitivity::ExactObservationSensitivity(Linearization map, ExactSensitivityOptions options)
    : map_(std::move(map)), options_(options) {
  with_prefix("ExactObservationSensitivity: options.", [&] { options_.validate(); });
  map_.require_second_order("ExactObservationSensitivity");
}

ExactSensitivityResult ExactObservationSensitivity::solve(const Vector& r) const {
  const char* where = "ExactObservationSensitivity";
  check_size(format_message(where, "::solve"), "r", r.size(), control_size());
  const Covariance& l = map_.cost_function().prior();
  // H = L^-T (I + L^T (G - S) L) L^-1, so H^-1 r = L (I + L^T (G - S) L)^-1 L^T r.
  const Linearization& lin = map_;
  const LinearOperator a = [&lin](const Vector& dv) { return lin.preconditioned_full_hessian_multiply(dv); };
  LanczosSolveOptions cg;
  cg.max_iterations = options_.max_iterations;
  cg.relative_tolerance = options_.relative_tolerance;
  cg.ritz_pairs = false;
  const LanczosSolveResult s = lanczos_solve(a, l.sqrt_transpose_multiply(r), cg);
  if (s.numerical_failure) {
    throw NumericalError(format_message(where, ": the full Hessian at the analysis is not positive definite or not ",
                                        "finite (", s.message, ", after ", s.iterations,
                                        " CG iterations): the analysis is not a strict local minimum"));
  }
  if (!s.converged) {
    throw NumericalError(format_message(where, ": CG did not converge: ", s.message));
  }
  ExactSensitivityResult out;
  out.value = l.sqrt_multiply(s.x);
  out.cg_iterations = s.iterations;
  out.relative_residual = s.relative_residual;
  return out;
}

ExactSensitivityResult ExactObservationSensitivity::apply_with_info(const Vector& v) const {
  check_size("ExactObservationSensitivity::apply", "v", v.size(), observation_size());
  return solve(map_.adjoint(map_.weight(v)));
}

ExactSensitivityResult ExactObservationSensitivity::apply_transpose_with_info(const Vector& w) const {
  check_size("ExactObservationSensitivity::apply_transpose", "w", w.size(), control_size());
  ExactSensitivityResult out = solve(w);
  out.value = map_.weight(map_.tangent(out.value));
  return out;
}

Vector ExactObservationSensitivity::apply(const Vector& v) const { return apply_with_info(v).value; }

Vector ExactObservationSensitivity::apply(const Vector& v, const Vector& v_background) const {
  check_size("ExactObservationSensitivity::apply", "v", v.size(), observation_size());
  check_size("ExactObservationSensitivity::apply", "v_background", v_background.size(), control_size());
  return solve(map_.adjoint(map_.weight(v)) + map_.cost_function().prior().inverse_multiply(v_background)).value;
}

Vector ExactObservationSensitivity::apply_transpose(const Vector& w, Vector& background) const {
  check_size("ExactObservationSensitivity::apply_transpose", "w", w.size(), control_size());
  const Vector u = solve(w).value;
  background = map_.cost_function().prior().inverse_multiply(u);
  return map_.weight(map_.tangent(u));
}

Vector ExactObservationSensitivity::apply_transpose(const Vector& w) const {
  return apply_transpose_with_info(w).value;
}

}  // namespace varflow
