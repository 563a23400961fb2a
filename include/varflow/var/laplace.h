#pragma once
// Laplace (Gauss-Newton) posteriors of a variational problem at its MAP.
//
// With the window linearised at the MAP z_a (Linearization), G = sum_s (H'_s M'_s)^T R_s^-1 (H'_s M'_s)
// (the Gauss-Newton observation term, masks applied as in var/cost.h) and the prior B_z = L L^T,
//     P_a = (B_z^-1 + G)^-1 = L (I + L^T G L)^-1 L^T.
// Two paths:
//  - dense:    form L and the whitened Jacobian of the observations by control_size() TL sweeps, then
//              (I + L^T G L)^-1 by Cholesky; O(p^2 m + p^3) flops for p controls, m observations.
//  - low rank: the k leading eigenpairs (lambda_i, v_i) of L^T G L by Lanczos (one TL and one AD sweep
//              per iteration), P_a = L (I - V diag(lambda/(1+lambda)) V^T) L^T (LowRankUpdateCovariance),
//              exact when k >= rank(G).
// The inner Lanczos of a Gauss-Newton solver gives the same form for free: the Ritz pairs (theta_i, y_i)
// of I + L^T G L give lambda_i = theta_i - 1 (Fisher & Courtier 1995, ECMWF Tech. Memo 220;
// Tshimanga, Gratton, Weaver & Sartenaer 2008, QJRMS 134).
#include <memory>

#include "varflow/covariance/covariances.h"
#include "varflow/posterior/low_rank_covariance.h"
#include "varflow/posterior/posterior.h"
#include "varflow/var/cost.h"
#include "varflow/var/lanczos.h"
#include "varflow/var/summary.h"

namespace varflow {

// The dense path. Throws NumericalError when I + L^T G L is not positive definite (a non-finite
// Jacobian).
std::shared_ptr<const DenseCovariance> laplace_covariance_dense(const Linearization& map);

// The low-rank path with the k = options.rank leading eigenpairs. Throws InvalidArgument for invalid
// options and NumericalError when the Hessian products are not finite. `info` (optional) receives the
// eigensolver's report (iterations, convergence).
std::shared_ptr<const LowRankUpdateCovariance> laplace_covariance_low_rank(const Linearization& map,
                                                                           const LanczosEigenOptions& options,
                                                                           LanczosEigenResult* info = nullptr);

// From Ritz pairs (theta_i, y_i) of the preconditioned Hessian I + L^T G L (ascending or not): the
// low-rank form with lambda_i = theta_i - 1. Throws NumericalError when a theta_i is not positive or
// not finite (the Hessian is not SPD).
std::shared_ptr<const LowRankUpdateCovariance> laplace_covariance_from_ritz(std::shared_ptr<const Covariance> prior,
                                                                            const Vector& ritz_values,
                                                                            const Matrix& ritz_vectors);

// The leading n x n block of c (the marginal covariance of its first n components), dense, from n
// products with c. Used for the x_0 marginal of a weak-constraint posterior.
std::shared_ptr<const DenseCovariance> leading_block_covariance(const Covariance& c, Index n);

// Provenance of a solver's posterior: method, iterations, final cost, converged and the varflow version.
Provenance make_provenance(const SolverSummary& summary);

}  // namespace varflow
