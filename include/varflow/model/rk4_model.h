#pragma once
// A model whose step is one classical fourth-order Runge-Kutta step of an ODE dx/dt = f(x).
//
// Derived classes provide the tendency f, its Jacobian-vector product J(x) dx and its transpose
// J(x)^T a. Rk4Model then implements the TL and AD of the exact discrete RK4 step (Jacobians taken
// at the four stage states), so the adjoint test holds to round-off for any dt.
//
// Optionally a derived class also provides the derivative of the tendency's adjoint action,
// (d/dx [J(x)^T a]) dx (tendency_second_order_adjoint), and returns true from has_second_order();
// Rk4Model then implements the second-order adjoint of the exact discrete RK4 step: the stage
// states depend on x (their tangents are the TL stage increments) and each stage's J^T depends on
// its stage state.
#include "varflow/model/model.h"

namespace varflow {

class Rk4Model : public Model {
 public:
  // dt: the time step (model time units), positive.
  explicit Rk4Model(double dt);
  double dt() const { return dt_; }

 protected:
  // f <- f(x). f has the size of x.
  virtual void tendency(const Vector& x, Vector& f) const = 0;
  // df <- J(x) dx.
  virtual void tendency_tangent(const Vector& x, const Vector& dx, Vector& df) const = 0;
  // ax <- J(x)^T a (overwrites ax).
  virtual void tendency_adjoint(const Vector& x, const Vector& a, Vector& ax) const = 0;
  // out <- (d/dx [J(x)^T a]) dx (overwrites out; sized like x). Optional: the default throws
  // InvalidArgument naming the model; override it together with has_second_order().
  virtual void tendency_second_order_adjoint(const Vector& x, const Vector& dx, const Vector& a, Vector& out) const;

  // The generic RK4 step and its TL/AD through the virtual tendency functions, with per-thread
  // scratch (no allocation once a thread has stepped a state of this size). A derived model may
  // override them with fused kernels that give the same results bit for bit.
  void do_step(Vector& x) const override;
  void do_step_tangent(const Vector& x, Vector& dx) const override;
  void do_step_adjoint(const Vector& x, Vector& ax) const override;
  void do_step_second_order_adjoint(const Vector& x, const Vector& dx, const Vector& ax_next,
                                    Vector& out) const final;

 private:
  // The four stage states x, x + dt/2 k1, x + dt/2 k2, x + dt k3.
  void stage_states(const Vector& x, Vector stages[4]) const;
  double dt_;
};

}  // namespace varflow
