#pragma once
// An assimilation window: the background x_b with its error covariance B, the forecast model, the
// number of model steps and the observation slots inside the window.
//
// The window covers the states x_0 .. x_steps, x_{k+1} = M(x_k). An observation slot with step k
// observes x_k (k = 0 is the window start, k = steps its end). Several slots may share a step.
//
// The observation-space layout used by every varflow solver (tangent sweeps, sensitivities): the
// `values` vectors of all slots stacked in the order of `observations`, full length including masked
// (missing) entries. Masked entries of an observation-space vector are ignored on input and are zero
// on output.
#include <memory>
#include <vector>

#include "varflow/core/types.h"
#include "varflow/covariance/covariance.h"
#include "varflow/model/model.h"
#include "varflow/obs/observations.h"

namespace varflow {

struct AssimilationWindow {
  Vector background;                      // x_b, the prior mean of x_0 (size n)
  std::shared_ptr<const Covariance> b;    // B, n x n
  std::shared_ptr<const Model> model;     // may be null when steps == 0 (3D-Var)
  Index steps = 0;                        // number of model steps in the window
  std::vector<Observations> observations; // the slots, each with 0 <= step <= steps

  Index state_size() const { return background.size(); }
  // Sum of the slots' values sizes (masked entries included): the observation-space dimension.
  Index observation_size() const;
  // Offset of slot i in the stacked observation-space layout.
  Index observation_offset(std::size_t slot) const;
  // Number of present (unmasked) values over all slots.
  Index observation_count() const;
  // The stacked values and mask (mask true = present).
  Vector stacked_values() const;
  Mask stacked_mask() const;

  // Throws InvalidArgument naming the first inconsistent field and its value: an empty or non-finite
  // background, a missing or wrongly sized B or model, steps < 0, an invalid slot
  // (Observations::validate) or a slot step outside [0, steps].
  void validate() const;
};

}  // namespace varflow
