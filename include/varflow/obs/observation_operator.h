#pragma once
// Observation operators y = H(x) at one observation time, with tangent-linear dy = H'(x) dx and
// adjoint ax = H'(x)^T ay. The public functions check sizes and finiteness of x and call the do_*
// implementations, which may assume sizes state_size() / obs_size() and a finite x. Calls are const
// and must be thread-safe.
//
// Optionally an operator also provides its second-order adjoint: the derivative of the adjoint action
// ay -> H'(x)^T ay with respect to x in a direction dx, ay held fixed,
//     out = (d/dx [H'(x)^T ay]) dx,
// the Hessian of x -> <ay, H(x)> applied to dx (zero for a linear operator). An operator that
// implements it overrides has_second_order() and do_apply_second_order_adjoint; the default refuses
// with InvalidArgument naming the operator.
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

  // Whether apply_second_order_adjoint is available (default false).
  virtual bool has_second_order() const { return false; }
  // out <- (d/dx [H'(x)^T ay]) dx; out is resized to state_size(). Throws InvalidArgument on a wrong
  // size, a non-finite x, or when has_second_order() is false.
  void apply_second_order_adjoint(const Vector& x, const Vector& dx, const Vector& ay, Vector& out) const;

 protected:
  virtual void do_apply(const Vector& x, Vector& y) const = 0;
  virtual void do_apply_tangent(const Vector& x, const Vector& dx, Vector& dy) const = 0;
  virtual void do_apply_adjoint(const Vector& x, const Vector& ay, Vector& ax) const = 0;
  // Called with out already of size state_size(). The default throws InvalidArgument.
  virtual void do_apply_second_order_adjoint(const Vector& x, const Vector& dx, const Vector& ay,
                                             Vector& out) const;
};

}  // namespace varflow
