#pragma once
// The 4D-Var cost function of an assimilation window, strong or weak constraint, with its
// tangent-linear and adjoint sweeps.
//
// Control variable z: the initial state x_0 (strong constraint), or (x_0, eta_1, ..., eta_S) (weak
// constraint, Tremolet 2006, "Accounting for an imperfect model in 4D-Var", QJRMS 132), where the model
// error forcing eta_j is constant over sub-window j: for model step k (x_k -> x_{k+1}) in sub-window
// j = floor(k / subwindow_steps),
//     x_{k+1} = M(x_k) + eta_j.
// The cost is
//     J(z) = 1/2 ||x_0 - x_b||^2_{B^-1} + 1/2 sum_j ||eta_j||^2_{Q^-1}
//          + 1/2 sum_slots ||y_s - H_s(x_{k(s)})||^2_{R_s^-1}.
// The prior of z is N(z_b, B_z) with z_b = (x_b, 0, ..., 0) and B_z = diag(B, Q, ..., Q); with its
// square root L_z (the control-variable transform) the preconditioned control is v = L_z^-1 (z - z_b).
//
// Missing values (mask false) are marginalised out: a slot with present set p contributes
//     1/2 d_p^T (R_pp)^-1 d_p,   d = y - H(x),
// where R_pp is the sub-block of R on the present values (the marginal covariance of the present
// errors; for a diagonal R this is just dropping the masked terms). When all values are present R's
// own operator is used; otherwise R_pp is formed densely and Cholesky-factorised once.
//
// Work is counted in passes over the window: a forward (nonlinear) run, a tangent-linear (TL) sweep,
// an adjoint (AD) sweep, a second-order adjoint (SOA) sweep (an AD sweep that also adds the
// second-order terms of the model and the observation operators). The counters are shared by a cost
// and its linearizations and are thread-safe.
//
// A FourDVarCost and its Linearizations share the window's model, operators and covariances (held by
// shared_ptr); they are immutable apart from the counters and may be used from several threads.
#include <memory>
#include <string_view>
#include <vector>

#include "varflow/core/types.h"
#include "varflow/covariance/covariance.h"
#include "varflow/var/window.h"

namespace varflow {

struct SweepCounts {
  Index forward_runs = 0;
  Index tl_sweeps = 0;
  Index ad_sweeps = 0;
  Index soa_sweeps = 0;
};

// The terms of J at one control.
struct CostTerms {
  double background = 0.0;    // 1/2 ||x_0 - x_b||^2_{B^-1}
  double model_error = 0.0;   // 1/2 sum_j ||eta_j||^2_{Q^-1} (0 for strong constraint)
  double observation = 0.0;   // sum over slots
  std::vector<double> per_slot;  // 1/2 ||d_p||^2_{R_pp^-1}, in the order of window.observations
  double total() const { return background + model_error + observation; }
};

class Linearization;

class FourDVarCost {
 public:
  // Strong constraint. Validates the window (InvalidArgument naming the field).
  explicit FourDVarCost(AssimilationWindow window);
  // Weak constraint with model-error covariance q (n x n) and sub-windows of `subwindow_steps` >= 1
  // model steps (the last one may be shorter); S = ceil(steps / subwindow_steps) forcings.
  FourDVarCost(AssimilationWindow window, std::shared_ptr<const Covariance> q, Index subwindow_steps);
  ~FourDVarCost();
  FourDVarCost(const FourDVarCost&);
  FourDVarCost& operator=(const FourDVarCost&);

  const AssimilationWindow& window() const;
  Index state_size() const;
  bool weak_constraint() const;
  Index num_subwindows() const;                 // S (0 for strong constraint)
  Index subwindow_steps() const;                // 0 for strong constraint
  Index control_size() const;                   // n (1 + S)
  Index observation_size() const;               // the stacked layout of window.h
  // B_z = diag(B, Q, ..., Q) (just B for strong constraint) and its mean z_b.
  const Covariance& prior() const;
  std::shared_ptr<const Covariance> prior_ptr() const;
  Vector control_background() const;
  // z = z_b + L_z v.
  Vector control_from_preconditioned(const Vector& v) const;

  // J(z): one forward run. Throws NumericalError when the trajectory is not finite.
  double evaluate(const Vector& z) const;
  // J(z) and, when gradient != nullptr, dJ/dz: one forward run and one AD sweep.
  double evaluate(const Vector& z, Vector* gradient) const;
  CostTerms terms(const Vector& z) const;
  // The trajectory, departures and TL/AD about z: one forward run.
  Linearization linearize(const Vector& z) const;

  SweepCounts counts() const;
  void reset_counts() const;

