#pragma once
// A model trajectory over an assimilation window, kept for the tangent-linear and adjoint sweeps.
//
// integrate() runs n steps from x0 and stores all n + 1 states x_0 .. x_n (memory: (n + 1) * state_size
// doubles). tangent() and adjoint() then propagate perturbations along the stored states:
//   tangent(dx0, k)  = M'(x_{k-1}) ... M'(x_0) dx0            (the TL propagator from step 0 to k)
//   adjoint(axk, k)  = M'(x_0)^T ... M'(x_{k-1})^T axk         (its adjoint)
// The model must outlive the trajectory (it is held by reference, not owned).
#include <vector>

#include "varflow/core/types.h"
#include "varflow/model/model.h"

namespace varflow {

class Trajectory {
 public:
  // Integrates `steps` steps of `model` from x0. Throws InvalidArgument on bad x0 or steps < 0 and
  // NumericalError, naming the step and component, if the integration produces a non-finite value.
  static Trajectory integrate(const Model& model, const Vector& x0, Index steps);

  const Model& model() const { return *model_; }
  Index steps() const { return static_cast<Index>(states_.size()) - 1; }
  // The state after k steps, 0 <= k <= steps().
  const Vector& state(Index k) const;
  const Vector& final_state() const { return states_.back(); }

  // TL propagator from step 0 to step k applied to dx0.
  Vector tangent(const Vector& dx0, Index k) const;
  // Adjoint of tangent(., k) applied to an adjoint vector at step k; returns the adjoint at step 0.
  Vector adjoint(const Vector& ax_k, Index k) const;

 private:
  Trajectory(const Model& model, std::vector<Vector> states) : model_(&model), states_(std::move(states)) {}
  const Model* model_;
  std::vector<Vector> states_;
};

}  // namespace varflow
