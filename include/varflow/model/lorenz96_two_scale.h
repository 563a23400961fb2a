#pragma once
// Two-scale Lorenz-96 (Lorenz 1996, "Predictability: a problem partly solved", section 7), in the
// form of Arnold, Moroz and Palmer (2013, Phil. Trans. R. Soc. A 371, 20110479):
//   dX_k/dt     = -X_{k-1} (X_{k-2} - X_{k+1}) - X_k + F - (h c / b) sum_{j} Y_{j,k},
//   dY_{j,k}/dt = -c b Y_{j+1,k} (Y_{j+2,k} - Y_{j-1,k}) - c Y_{j,k} + (h c / b) X_k,
// k = 0 .. K-1 (slow, periodic), j = 0 .. J-1; the fast variables form one periodic ring of J K
// (Y_{J,k} = Y_{0,k+1}). Advanced by one RK4 step of length dt, which must resolve the fast scale
// (dt = 0.001 .. 0.005; default 0.0025: with 0.005 the Arnold set's 50-step Taylor test of the
// conformance suite stays above its 1e-6 floor, min ratio 2e-6, as the fast scale's growth over
// 0.25 time units makes the window strongly nonlinear); TL, AD and the second-order adjoint are
// those of the discrete RK4 step.
//
// State layout (size K (J + 1)): x = [X_0 .. X_{K-1}, Y_{0,0} .. Y_{J-1,0}, Y_{0,1} .. Y_{J-1,K-1}],
// i.e. the K slow variables first (resolved_size() = K), then Y_{j,k} at K + k J + j.
//
// Parameter sets: Arnold et al. 2013 / Gagne et al. 2020: K = 8, J = 32, h = 1, b = c = 10, F = 20
// (the defaults); Rasp 2020: K = 36, J = 10, h = 1, b = c = 10, F = 10.
#include "varflow/model/rk4_model.h"

namespace varflow {

struct TwoScaleLorenz96Parameters {
  Index k = 8;          // slow variables K (>= 4)
  Index j = 32;         // fast variables per slow variable J (>= 1; J K >= 4)
  double forcing = 20.0;
  double h = 1.0;       // coupling constant
  double b = 10.0;      // spatial-scale ratio
  double c = 10.0;      // time-scale ratio
  double dt = 0.0025;
};

class TwoScaleLorenz96 final : public Rk4Model {
 public:
  explicit TwoScaleLorenz96(const TwoScaleLorenz96Parameters& p = {});

  Index state_size() const override { return k_ * (j_ + 1); }
  std::string name() const override;
  bool has_second_order() const override { return true; }
  Index slow_size() const { return k_; }
  const TwoScaleLorenz96Parameters& parameters() const { return p_; }

 protected:
  void tendency(const Vector& x, Vector& f) const override;
  void tendency_tangent(const Vector& x, const Vector& dx, Vector& df) const override;
  void tendency_adjoint(const Vector& x, const Vector& a, Vector& ax) const override;
  void tendency_second_order_adjoint(const Vector& x, const Vector& dx, const Vector& a,
                                     Vector& out) const override;

 private:
  // ax += (quadratic part of J(x))^T a: the terms of tendency_adjoint that are linear in x.
  void add_quadratic_adjoint(const Vector& x, const Vector& a, Vector& ax) const;
  TwoScaleLorenz96Parameters p_;
  Index k_, j_, m_;  // K, J, and the fast ring length J K
};

}  // namespace varflow
