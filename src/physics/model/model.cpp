#include "varflow/model/model.h"

#include "varflow/core/error.h"

namespace varflow {

// The checks build the model's name only on failure: name() formats numbers, which would cost
// more than a whole step of a small model.
void Model::check_state(const char* where, const Vector& x) const {
  if (x.size() != state_size()) check_size(name() + "::" + where, "x", x.size(), state_size());
  if (!x.allFinite()) check_finite(name() + "::" + where, "x", x);
}

void Model::step(Vector& x) const {
  check_state("step", x);
  do_step(x);
}

void Model::step_tangent(const Vector& x, Vector& dx) const {
  check_state("step_tangent", x);
  if (dx.size() != state_size()) check_size(name() + "::step_tangent", "dx", dx.size(), state_size());
  do_step_tangent(x, dx);
}

void Model::step_adjoint(const Vector& x, Vector& ax) const {
  check_state("step_adjoint", x);
  if (ax.size() != state_size()) check_size(name() + "::step_adjoint", "ax", ax.size(), state_size());
  do_step_adjoint(x, ax);
}

void Model::step_batch(Matrix& states) const {
  if (states.rows() != state_size()) check_size(name() + "::step_batch", "states.rows()", states.rows(), state_size());
  // The check runs on the threads the step will use (a serial pass would cap their speed-up).
  const Index cols = states.cols();
  bool finite = true;
#pragma omp parallel for schedule(static) reduction(&& : finite) if (cols > 1 && cols * states.rows() >= kParallelBatchMin)
  for (Index c = 0; c < cols; ++c) finite = finite && states.col(c).allFinite();
  if (!finite) throw InvalidArgument(format_message(name(), "::step_batch: states has a non-finite entry"));
  do_step_batch(states);
}

void Model::do_step_batch(Matrix& states) const {
  Vector x(states.rows());
  for (Index c = 0; c < states.cols(); ++c) {
    x = states.col(c);
    do_step(x);
    states.col(c) = x;
  }
}

namespace {
[[noreturn]] void no_second_order(const std::string& name) {
  throw InvalidArgument(name + "::step_second_order_adjoint: model '" + name +
                        "' has no second-order adjoint (has_second_order() = false)");
}
}  // namespace

void Model::step_second_order_adjoint(const Vector& x, const Vector& dx, const Vector& ax_next, Vector& out) const {
  if (!has_second_order()) no_second_order(name());
  check_state("step_second_order_adjoint", x);
  check_size(name() + "::step_second_order_adjoint", "dx", dx.size(), state_size());
  check_size(name() + "::step_second_order_adjoint", "ax_next", ax_next.size(), state_size());
  out.resize(state_size());
  do_step_second_order_adjoint(x, dx, ax_next, out);
}

void Model::do_step_second_order_adjoint(const Vector&, const Vector&, const Vector&, Vector&) const {
  no_second_order(name());
}

}  // namespace varflow
