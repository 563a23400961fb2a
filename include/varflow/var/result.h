#pragma once
// What every variational solver returns (its SolverSummary is a separate out-parameter).
#include <memory>

#include "varflow/core/types.h"
#include "varflow/posterior/posterior.h"
#include "varflow/var/cost.h"

namespace varflow {

struct VarResult {
  // The MAP of x_0 (window start). On a numerical failure: the last good iterate (possibly x_b).
  Vector analysis;
  // x_steps along the analysis trajectory (with the analysed forcing for weak constraint): the
  // background of a following window. Empty when the analysis trajectory could not be computed.
  Vector final_state;
  // The MAP of the control z: x_0 (strong constraint, 3D-Var) or (x_0, eta_1, ..., eta_S) (weak).
  Vector control;
  // The Laplace posterior of x_0, and of the whole control (the same object for strong constraint).
  // Null when the options ask for none or when it could not be computed (see the summary).
  std::shared_ptr<const GaussianPosterior> posterior;
  std::shared_ptr<const GaussianPosterior> control_posterior;
  // The window linearised at the MAP (for ObservationSensitivity); null when there is none.
  std::shared_ptr<const Linearization> map;
};

}  // namespace varflow
