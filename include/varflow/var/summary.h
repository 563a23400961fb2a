#pragma once
// What a variational solver reports: how it stopped, how much it cost, how far it got.
//
// Numerical failure (no convergence, a non-finite trajectory, a non-positive-definite Krylov matrix,
// a failed line search) is reported here as a TerminationType, never by an exception or an abort.
// Bad input (an invalid window or option) throws InvalidArgument before any work is done.
#include <limits>
#include <string>
#include <string_view>

#include "varflow/core/types.h"

namespace varflow {

enum class TerminationType {
  kConverged,         // a convergence tolerance was met
  kNoConvergence,     // an iteration or time limit was reached first; the result is the last iterate
  kNumericalFailure,  // NaN/Inf, a non-SPD Hessian, a failed line search; the result is the last good iterate
};

// "converged", "no_convergence", "numerical_failure".
std::string to_string(TerminationType type);
// Parses the names above; returns false (leaving *type unchanged) on an unknown name.
bool termination_type_from_string(std::string_view name, TerminationType* type);

// How the Laplace posterior covariance is obtained (see var/laplace.h).
enum class PosteriorMethod {
  kNone,          // no posterior (the result's posterior is null)
  kInnerLanczos,  // from the Ritz pairs of the last inner Lanczos solve (Gauss-Newton solvers only)
  kDense,         // dense Gauss-Newton Hessian at the MAP (control_size TL sweeps; small problems)
  kLowRank,       // leading eigenpairs of the prior-preconditioned Hessian by Lanczos
};
// "none", "inner_lanczos", "dense", "low_rank".
std::string to_string(PosteriorMethod method);
bool posterior_method_from_string(std::string_view name, PosteriorMethod* method);

struct SolverSummary {
  std::string method;  // "strong_4dvar", "incremental_4dvar", "weak_4dvar", "3dvar"
  TerminationType termination_type = TerminationType::kNumericalFailure;
  std::string message = "the solver was not run";
  int iterations = 0;        // L-BFGS iterations, or inner (Lanczos-CG) iterations summed over outer loops
  int outer_iterations = 0;  // Gauss-Newton outer loops (0 for L-BFGS)
  // Newton outer loops (OuterHessian::kNewton) that met negative curvature and took a Gauss-Newton step.
  int newton_fallbacks = 0;
  double initial_cost = std::numeric_limits<double>::quiet_NaN();
  double final_cost = std::numeric_limits<double>::quiet_NaN();
  // Euclidean norms of the gradient with respect to the preconditioned control variable v.
  double initial_gradient_norm = std::numeric_limits<double>::quiet_NaN();
  double final_gradient_norm = std::numeric_limits<double>::quiet_NaN();
  // Work, in passes over the whole window: nonlinear model runs, tangent-linear and adjoint sweeps
  // (each Gauss-Newton Hessian-vector product is one TL and one AD sweep).
  Index num_forward_runs = 0;
  Index num_tl_sweeps = 0;
  Index num_ad_sweeps = 0;
  double wall_time_seconds = 0.0;
  // The posterior: how it was obtained, its rank (the number of Hessian eigenpairs for a low-rank
  // form, the state size for a dense one, 0 without one) and why it is missing, if it is.
  PosteriorMethod posterior_method = PosteriorMethod::kNone;
  Index posterior_rank = 0;
  // Directions of the control that the posterior leaves at their prior variance (control size minus
  // posterior_rank for a low-rank form; 0 for a dense one). Non-zero is a truncation: the message
  // says so and the posterior's Provenance carries the same numbers.
  Index posterior_prior_only = 0;
  std::string posterior_message;

  bool converged() const { return termination_type == TerminationType::kConverged; }
  // One line: method, termination, iterations, costs, gradient norm, sweeps, time.
  std::string BriefReport() const;
  // Several lines with every field.
  std::string FullReport() const;
};

}  // namespace varflow
