#pragma once
// The sensitivity of a variational analysis to its observations (the "oracle Jacobian"):
//     J v = P_a sum_s (H'_s M'_{0->k(s)})^T R_s^-1 v_s,
// the derivative d z_a / d y of the MAP z_a with respect to the stacked observations y (layout of
// var/window.h; masked entries take no part), with the Gauss-Newton Hessian for the inverse Hessian
// P_a. It is exact for a linear-Gaussian problem; for a nonlinear one it omits the second-derivative
// terms of the Hessian (which vanish as the departures do). Computed through the adjoint and the
// posterior covariance operator, never by finite differences (Cardinali, Pezzulli & Andersson 2004,
// "Influence-matrix diagnostic of a data assimilation system", QJRMS 130).
#include <memory>

#include "varflow/covariance/covariance.h"
#include "varflow/var/cost.h"

namespace varflow {

class ObservationSensitivity {
 public:
  // `map`: the window linearised at the MAP; `posterior_covariance`: P_a on the control space (size
  // map.control_size(); for strong constraint, the state). Throws InvalidArgument on a size mismatch.
  ObservationSensitivity(Linearization map, std::shared_ptr<const Covariance> posterior_covariance);

  Index observation_size() const { return map_.observation_size(); }
  Index control_size() const { return map_.control_size(); }

  // J v (control space): one AD sweep and one product with P_a.
  Vector apply(const Vector& v) const;
  // J^T w (observation space, 0 at masked entries): one product with P_a and one TL sweep.
  Vector apply_transpose(const Vector& w) const;
  // With the background z_b too, d z_a / d z_b = P_a B_z^-1: J v + J_b v_b (control-space v_b).
  Vector apply(const Vector& v, const Vector& v_background) const;
  // J^T w (returned) and J_b^T w = B_z^-1 P_a w (into `background`).
  Vector apply_transpose(const Vector& w, Vector& background) const;

 private:
  Linearization map_;
  std::shared_ptr<const Covariance> p_;
};

}  // namespace varflow
