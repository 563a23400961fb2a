#include "varflow/model/model.h"

#include "varflow/core/error.h"

namespace varflow {

void Model::check_state(const char* where, const Vector& x) const {
  check_size(name() + "::" + where, "x", x.size(), state_size());
  check_finite(name() + "::" + where, "x", x);
}

void Model::step(Vector& x) const {
  check_state("step", x);
  do_step(x);
}

void Model::step_tangent(const Vector& x, Vector& dx) const {
  check_state("step_tangent", x);
  check_size(name() + "::step_tangent", "dx", dx.size(), state_size());
  do_step_tangent(x, dx);
}

void Model::step_adjoint(const Vector& x, Vector& ax) const {
  check_state("step_adjoint", x);
  check_size(name() + "::step_adjoint", "ax", ax.size(), state_size());
  do_step_adjoint(x, ax);
}

}  // namespace varflow
