#pragma once
// The discrete forecast model interface: one time step x_{k+1} = M(x_k), its tangent-linear (TL)
// dx_{k+1} = M'(x_k) dx_k and its adjoint (AD) ax_k = M'(x_k)^T ax_{k+1}.
//
// Plugging in a model (ours or a user's, e.g. a Fortran code behind callbacks) means deriving from
// Model and implementing the four do_* functions. The public functions check sizes and finiteness of
// user input and then call them, so an implementation may assume:
//   - every vector argument has size state_size();
//   - `x` (the state the step is linearised about) is finite.
// TL and AD are those of the exact discrete step (not of the continuous equations), so that the
// adjoint dot-product test <M' dx, ay> = <dx, M'^T ay> holds to round-off. All calls are const and
// must be thread-safe for concurrent calls on distinct vectors.
//
// Optionally a model also provides the second-order adjoint (SOA) of its step (Le Dimet, Navon &
// Daescu 2002, "Second-order information in data assimilation", MWR 130): the derivative of the
// adjoint action ax_next -> M'(x)^T ax_next with respect to the linearisation state x, in a direction
// dx, with ax_next held fixed,
//     out = (d/dx [M'(x)^T ax_next]) dx,
// which is the Hessian of x -> <ax_next, M(x)> applied to dx (so <out(dx1), dx2> is symmetric in
// dx1, dx2). It is what full (not Gauss-Newton) Hessian-vector products of a 4D-Var cost need. A
// model that implements it overrides has_second_order() to return true and
// do_step_second_order_adjoint; the default refuses with InvalidArgument naming the model.
#include <string>

#include "varflow/core/types.h"

namespace varflow {

class Model {
 public:
  virtual ~Model() = default;

  // Number of state variables.
  virtual Index state_size() const = 0;
  // Human-readable name with parameters, e.g. "lorenz96(n=40, F=8, dt=0.05)".
  virtual std::string name() const = 0;

  // x <- M(x). Throws InvalidArgument on a wrong size or a non-finite x.
  void step(Vector& x) const;
  // dx <- M'(x) dx, linearised about the state x at the start of the step.
  void step_tangent(const Vector& x, Vector& dx) const;
  // ax <- M'(x)^T ax, linearised about the state x at the start of the step.
  void step_adjoint(const Vector& x, Vector& ax) const;
  // Steps every column of `states` (state_size() x m, one state per column) by one step, in place:
  // column c ends as step() would leave it. Throws InvalidArgument on a wrong row count or a
  // non-finite entry. Overrides may step many columns at once; the results equal step()'s. Lorenz-96
  // splits the columns of a large batch over the OpenMP threads.
  void step_batch(Matrix& states) const;

  // Whether step_second_order_adjoint is available (default false).
  virtual bool has_second_order() const { return false; }
  // out <- (d/dx [M'(x)^T ax_next]) dx, the second-order adjoint of the step at x (out is resized).
  // Throws InvalidArgument on a wrong size, a non-finite x, or when has_second_order() is false.
  void step_second_order_adjoint(const Vector& x, const Vector& dx, const Vector& ax_next, Vector& out) const;

 protected:
  // Variables (columns x state size) from which step_batch may split a batch's columns over the
  // OpenMP threads (about 0.3 ms of Lorenz-96 steps: below it a fork/join costs more than it saves).
  static constexpr Index kParallelBatchMin = 65536;

  virtual void do_step(Vector& x) const = 0;
  virtual void do_step_tangent(const Vector& x, Vector& dx) const = 0;
  virtual void do_step_adjoint(const Vector& x, Vector& ax) const = 0;
  // Called with states.rows() == state_size() and finite entries. The default steps column by
  // column through do_step.
  virtual void do_step_batch(Matrix& states) const;
  // Called with out already of size state_size(). The default throws InvalidArgument.
  virtual void do_step_second_order_adjoint(const Vector& x, const Vector& dx, const Vector& ax_next,
                                            Vector& out) const;

 private:
  void check_state(const char* where, const Vector& x) const;
};

}  // namespace varflow
