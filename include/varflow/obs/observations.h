#pragma once
// Observations at one time of an assimilation window.
#include <memory>

#include "varflow/core/types.h"
#include "varflow/obs/observation_operator.h"

namespace varflow {

class Covariance;

// The values observed at model step `step` (0 = the start of the window) through `op`, with error
// covariance `r`. mask[i] == false marks values[i] as missing: it takes no part in the cost, and its
// value is ignored (it may be NaN). Present values must be finite.
struct Observations {
  Index step = 0;
  Vector values;
  Mask mask;  // same size as values; empty means all present
  std::shared_ptr<const ObservationOperator> op;
  std::shared_ptr<const Covariance> r;

  // Number of present values.
  Index count() const;
  bool present(Index i) const { return mask.size() == 0 || mask[i]; }
  // Throws InvalidArgument naming the field and value when sizes disagree, a present value is not
  // finite, the step is negative, or op / r is missing. `state_size` is the model's.
  void validate(Index state_size) const;
};

}  // namespace varflow
