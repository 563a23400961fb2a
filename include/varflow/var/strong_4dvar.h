#pragma once
// Strong-constraint 4D-Var by limited-memory BFGS on the full nonlinear cost (Le Dimet & Talagrand
// 1986, Tellus A 38; Liu & Nocedal 1989, Math. Prog. 45), in the preconditioned control variable
//     v = B^-1/2 (x_0 - x_b),  x_0 = x_b + L v,  dJ/dv = v - L^T sum_s M'^T H'^T R^-1 d_s
// (Covariance::sqrt_multiply / sqrt_transpose_multiply), with Ceres' GradientProblemSolver. Each cost
// and gradient evaluation is one forward run and one adjoint sweep. The Laplace posterior at the MAP
// is then computed by the dense or the low-rank path (var/laplace.h).
//
//   StrongFourDVar::Options options;
//   options.max_iterations = 500;
//   SolverSummary summary;
//   VarResult r = StrongFourDVar(options).solve(window, &summary);
//   std::cout << summary.BriefReport() << "\n";
#include <string>

#include "varflow/var/laplace.h"
#include "varflow/var/result.h"
#include "varflow/var/summary.h"
#include "varflow/var/window.h"

namespace varflow {

struct StrongFourDVarOptions {
  // L-BFGS iterations (Ceres' default of 50 is far too few for a converged MAP).
  int max_iterations = 2000;
  // Converged when ||g_k|| <= gradient_tolerance * ||g_0|| (Euclidean norms in v).
  double gradient_tolerance = 1e-10;
  // Ceres' relative cost-change and step-size tests; tiny, so that they only stop a stalled
  // minimisation at round-off level.
  double function_tolerance = 1e-15;
  double parameter_tolerance = 1e-15;
  int max_lbfgs_rank = 20;
  double max_time_seconds = 1e6;
  // kNone, kDense or kLowRank (kInnerLanczos is for the Gauss-Newton solvers).
  PosteriorMethod posterior = PosteriorMethod::kDense;
  LanczosEigenOptions low_rank;  // for kLowRank
  void validate() const;  // InvalidArgument "<field> = <value> <rule>"
};

class StrongFourDVar {
 public:
  using Options = StrongFourDVarOptions;

  // Throws InvalidArgument with the message of Options::validate.
  explicit StrongFourDVar(Options options = {});
  const Options& options() const { return options_; }

  // Throws InvalidArgument for an invalid window; numerical failures are reported in *summary
  // (which may be null).
  VarResult solve(const AssimilationWindow& window, SolverSummary* summary = nullptr) const;

 private:
  Options options_;
};

}  // namespace varflow
