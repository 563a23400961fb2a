#include "varflow/obs/observation_operator.h"

#include "varflow/core/error.h"

namespace varflow {

void ObservationOperator::apply(const Vector& x, Vector& y) const {
  const std::string where = name() + "::apply";
  check_size(where, "x", x.size(), state_size());
  check_finite(where, "x", x);
  y.resize(obs_size());
  do_apply(x, y);
}

void ObservationOperator::apply_tangent(const Vector& x, const Vector& dx, Vector& dy) const {
  const std::string where = name() + "::apply_tangent";
  check_size(where, "x", x.size(), state_size());
  check_size(where, "dx", dx.size(), state_size());
  check_finite(where, "x", x);
  dy.resize(obs_size());
  do_apply_tangent(x, dx, dy);
}

void ObservationOperator::apply_adjoint(const Vector& x, const Vector& ay, Vector& ax) const {
  const std::string where = name() + "::apply_adjoint";
  check_size(where, "x", x.size(), state_size());
  check_size(where, "ay", ay.size(), obs_size());
  check_finite(where, "x", x);
  ax.resize(state_size());
  do_apply_adjoint(x, ay, ax);
}

namespace {
[[noreturn]] void no_second_order(const std::string& name) {
  throw InvalidArgument(name + "::apply_second_order_adjoint: observation operator '" + name +
                        "' has no second-order adjoint (has_second_order() = false)");
}
}  // namespace

void ObservationOperator::apply_second_order_adjoint(const Vector& x, const Vector& dx, const Vector& ay,
                                                     Vector& out) const {
  if (!has_second_order()) no_second_order(name());
  const std::string where = name() + "::apply_second_order_adjoint";
  check_size(where, "x", x.size(), state_size());
  check_size(where, "dx", dx.size(), state_size());
  check_size(where, "ay", ay.size(), obs_size());
  check_finite(where, "x", x);
  out.resize(state_size());
  do_apply_second_order_adjoint(x, dx, ay, out);
}

void ObservationOperator::do_apply_second_order_adjoint(const Vector&, const Vector&, const Vector&, Vector&) const {
  no_second_order(name());
}

}  // namespace varflow
