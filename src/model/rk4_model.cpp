#include "varflow/model/rk4_model.h"

#include "varflow/core/error.h"

namespace varflow {

Rk4Model::Rk4Model(double dt) : dt_(dt) { check_positive("Rk4Model", "dt", dt); }

void Rk4Model::stage_states(const Vector& x, Vector stages[4]) const {
  Vector k(x.size());
  stages[0] = x;
  tendency(stages[0], k);
  stages[1] = x + 0.5 * dt_ * k;
  tendency(stages[1], k);
  stages[2] = x + 0.5 * dt_ * k;
  tendency(stages[2], k);
  stages[3] = x + dt_ * k;
}

void Rk4Model::do_step(Vector& x) const {
  const Index n = x.size();
  Vector k1(n), k2(n), k3(n), k4(n);
  tendency(x, k1);
  tendency(x + 0.5 * dt_ * k1, k2);
  tendency(x + 0.5 * dt_ * k2, k3);
  tendency(x + dt_ * k3, k4);
  x += (dt_ / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4);
}

void Rk4Model::do_step_tangent(const Vector& x, Vector& dx) const {
  Vector s[4];
  stage_states(x, s);
  const Index n = x.size();
  Vector dk1(n), dk2(n), dk3(n), dk4(n);
  tendency_tangent(s[0], dx, dk1);
  tendency_tangent(s[1], dx + 0.5 * dt_ * dk1, dk2);
  tendency_tangent(s[2], dx + 0.5 * dt_ * dk2, dk3);
  tendency_tangent(s[3], dx + dt_ * dk3, dk4);
  dx += (dt_ / 6.0) * (dk1 + 2.0 * dk2 + 2.0 * dk3 + dk4);
}

void Rk4Model::do_step_adjoint(const Vector& x, Vector& ax) const {
  // Reverse of do_step_tangent, statement by statement.
  Vector s[4];
  stage_states(x, s);
  const Index n = x.size();
  const Vector a_out = ax;  // adjoint of the step's output
  Vector a_dk1 = (dt_ / 6.0) * a_out;
  Vector a_dk2 = (dt_ / 3.0) * a_out;
  Vector a_dk3 = (dt_ / 3.0) * a_out;
  const Vector a_dk4 = (dt_ / 6.0) * a_out;
  Vector u(n);
  // dk4 = J(s3) (dx + dt dk3)
  tendency_adjoint(s[3], a_dk4, u);
  ax += u;
  a_dk3 += dt_ * u;
  // dk3 = J(s2) (dx + dt/2 dk2)
  tendency_adjoint(s[2], a_dk3, u);
  ax += u;
  a_dk2 += 0.5 * dt_ * u;
  // dk2 = J(s1) (dx + dt/2 dk1)
  tendency_adjoint(s[1], a_dk2, u);
  ax += u;
  a_dk1 += 0.5 * dt_ * u;
  // dk1 = J(s0) dx
  tendency_adjoint(s[0], a_dk1, u);
  ax += u;
}

}  // namespace varflow
