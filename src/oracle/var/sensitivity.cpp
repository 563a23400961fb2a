#include "varflow/var/sensitivity.h"

#include "varflow/core/error.h"

namespace varflow {

ObservationSensitivity::ObservationSensitivity(Linearization map, std::shared_ptr<const Covariance> posterior_covariance)
    : map_(std::move(map)), p_(std::move(posterior_covariance)) {
  if (!p_) throw InvalidArgument("ObservationSensitivity: posterior_covariance is null");
  check_size("ObservationSensitivity", "posterior_covariance", p_->size(), map_.control_size());
}

Vector ObservationSensitivity::apply(const Vector& v) const {
  check_size("ObservationSensitivity::apply", "v", v.size(), observation_size());
  return p_->multiply(map_.adjoint(map_.weight(v)));
}

Vector ObservationSensitivity::apply_transpose(const Vector& w) const {
  check_size("ObservationSensitivity::apply_transpose", "w", w.size(), control_size());
  return map_.weight(map_.tangent(p_->multiply(w)));
}

Vector ObservationSensitivity::apply(const Vector& v, const Vector& v_background) const {
  check_size("ObservationSensitivity::apply", "v", v.size(), observation_size());
  check_size("ObservationSensitivity::apply", "v_background", v_background.size(), control_size());
  return p_->multiply(map_.adjoint(map_.weight(v)) + map_.cost_function().prior().inverse_multiply(v_background));
}

Vector ObservationSensitivity::apply_transpose(const Vector& w, Vector& background) const {
  check_size("ObservationSensitivity::apply_transpose", "w", w.size(), control_size());
  const Vector u = p_->multiply(w);
  background = map_.cost_function().prior().inverse_multiply(u);
  return map_.weight(map_.tangent(u));
}

}  // namespace varflow
