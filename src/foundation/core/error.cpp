#include "varflow/core/error.h"

#include <cmath>

namespace varflow {

void check_size(std::string_view where, std::string_view name, Index actual, Index expected) {
  if (actual != expected) {
    throw InvalidArgument(format_message(where, ": ", name, " has size ", actual, ", expected ", expected));
  }
}

void check_finite(std::string_view where, std::string_view name, const Eigen::Ref<const Vector>& v) {
  for (Index i = 0; i < v.size(); ++i) {
    if (!std::isfinite(v[i])) {
      throw InvalidArgument(format_message(where, ": ", name, "[", i, "] = ", v[i], " is not finite"));
    }
  }
}

void check_finite(std::string_view where, std::string_view name, double value) {
  if (!std::isfinite(value)) {
    throw InvalidArgument(format_message(where, ": ", name, " = ", value, " is not finite"));
  }
}

void check_positive(std::string_view where, std::string_view name, double value) {
  if (!(value > 0.0) || !std::isfinite(value)) {
    throw InvalidArgument(format_message(where, ": ", name, " = ", value, " must be positive and finite"));
  }
}

void check_nonnegative(std::string_view where, std::string_view name, double value) {
  if (!(value >= 0.0) || !std::isfinite(value)) {
    throw InvalidArgument(format_message(where, ": ", name, " = ", value, " must be non-negative and finite"));
  }
}

void check_at_least(std::string_view where, std::string_view name, Index value, Index minimum) {
  if (value < minimum) {
    throw InvalidArgument(format_message(where, ": ", name, " = ", value, " must be at least ", minimum));
  }
}

}  // namespace varflow
