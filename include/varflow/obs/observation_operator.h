#pragma once
// Observation operators y = H(x) at one observation time, with tangent-linear dy = H'(x) dx and
// adjoint ax = H'(x)^T ay. The public functions check sizes and finiteness of x and call the do_*
// implementations, which may assume sizes state_size() / obs_size() and a finite x. Calls are const
// and must be thread-safe.
#include <string>

#include "varflow/core/types.h"

namespace varflow {

class ObservationOperator {
 public:
  virtual ~ObservationOperator() = default;

  virtual Index state_size() const = 0;  // length of x
  virtual Index obs_size() const = 0;    // length of y
  virtual std::string name() const = 0;

  // y <- H(x); y is resized.
  void apply(const Vector& x, Vector& y) const;
  // dy <- H'(x) dx; dy is resized.
  void apply_tangent(const Vector& x, const Vector& dx, Vector& dy) const;
  // ax <- H'(x)^T ay; ax is resized.
  void apply_adjoint(const Vector& x, const Vector& ay, Vector& ax) const;

 protected:
  virtual void do_apply(const Vector& x, Vector& y) const = 0;
  virtual void do_apply_tangent(const Vector& x, const Vector& dx, Vector& dy) const = 0;
  virtual void do_apply_adjoint(const Vector& x, const Vector& ay, Vector& ax) const = 0;
};

}  // namespace varflow
