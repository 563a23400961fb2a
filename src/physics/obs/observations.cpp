#include "varflow/obs/observations.h"

#include <cmath>

#include "varflow/core/error.h"
#include "varflow/covariance/covariance.h"

namespace varflow {

Index Observations::count() const { return mask.size() == 0 ? values.size() : mask.count(); }

void Observations::validate(Index state_size) const {
  const std::string where = format_message("Observations(step=", step, ")");
  if (step < 0) throw InvalidArgument(format_message(where, ": step = ", step, " must be non-negative"));
  if (!op) throw InvalidArgument(where + ": no observation operator");
  if (!r) throw InvalidArgument(where + ": no observation-error covariance R");
  check_size(where, "operator state size", op->state_size(), state_size);
  check_size(where, "values", values.size(), op->obs_size());
  if (mask.size() != 0) check_size(where, "mask", mask.size(), values.size());
  check_size(where, "R", r->size(), values.size());
  for (Index i = 0; i < values.size(); ++i) {
    if (present(i) && !std::isfinite(values[i])) {
      throw InvalidArgument(format_message(where, ": values[", i, "] = ", values[i],
                                           " is not finite (mask it as missing or remove it)"));
    }
  }
}

}  // namespace varflow
