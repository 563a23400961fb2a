#pragma once
// The promotion gate of an emulator (step 3 of the six-step cycle, design/cycle.md): may a learned
// one-step model replace the physics model inside 4D-Var?
//
// On held-out states x_j (not used in training), three checks, all required:
//  (1) forward agreement: e = sqrt(sum_j ||E(x_j) - M(x_j)||^2 / sum_j ||M(x_j) - x_j||^2), the
//      one-step error relative to the physics INCREMENT over the held-out set (not to the state,
//      which would hide the error behind the persistence part x_j); e < forward_tolerance (0.01).
//      The per-state errors e_j = ||E(x_j) - M(x_j)|| / ||M(x_j) - x_j|| and their maximum are
//      reported as well.
//  (2) Jacobian calibration: rho_j = ||E'(x_j) - M'(x_j)||_2 / ||M'(x_j)||_2, both norms by power
//      iteration (estimate_operator_norm of validation/adjoint_calibration.h) on the TL / AD pairs;
//      max_j rho_j < operator_norm_tolerance (0.05). Whether every power iteration converged (relative
//      change < power_tolerance) is reported; an unconverged estimate is a lower bound.
//  (3) the emulator's own TL / AD pass the dot-product, Taylor and linearity tests
//      (check_linearization_case with the conformance tolerances) at every held-out state.
//
// A reduced emulator (a closure) of a multi-scale physics: the emulator has the size of the
// physics' leading resolved (slow) components and one emulator step is options.step_multiple
// physics steps. Then E(x_j) and E' are compared with the resolved part of M^m(x_j) and with the
// resolved block P M'^m(x_j) P^T of the m-step Jacobian (P: the leading components), the held-out
// states being full physics states. The one-step statistics and thresholds are the same.
#include <string>
#include <vector>

#include "varflow/core/random.h"
#include "varflow/core/types.h"
#include "varflow/model/model.h"
#include "varflow/validation/adjoint_calibration.h"

namespace varflow {

struct EmulatorGateOptions {
  double forward_tolerance = 0.01;
  double operator_norm_tolerance = 0.05;
  Index jacobian_states = 5;       // held-out states at which (2) and (3) run (the first ones)
  Index step_multiple = 1;         // physics steps per emulator step
  Index power_iterations = 1000;
  double power_tolerance = 1e-6;
  LinearizationTolerances tolerances;

  // Throws InvalidArgument naming the field, its value and the rule.
  void validate() const;
};

struct EmulatorGateResult {
  std::vector<double> forward_errors;       // e_j, one per held-out state
  double forward_error = 0.0;              // e, the aggregate relative error (the gated statistic)
  double max_forward_error = 0.0, mean_forward_error = 0.0;
  std::vector<double> jacobian_differences; // rho_j
  double max_jacobian_difference = 0.0;
  bool power_converged = true;
  std::vector<LinearizationCaseResult> linearizations;
  double forward_tolerance = 0.0, operator_norm_tolerance = 0.0;
  bool forward_passed = false, jacobian_passed = false, adjoint_passed = false;
  bool passed() const { return forward_passed && jacobian_passed && adjoint_passed; }
  std::string report() const;
};

// held_out: n x J physics states (one per column). The emulator has n components, or fewer for a
// reduced emulator (the leading ones). rng draws probe and test directions.
EmulatorGateResult emulator_gate(const Model& emulator, const Model& physics, const Matrix& held_out, Rng& rng,
                                 const EmulatorGateOptions& options = {});

// Forecast skill against lead time: from each held-out physics state x_j, the physics (`steps` leads
// of step_multiple physics steps each) against the reduced model `model` (one step per lead) and a
// reference reduced model `baseline` (e.g. the truncated model with the coupling to the unresolved
// scale dropped, `baseline_steps` steps per lead), both started from the resolved part of x_j.
// rmse[l] is the root-mean-square error over states and resolved components at lead l + 1; a
// non-finite forecast counts as infinite error.
struct ForecastSkill {
  std::vector<double> lead_time;                  // in physics time units when dt is given, else leads
  std::vector<double> model_rmse, baseline_rmse;  // per lead
  double climatology_rmse = 0.0;                  // sqrt(2) x the resolved components' std (no skill)
  // The model beats the baseline at every lead by at least `factor` (model_rmse * factor <= baseline).
  bool model_better(double factor = 1.0) const;
  std::string table() const;                      // lead | model | baseline
};
ForecastSkill forecast_skill(const Model& model, const Model& baseline, Index baseline_steps, const Model& physics,
                             Index step_multiple, double physics_dt, const Matrix& held_out, Index steps);

}  // namespace varflow
