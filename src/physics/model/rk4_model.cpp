#include "varflow/model/rk4_model.h"

#include "varflow/core/error.h"
#include "scratch.h"

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

// The generic step, TL and AD below compute every element with the same operations in the same
// order as the textbook expressions (e.g. x + dt/6 (k1 + 2 k2 + 2 k3 + k4), left to right), into
// per-thread scratch; fused overrides in derived models must keep that order to stay bit for bit.
void Rk4Model::do_step(Vector& x) const {
  const Index n = x.size();
  detail::VectorLease v(5, n);
  Vector &k1 = v[0], &k2 = v[1], &k3 = v[2], &k4 = v[3], &s = v[4];
  tendency(x, k1);
  s.noalias() = x + 0.5 * dt_ * k1;
  tendency(s, k2);
  s.noalias() = x + 0.5 * dt_ * k2;
  tendency(s, k3);
  s.noalias() = x + dt_ * k3;
  tendency(s, k4);
  x += (dt_ / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4);
}

void Rk4Model::do_step_tangent(const Vector& x, Vector& dx) const {
  const Index n = x.size();
  detail::VectorLease v(8, n);
  Vector &s = v[0], &k = v[1], &d = v[2], &dk1 = v[3], &dk2 = v[4], &dk3 = v[5], &dk4 = v[6], &s2 = v[7];
  // Stage i: tangent at the stage state s_i of the stage input d_i.
  tendency_tangent(x, dx, dk1);
  tendency(x, k);
  s.noalias() = x + 0.5 * dt_ * k;
  d.noalias() = dx + 0.5 * dt_ * dk1;
  tendency_tangent(s, d, dk2);
  tendency(s, k);
  s2.noalias() = x + 0.5 * dt_ * k;
  d.noalias() = dx + 0.5 * dt_ * dk2;
  tendency_tangent(s2, d, dk3);
  tendency(s2, k);
  s.noalias() = x + dt_ * k;
  d.noalias() = dx + dt_ * dk3;
  tendency_tangent(s, d, dk4);
  dx += (dt_ / 6.0) * (dk1 + 2.0 * dk2 + 2.0 * dk3 + dk4);
}

void Rk4Model::do_step_adjoint(const Vector& x, Vector& ax) const {
  // Reverse of do_step_tangent, statement by statement.
  const Index n = x.size();
  detail::VectorLease v(9, n);
  Vector &s1 = v[0], &s2 = v[1], &s3 = v[2], &k = v[3], &a_out = v[4], &a_dk1 = v[5], &a_dk2 = v[6],
         &a_dk3 = v[7], &u = v[8];
  tendency(x, k);
  s1.noalias() = x + 0.5 * dt_ * k;
  tendency(s1, k);
  s2.noalias() = x + 0.5 * dt_ * k;
  tendency(s2, k);
  s3.noalias() = x + dt_ * k;
  a_out = ax;  // adjoint of the step's output
  a_dk1.noalias() = (dt_ / 6.0) * a_out;
  a_dk2.noalias() = (dt_ / 3.0) * a_out;
  a_dk3.noalias() = (dt_ / 3.0) * a_out;
  Vector& a_dk4 = k;
  a_dk4.noalias() = (dt_ / 6.0) * a_out;
  // dk4 = J(s3) (dx + dt dk3)
  tendency_adjoint(s3, a_dk4, u);
  ax += u;
  a_dk3 += dt_ * u;
  // dk3 = J(s2) (dx + dt/2 dk2)
  tendency_adjoint(s2, a_dk3, u);
  ax += u;
  a_dk2 += 0.5 * dt_ * u;
  // dk2 = J(s1) (dx + dt/2 dk1)
  tendency_adjoint(s1, a_dk2, u);
  ax += u;
  a_dk1 += 0.5 * dt_ * u;
  // dk1 = J(s0) dx
  tendency_adjoint(x, a_dk1, u);
  ax += u;
}

void Rk4Model::tendency_second_order_adjoint(const Vector&, const Vector&, const Vector&, Vector&) const {
  throw InvalidArgument(format_message(name(), ": the tendency has no second-order adjoint (has_second_order() = false)"));
}

void Rk4Model::do_step_second_order_adjoint(const Vector& x, const Vector& dx, const Vector& ax_next,
                                            Vector& out) const {
  // do_step_adjoint as a function of x (ax_next fixed), differentiated in direction dx:
  //   u3 = J(s3)^T a4,  a3 = dt/3 a + dt u3,  u2 = J(s2)^T a3,  a2 = dt/3 a + dt/2 u2,
  //   u1 = J(s1)^T a2,  a1 = dt/6 a + dt/2 u1,  u0 = J(s0)^T a1,  ax = a + u0 + u1 + u2 + u3,
  // with a4 = dt/6 a. The stage states s_i move by the TL stage increments ds_i, and
  //   d u_i = S(s_i)[ds_i, a_{i+1}] + J(s_i)^T d a_{i+1},   S(s)[d, a] = (d/ds [J(s)^T a]) d.
  Vector s[4];
  stage_states(x, s);
  const Index n = x.size();
  // TL stage increments ds_i (do_step_tangent).
  Vector ds[4];
  Vector dk(n);
  ds[0] = dx;
  tendency_tangent(s[0], ds[0], dk);
  ds[1] = dx + 0.5 * dt_ * dk;
  tendency_tangent(s[1], ds[1], dk);
  ds[2] = dx + 0.5 * dt_ * dk;
  tendency_tangent(s[2], ds[2], dk);
  ds[3] = dx + dt_ * dk;
  // Adjoint stage weights a_i (do_step_adjoint): the adjoint of k_{i+1}, i = 0..3.
  Vector a[4];
  Vector u(n);
  a[3] = (dt_ / 6.0) * ax_next;
  tendency_adjoint(s[3], a[3], u);
  a[2] = (dt_ / 3.0) * ax_next + dt_ * u;
  tendency_adjoint(s[2], a[2], u);
  a[1] = (dt_ / 3.0) * ax_next + 0.5 * dt_ * u;
  tendency_adjoint(s[1], a[1], u);
  a[0] = (dt_ / 6.0) * ax_next + 0.5 * dt_ * u;
  // Second-order sweep, in the order of do_step_adjoint.
  Vector du(n), v(n);
  tendency_second_order_adjoint(s[3], ds[3], a[3], du);  // d a4 = 0
  out = du;
  Vector da = dt_ * du;                                   // d a3
  tendency_second_order_adjoint(s[2], ds[2], a[2], du);
  tendency_adjoint(s[2], da, v);
  du += v;
  out += du;
  da = 0.5 * dt_ * du;                                    // d a2
  tendency_second_order_adjoint(s[1], ds[1], a[1], du);
  tendency_adjoint(s[1], da, v);
  du += v;
  out += du;
  da = 0.5 * dt_ * du;                                    // d a1
  tendency_second_order_adjoint(s[0], ds[0], a[0], du);
  tendency_adjoint(s[0], da, v);
  du += v;
  out += du;
}

}  // namespace varflow
