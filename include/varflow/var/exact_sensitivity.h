#pragma once
// The exact sensitivity of a variational analysis to its observations: the derivative d z_a / d y of
// the MAP z_a by the implicit-function theorem with the FULL Hessian of the 4D-Var cost at the MAP
// (Le Dimet, Navon & Daescu 2002, "Second-order information in data assimilation", MWR 130;
// Daescu 2008, "On the sensitivity equations of four-dimensional variational (4D-Var) data
// assimilation", MWR 136). At the MAP grad_z J(z_a, y) = 0; differentiating in y,
//     J v   = H^-1 sum_s (H'_s M'_{0->k(s)})^T R_s^-1 v_s,
//     J^T w = R^-1 (H'M') H^-1 w,
//     H     = B_z^-1 + G - S   (Linearization::full_hessian_multiply),
// with G the Gauss-Newton term and S the second-derivative terms of the model and the operators
// weighted by the departures R^-1 (y - H(x)). ObservationSensitivity (sensitivity.h) is the same with
// S = 0; it is exact only for a linear problem.
//
// H u = r is solved by Lanczos-CG (var/lanczos.h, full reorthogonalisation) in the control-variable
// transform u = L_z u', on the preconditioned Hessian I + L_z^T (G - S) L_z: each iteration is one TL
// and one second-order adjoint sweep. The full Hessian is positive definite at a strict local minimum
// but may be indefinite elsewhere (a poorly converged MAP, a saddle): negative curvature on the Krylov
// space (a Lanczos tridiagonal that is not positive definite) is a NumericalError, as is a residual
// above the tolerance; a result is never returned silently wrong.
//
// Thread-safe (const calls on distinct vectors); shares the Linearization's window data.
#include <string>

#include "varflow/var/cost.h"

namespace varflow {

struct ExactSensitivityOptions {
  // CG stops when ||r - A u|| <= relative_tolerance ||r|| (in the preconditioned control).
  double relative_tolerance = 1e-10;
  // Krylov dimension limit (capped at the control size, where the full-reorthogonalised process
  // reaches an invariant subspace).
  int max_iterations = 500;
  void validate() const;  // InvalidArgument "<field> = <value> <rule>"
};

// One application of J or J^T with its solver record.
struct ExactSensitivityResult {
  Vector value;
  int cg_iterations = 0;           // Lanczos-CG iterations = full Hessian products
  double relative_residual = 0.0;  // of the preconditioned system
};

class ExactObservationSensitivity {
 public:
  // `map`: the window linearised at the MAP (VarResult::map). Throws InvalidArgument for invalid
  // options or when the model or an observation operator has no second-order adjoint (naming it).
  explicit ExactObservationSensitivity(Linearization map, ExactSensitivityOptions options = {});

  Index observation_size() const { return map_.observation_size(); }
  Index control_size() const { return map_.control_size(); }
  const ExactSensitivityOptions& options() const { return options_; }
  const Linearization& map() const { return map_; }

  // J v (v in the stacked observation layout of var/window.h, masked entries ignored; control-space
  // result): one AD sweep, then CG. Throws NumericalError on negative curvature or no convergence.
  Vector apply(const Vector& v) const;
  // J^T w (w in the control space; observation-space result, 0 at masked entries): CG, then one TL
  // sweep.
  Vector apply_transpose(const Vector& w) const;
  ExactSensitivityResult apply_with_info(const Vector& v) const;
  ExactSensitivityResult apply_transpose_with_info(const Vector& w) const;
  // The derivative in the background z_b as well, d z_a / d z_b = H^-1 B_z^-1 (B_z^-1 (z - z_b) is the
  // background term of the gradient): J v + J_b v_b for observation-space v and control-space v_b
  // (one AD sweep, one CG solve).
  Vector apply(const Vector& v, const Vector& v_background) const;
  // J^T w (returned) and J_b^T w = B_z^-1 H^-1 w (into `background`) from one CG solve.
  Vector apply_transpose(const Vector& w, Vector& background) const;
  // u = H^-1 r for a control-space r.
  ExactSensitivityResult solve(const Vector& r) const;

 private:
  Linearization map_;
  ExactSensitivityOptions options_;
};

}  // namespace varflow