 private:
  friend class Linearization;
  struct Data;
  std::shared_ptr<Data> data_;
};

// Throws InvalidArgument "<where>: model '...'" or "<where>: observations[s].op '...'" naming the first
// component of the window without a second-order adjoint (needed for full Hessian products).
void require_second_order(const AssimilationWindow& window, std::string_view where);

// The window linearised about a control z: the trajectory x_0 .. x_N with its forcing, the departures
// d = y - H(x) and the TL/AD of z -> (H_s(x_{k(s)}))_s. Keeps the cost's data alive.
class Linearization {
 public:
  const Vector& control() const { return z_; }
  Index control_size() const { return z_.size(); }
  Index observation_size() const;
  Index steps() const { return static_cast<Index>(states_.size()) - 1; }
  // x_k along the (forced) trajectory, 0 <= k <= steps().
  const Vector& state(Index k) const;
  const Vector& final_state() const { return states_.back(); }
  const CostTerms& terms() const { return terms_; }
  double cost() const { return terms_.total(); }
  // d = y - H(x) in the stacked observation layout, 0 at masked entries.
  const Vector& departures() const { return departures_; }

  // One TL sweep: dz (control space) -> (H'_s M'_{0->k(s)} dz)_s stacked; 0 at masked entries.
  // tangent and adjoint throw NumericalError when the sweep produces a non-finite value.
  Vector tangent(const Vector& dz) const;
  // One AD sweep: w (observation space; masked entries ignored) -> sum_s (H'_s M'_{0->k(s)})^T w_s.
  Vector adjoint(const Vector& w) const;
  // R^-1 per slot on the present values (R_pp^-1 d_p), 0 at masked entries. No sweep.
  Vector weight(const Vector& d) const;
  // L_R^-1 per slot on the present values (with R_pp = L_pp L_pp^T when values are missing), 0 at
  // masked entries, so that ||whiten(d)||^2 = sum_s d_p^T R_pp^-1 d_p. No sweep.
  Vector whiten(const Vector& d) const;

  // dJ/dz = B_z^-1 (z - z_b) - adjoint(weight(d)): one AD sweep.
  Vector gradient() const;
  // The gradient in the preconditioned control v = L_z^-1 (z - z_b): v - L_z^T adjoint(weight(d)).
  Vector preconditioned_gradient(const Vector& v) const;
  // Gauss-Newton observation term G dz = adjoint(weight(tangent(dz))): one TL and one AD sweep.
  Vector observation_hessian_multiply(const Vector& dz) const;
  // The prior-preconditioned Gauss-Newton Hessian (I + L_z^T G L_z) dv: one TL and one AD sweep.
  Vector preconditioned_hessian_multiply(const Vector& dv) const;
  // Its observation part L_z^T G L_z dv alone (the "prior-preconditioned data-misfit Hessian").
  Vector preconditioned_observation_hessian_multiply(const Vector& dv) const;

  // Full (Newton) Hessian of J at z, strong or weak constraint (Le Dimet, Navon & Daescu 2002,
  // "Second-order information in data assimilation", MWR 130):
  //     d^2J/dz^2 dz = B_z^-1 dz + G dz - S dz,
  //     S = d^2/dz^2 sum_s <w_s, H_s(x_{k(s)}(z))>  with w = weight(departures()) held fixed,
  // the second-derivative terms that Gauss-Newton omits. S dz comes from the second-order adjoints of
  // the model (Model::step_second_order_adjoint) and of the operators along the TL trajectory of dz
  // and the adjoint trajectory lambda_k of w. Requires has_second_order(); throws InvalidArgument
  // naming the model or operator otherwise, NumericalError on a non-finite sweep.
  // Work: one TL sweep and one SOA sweep per product; the first product also runs one AD sweep of
  // w (the adjoint trajectory is kept, shared by copies of this Linearization).
  bool has_second_order() const;
  // Throws InvalidArgument "<where>: model '...'" or "<where>: observations[s].op '...'" naming the
  // first component without a second-order adjoint; returns when has_second_order().
  void require_second_order(std::string_view where) const;
  Vector full_hessian_multiply(const Vector& dz) const;
  // Its observation part (G - S) dz alone.
  Vector full_observation_hessian_multiply(const Vector& dz) const;
  // The prior-preconditioned full Hessian dv + L_z^T (G - S) L_z dv (symmetric; positive definite at a
  // strict local minimum, possibly indefinite elsewhere).
  Vector preconditioned_full_hessian_multiply(const Vector& dv) const;

  const FourDVarCost& cost_function() const { return cost_; }

 private:
  friend class FourDVarCost;
  struct AdjointTrajectory;
  explicit Linearization(const FourDVarCost& cost);
  // w = weight(departures()) and lambda_k, k = 0..steps(), the adjoint of x_k in the AD sweep of w;
  // computed once.
  const AdjointTrajectory& adjoint_trajectory() const;
  FourDVarCost cost_;  // shares the data
  Vector z_;
  std::vector<Vector> states_;
  Vector departures_;
  CostTerms terms_;
  std::shared_ptr<AdjointTrajectory> adjoint_trajectory_;
};

}  // namespace varflow
