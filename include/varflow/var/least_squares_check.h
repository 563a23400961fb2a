#pragma once
// An independent cross-check of the variational solvers on small problems: the same cost written as a
// nonlinear least-squares problem on whitened residuals
//     r(v) = [ v ; R^-1/2 (y - H(x(z_b + L v))) ],     J = 1/2 ||r||^2,
// solved by Ceres' trust-region Levenberg-Marquardt (Gauss-Newton steps with a dense QR), with the
// Jacobian [I ; -R^-1/2 H'M' L] formed by control_size() TL sweeps per evaluation. It shares only the
// window's TL sweeps with the Lanczos and L-BFGS paths, so agreement of the MAPs checks the Krylov
// solver, the line search and the preconditioning. Cost O(p) sweeps per iteration: small problems only.
#include <string>

#include "varflow/var/cost.h"

namespace varflow {

struct LeastSquaresCheckResult {
  Vector control;          // the MAP of z
  double final_cost = 0.0;
  int iterations = 0;
  bool converged = false;  // Ceres reported convergence
  std::string message;     // Ceres' report line
};

// max_iterations >= 1 (InvalidArgument otherwise). Numerical failures are reported in the result.
LeastSquaresCheckResult solve_least_squares_check(const FourDVarCost& cost, int max_iterations = 200);

}  // namespace varflow
