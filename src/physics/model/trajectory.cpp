#include "varflow/model/trajectory.h"

#include <cassert>
#include <cmath>

#include "varflow/core/error.h"

namespace varflow {

Trajectory Trajectory::integrate(const Model& model, const Vector& x0, Index steps) {
  check_at_least("Trajectory::integrate", "steps", steps, 0);
  check_size("Trajectory::integrate", "x0", x0.size(), model.state_size());
  check_finite("Trajectory::integrate", "x0", x0);
  std::vector<Vector> states;
  states.reserve(static_cast<std::size_t>(steps) + 1);
  states.push_back(x0);
  Vector x = x0;
  for (Index k = 0; k < steps; ++k) {
    model.step(x);
    for (Index i = 0; i < x.size(); ++i) {
      if (!std::isfinite(x[i])) {
        throw NumericalError(format_message("Trajectory::integrate: ", model.name(), " produced x[", i,
                                            "] = ", x[i], " at step ", k + 1, " of ", steps));
      }
    }
    states.push_back(x);
  }
  return Trajectory(model, std::move(states));
}

const Vector& Trajectory::state(Index k) const {
  assert(k >= 0 && k <= steps());
  return states_[static_cast<std::size_t>(k)];
}

Vector Trajectory::tangent(const Vector& dx0, Index k) const {
  if (k < 0 || k > steps()) {
    throw InvalidArgument(format_message("Trajectory::tangent: step k = ", k, " outside [0, ", steps(), "]"));
  }
  Vector dx = dx0;
  for (Index j = 0; j < k; ++j) model_->step_tangent(state(j), dx);
  return dx;
}

Vector Trajectory::adjoint(const Vector& ax_k, Index k) const {
  if (k < 0 || k > steps()) {
    throw InvalidArgument(format_message("Trajectory::adjoint: step k = ", k, " outside [0, ", steps(), "]"));
  }
  Vector ax = ax_k;
  for (Index j = k - 1; j >= 0; --j) model_->step_adjoint(state(j), ax);
  return ax;
}

}  // namespace varflow
