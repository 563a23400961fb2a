#pragma once
// Lorenz-96 (Lorenz 1996, "Predictability: a problem partly solved"):
//   dx_i/dt = (x_{i+1} - x_{i-2}) x_{i-1} - x_i + F,   i = 0 .. n-1, indices periodic,
// advanced by one RK4 step of length dt. TL/AD are those of the discrete RK4 step.
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
