#include "varflow/var/laplace.h"

#include <Eigen/Cholesky>
#include <cmath>

#include "varflow/core/error.h"
#include "varflow/version.h"

namespace varflow {
namespace {

Matrix symmetrised(const Matrix& a) { return 0.5 * (a + a.transpose()); }

Matrix sqrt_matrix(const Covariance& c) {
  const Index n = c.size();
  Matrix l(n, n);
  Vector e = Vector::Zero(n);
  for (Index j = 0; j < n; ++j) {
    e[j] = 1.0;
    l.col(j) = c.sqrt_multiply(e);
    e[j] = 0.0;
  }
  return l;
}

}  // namespace

std::shared_ptr<const DenseCovariance> laplace_covariance_dense(const Linearization& map) {
  const FourDVarCost& cost = map.cost_function();
  const Covariance& prior = cost.prior();
  const Index p = map.control_size();
  const Matrix l = sqrt_matrix(prior);
  // Whitened Jacobian of the observations with respect to v: Y = R^-1/2 H'M' L (m x p).
  Matrix y(map.observation_size(), p);
  for (Index j = 0; j < p; ++j) y.col(j) = map.whiten(map.tangent(l.col(j)));
  if (!y.allFinite()) throw NumericalError("laplace_covariance_dense: the observation Jacobian is not finite");
  const Matrix a = Matrix::Identity(p, p) + symmetrised(y.transpose() * y);
  const Eigen::LLT<Matrix> llt(a);
  if (llt.info() != Eigen::Success) {
    throw NumericalError("laplace_covariance_dense: I + L^T G L is not positive definite");
  }
  // P = L A^-1 L^T = (L U^-1)(L U^-1)^T with A = U^T U.
  const Matrix w = llt.matrixU().transpose().solve(l.transpose());  // U^-T L^T, p x p
  return std::make_shared<const DenseCovariance>(symmetrised(w.transpose() * w));
}

std::shared_ptr<const LowRankUpdateCovariance> laplace_covariance_low_rank(const Linearization& map,
                                                                           const LanczosEigenOptions& options,
                                                                           LanczosEigenResult* info) {
  with_context("laplace_covariance_low_rank", [&] { options.validate(); });
  const LinearOperator op = [&map](const Vector& v) { return map.preconditioned_observation_hessian_multiply(v); };
  LanczosEigenResult eig = lanczos_eigenpairs(op, map.control_size(), options);
  if (eig.numerical_failure) throw NumericalError("laplace_covariance_low_rank: " + eig.message);
  // L^T G L is positive semi-definite: eigenvalues below zero are round-off; clamp them at zero.
  Vector lambda = eig.values.cwiseMax(0.0);
  Matrix v = eig.vectors;
  if (info) *info = std::move(eig);
  return std::make_shared<const LowRankUpdateCovariance>(map.cost_function().prior_ptr(), std::move(v),
                                                         std::move(lambda));
}

std::shared_ptr<const LowRankUpdateCovariance> laplace_covariance_from_ritz(std::shared_ptr<const Covariance> prior,
                                                                            const Vector& ritz_values,
                                                                            const Matrix& ritz_vectors) {
  for (Index i = 0; i < ritz_values.size(); ++i) {
    if (!std::isfinite(ritz_values[i]) || !(ritz_values[i] > 0.0)) {
      throw NumericalError(format_message("laplace_covariance_from_ritz: Ritz value ", i, " = ", ritz_values[i],
                                          " is not positive (the Hessian is not SPD)"));
    }
  }
  return std::make_shared<const LowRankUpdateCovariance>(std::move(prior), ritz_vectors,
                                                         (ritz_values.array() - 1.0).matrix());
}

std::shared_ptr<const DenseCovariance> leading_block_covariance(const Covariance& c, Index n) {
  if (n < 1 || n > c.size()) {
    throw InvalidArgument(format_message("leading_block_covariance: n = ", n, " outside [1, ", c.size(), "]"));
  }
  Matrix block(n, n);
  Vector e = Vector::Zero(c.size());
  for (Index j = 0; j < n; ++j) {
    e[j] = 1.0;
    block.col(j) = c.multiply(e).head(n);
    e[j] = 0.0;
  }
  return std::make_shared<const DenseCovariance>(symmetrised(block));
}

Provenance make_provenance(const SolverSummary& summary) {
  Provenance p;
  p.method = summary.method;
  p.iterations = summary.iterations;
  p.final_cost = summary.final_cost;
  p.converged = summary.converged();
  if (summary.posterior_rank > 0) {
    p.updated_directions = summary.posterior_rank;
    p.prior_only_directions = summary.posterior_prior_only;
  }
  p.version = VARFLOW_VERSION_STRING;
  return p;
}

}  // namespace varflow
