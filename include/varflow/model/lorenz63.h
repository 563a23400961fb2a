#pragma once
// Lorenz-63 (Lorenz 1963, "Deterministic nonperiodic flow"):
//   dx/dt = sigma (y - x),  dy/dt = x (rho - z) - y,  dz/dt = x y - beta z,
// advanced by one RK4 step of length dt. State (x, y, z). The step, TL and AD are fused kernels on
// stack arrays (no allocation), bit for bit equal to the generic Rk4Model path.
#include "varflow/model/rk4_model.h"

namespace varflow {

class Lorenz63 final : public Rk4Model {
 public:
  Lorenz63(double dt = 0.01, double sigma = 10.0, double rho = 28.0, double beta = 8.0 / 3.0);

  Index state_size() const override { return 3; }
  std::string name() const override;
  bool has_second_order() const override { return true; }

 protected:
  void do_step(Vector& x) const override;
  void do_step_tangent(const Vector& x, Vector& dx) const override;
  void do_step_adjoint(const Vector& x, Vector& ax) const override;

  void tendency(const Vector& x, Vector& f) const override;
  void tendency_tangent(const Vector& x, const Vector& dx, Vector& df) const override;
  void tendency_adjoint(const Vector& x, const Vector& a, Vector& ax) const override;
  void tendency_second_order_adjoint(const Vector& x, const Vector& dx, const Vector& a,
                                     Vector& out) const override;

 private:
  double sigma_, rho_, beta_;
};

}  // namespace varflow
