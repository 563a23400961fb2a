#include "varflow/var/window.h"

#include <cassert>

#include "varflow/core/error.h"

namespace varflow {

Index AssimilationWindow::observation_size() const {
  Index m = 0;
  for (const Observations& o : observations) m += o.values.size();
  return m;
}

Index AssimilationWindow::observation_offset(std::size_t slot) const {
  assert(slot <= observations.size());
  Index offset = 0;
  for (std::size_t i = 0; i < slot; ++i) offset += observations[i].values.size();
  return offset;
}

Index AssimilationWindow::observation_count() const {
  Index m = 0;
  for (const Observations& o : observations) m += o.count();
  return m;
}

Vector AssimilationWindow::stacked_values() const {
  Vector y(observation_size());
  Index offset = 0;
  for (const Observations& o : observations) {
    y.segment(offset, o.values.size()) = o.values;
    offset += o.values.size();
  }
  return y;
}

Mask AssimilationWindow::stacked_mask() const {
  Mask mask(observation_size());
  Index offset = 0;
  for (const Observations& o : observations) {
    for (Index i = 0; i < o.values.size(); ++i) mask[offset + i] = o.present(i);
    offset += o.values.size();
  }
  return mask;
}

void AssimilationWindow::validate() const {
  const char* where = "AssimilationWindow";
  if (background.size() == 0) throw InvalidArgument("AssimilationWindow: background is empty");
  check_finite(where, "background", background);
  const Index n = background.size();
  if (!b) throw InvalidArgument("AssimilationWindow: background-error covariance b is null");
  check_size(where, "b (background-error covariance)", b->size(), n);
  if (steps < 0) throw InvalidArgument(format_message(where, ": steps = ", steps, " must be non-negative"));
  if (steps > 0 && !model) {
    throw InvalidArgument(format_message(where, ": model is null but steps = ", steps, " (a model is needed when steps > 0)"));
  }
  if (model) check_size(where, "model state size", model->state_size(), n);
  for (std::size_t i = 0; i < observations.size(); ++i) {
    const Observations& o = observations[i];
    try {
      o.validate(n);
    } catch (const InvalidArgument& e) {
      throw InvalidArgument(format_message(where, ": observations[", i, "]: ", e.what()));
    }
    if (o.step > steps) {
      throw InvalidArgument(format_message(where, ": observations[", i, "].step = ", o.step,
                                           " is outside the window [0, steps = ", steps, "]"));
    }
  }
}

}  // namespace varflow
