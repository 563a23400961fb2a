#pragma once
// Typical states to linearise about, shared by the tests.
#include "varflow/core/random.h"
#include "varflow/model/model.h"

namespace varflow::test {

// A state on the model's attractor: `spin_up` steps from x0 + 0.01 N(0, I).
inline Vector spun_up_state(const Model& model, Vector x0, Rng& rng, Index spin_up) {
  x0 += 0.01 * rng.normal_vector(x0.size());
  for (Index k = 0; k < spin_up; ++k) model.step(x0);
  return x0;
}

}  // namespace varflow::test
