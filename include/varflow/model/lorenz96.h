#pragma once
// Lorenz-96 (Lorenz 1996, "Predictability: a problem partly solved"):
//   dx_i/dt = (x_{i+1} - x_{i-2}) x_{i-1} - x_i + F,   i = 0 .. n-1, indices periodic,
// advanced by one RK4 step of length dt. TL/AD are those of the discrete RK4 step.
// The step, TL, AD and batched step are fused kernels (one pass over the state per RK4 stage, the
// periodic boundaries outside the vectorised inner loop, per-thread scratch, no allocation per call)
// with the same floating-point operations in the same order as the generic Rk4Model path, so they
// agree with it bit for bit (model_test: Lorenz96KernelsMatchTheGenericRk4BitForBit).
#include "varflow/model/rk4_model.h"

namespace varflow {

class Lorenz96 final : public Rk4Model {
 public:
  // n >= 4 variables, forcing F (finite), time step dt > 0 (0.05 = 6 hours in Lorenz's scaling).
  Lorenz96(Index n = 40, double forcing = 8.0, double dt = 0.05);

  Index state_size() const override { return n_; }
  std::string name() const override;
  double forcing() const { return forcing_; }
  bool has_second_order() const override { return true; }

 protected:
  void do_step(Vector& x) const override;
  void do_step_tangent(const Vector& x, Vector& dx) const override;
  void do_step_adjoint(const Vector& x, Vector& ax) const override;
  void do_step_batch(Matrix& states) const override;

  void tendency(const Vector& x, Vector& f) const override;
  void tendency_tangent(const Vector& x, const Vector& dx, Vector& df) const override;
  void tendency_adjoint(const Vector& x, const Vector& a, Vector& ax) const override;
  void tendency_second_order_adjoint(const Vector& x, const Vector& dx, const Vector& a,
                                     Vector& out) const override;

 private:
  Index n_;
  double forcing_;
};

}  // namespace varflow
