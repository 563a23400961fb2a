#pragma once
// Weak-constraint 4D-Var with a model-error forcing per sub-window (Tremolet 2006, QJRMS 132; the
// "forcing formulation"): control z = (x_0, eta_1, ..., eta_S), x_{k+1} = M(x_k) + eta_{j(k)},
//     J = 1/2 ||x_0 - x_b||^2_{B^-1} + 1/2 sum_j ||eta_j||^2_{Q^-1} + 1/2 sum_s ||d_s||^2_{R_s^-1}
// (var/cost.h), minimised by the Gauss-Newton / Lanczos-CG algorithm of IncrementalFourDVar in the
// preconditioned control v = diag(B, Q, ..., Q)^-1/2 (z - z_b).
//
// The result's control and control_posterior cover (x_0, eta_1, ..., eta_S); analysis and posterior
// are the x_0 part and its marginal (a dense n x n covariance).
#include <memory>
#include <string>

#include "varflow/covariance/covariance.h"
#include "varflow/var/incremental_4dvar.h"

namespace varflow {

struct WeakFourDVarOptions : GaussNewtonOptions {
  Index subwindow_steps = 1;  // model steps per forcing sub-window (>= 1)
  void validate() const;  // InvalidArgument "<field> = <value> <rule>"
};

class WeakFourDVar {
 public:
  using Options = WeakFourDVarOptions;
  // q: the model-error covariance Q (n x n), not null. Throws InvalidArgument when invalid.
  explicit WeakFourDVar(std::shared_ptr<const Covariance> q, Options options = {});
  const Options& options() const { return options_; }
  // Throws InvalidArgument for an invalid window or a Q of the wrong size.
  VarResult solve(const AssimilationWindow& window, SolverSummary* summary = nullptr) const;
  // The forcings eta_1 .. eta_S of a result's control (n = state size).
  static std::vector<Vector> forcing(const VarResult& result, Index n);

 private:
  std::shared_ptr<const Covariance> q_;
  Options options_;
};

}  // namespace varflow
