#pragma once
// Incremental 4D-Var (Courtier, Thepaut & Hollingsworth 1994, QJRMS 120): Gauss-Newton outer loops
// that relinearise the trajectory about the current iterate, around an inner quadratic problem in the
// preconditioned increment dv,
//     min 1/2 ||v + dv||^2 + 1/2 sum_s ||d_s - H'_s M'_s L dv||^2_{R_s^-1},
// i.e. (I + L^T G L) dv = -g, solved matrix-free by Lanczos-CG (var/lanczos.h): each Hessian-vector
// product is one TL and one AD sweep. The Lanczos tridiagonal of the last inner solve is kept: its
// Ritz pairs give the Laplace posterior covariance for free (PosteriorMethod::kInnerLanczos).
// The Gauss-Newton step is accepted when it does not increase the nonlinear cost; otherwise it is
// halved (at most max_backtracking_steps times).
//
// ThreeDVar is the single-time special case (every observation slot at step 0): the same algorithm
// without model sweeps.
#include <limits>
#include <string>
#include <string_view>

#include "varflow/var/laplace.h"
#include "varflow/var/result.h"
#include "varflow/var/summary.h"
#include "varflow/var/window.h"

namespace varflow {

// The Hessian of the inner problem of each outer loop.
//   kGaussNewton: I + L^T G L (always SPD; linear convergence of the outer loops when the departures
//                 are large, e.g. ~0.3 per loop on Lorenz-96 windows of 16 steps, design/solvers.md);
//   kNewton:      the full Hessian I + L^T (G - S) L with the second-order adjoints (var/cost.h), a
//                 truncated-Newton outer loop (Nash 2000, "A survey of truncated-Newton methods",
//                 J. Comput. Appl. Math. 124): quadratic convergence near the MAP. An outer loop whose
//                 Lanczos matrix is not positive definite (negative curvature away from the MAP) falls
//                 back to the Gauss-Newton Hessian for that loop. Needs a model and operators with
//                 second-order adjoints (solve() throws InvalidArgument naming the first without).
enum class OuterHessian { kGaussNewton, kNewton };
// "gauss_newton", "newton".
std::string to_string(OuterHessian hessian);
bool outer_hessian_from_string(std::string_view name, OuterHessian* hessian);

struct GaussNewtonOptions {
  int max_outer_iterations = 20;
  int max_inner_iterations = 200;   // per outer loop (capped at the control size)
  double inner_tolerance = 1e-10;   // relative residual of the inner system
  // Converged when ||g|| <= gradient_tolerance * ||g_0|| (Euclidean, in v) at the start of an outer
  // loop, or when the accepted step is tiny: ||dv|| <= step_tolerance * (||v|| + step_tolerance).
  double gradient_tolerance = 1e-8;
  double step_tolerance = 1e-10;
  int max_backtracking_steps = 8;
  OuterHessian hessian = OuterHessian::kGaussNewton;
  double max_time_seconds = 1e6;
  PosteriorMethod posterior = PosteriorMethod::kInnerLanczos;
  // kInnerLanczos: the Krylov space of the last inner solve holds only what CG needed, and directions
  // outside it keep their prior variance. When this is larger than that solve's number of Lanczos
  // vectors, the same Lanczos process (same linearisation, one TL and one AD sweep per vector) is
  // continued to this many vectors (capped at the control size; the control size gives the exact
  // Gauss-Newton posterior at that linearisation). 0: use the inner Krylov space as it is.
  Index posterior_lanczos_vectors = 0;
  // For kLowRank, and for kInnerLanczos when no Gauss-Newton inner process is available (none ran, or
  // the last outer loop was a Newton one): then the low-rank path at the MAP with rank at least
  // min(posterior_lanczos_vectors, control size).
  LanczosEigenOptions low_rank;
  void validate() const;  // InvalidArgument "<field> = <value> <rule>"
};

class IncrementalFourDVar {
 public:
  using Options = GaussNewtonOptions;
  explicit IncrementalFourDVar(Options options = {});  // throws InvalidArgument when invalid
  const Options& options() const { return options_; }
  VarResult solve(const AssimilationWindow& window, SolverSummary* summary = nullptr) const;

 private:
  Options options_;
};

class ThreeDVar {
 public:
  using Options = GaussNewtonOptions;
  explicit ThreeDVar(Options options = {});
  const Options& options() const { return options_; }
  // Throws InvalidArgument unless every observation slot is at step 0. window.steps may be positive:
  // the model is then only used to forecast the analysis to final_state.
  VarResult solve(const AssimilationWindow& window, SolverSummary* summary = nullptr) const;

 private:
  Options options_;
};

}  // namespace varflow
