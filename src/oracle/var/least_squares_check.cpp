#include "varflow/var/least_squares_check.h"

#include <ceres/ceres.h>

#include "varflow/core/error.h"

namespace varflow {
namespace {

class WhitenedResiduals final : public ceres::CostFunction {
 public:
  explicit WhitenedResiduals(const FourDVarCost& cost) : cost_(cost) {
    set_num_residuals(static_cast<int>(cost.control_size() + cost.observation_size()));
    mutable_parameter_block_sizes()->push_back(static_cast<int32_t>(cost.control_size()));
  }

  bool Evaluate(double const* const* parameters, double* residuals, double** jacobians) const override {
    const Index p = cost_.control_size();
    const Index m = cost_.observation_size();
    const Eigen::Map<const Vector> v(parameters[0], p);
    try {
      const Linearization lin = cost_.linearize(cost_.control_from_preconditioned(v));
      Eigen::Map<Vector> r(residuals, p + m);
      r.head(p) = v;
      r.tail(m) = lin.whiten(lin.departures());
      if (jacobians != nullptr && jacobians[0] != nullptr) {
        Eigen::Map<Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> jac(jacobians[0], p + m, p);
        jac.setZero();
        jac.topRows(p).setIdentity();
        Vector e = Vector::Zero(p);
        for (Index j = 0; j < p; ++j) {
          e[j] = 1.0;
          jac.block(p, j, m, 1) = -lin.whiten(lin.tangent(cost_.prior().sqrt_multiply(e)));
          e[j] = 0.0;
        }
      }
      return r.allFinite();
    } catch (const Error&) {
      return false;
    }
  }

 private:
  const FourDVarCost& cost_;
};

}  // namespace

LeastSquaresCheckResult solve_least_squares_check(const FourDVarCost& cost, int max_iterations) {
  if (max_iterations < 1) {
    throw InvalidArgument(format_message("solve_least_squares_check: max_iterations = ", max_iterations,
                                         " must be at least 1"));
  }
  Vector v = Vector::Zero(cost.control_size());
  ceres::Problem problem;
  problem.AddResidualBlock(new WhitenedResiduals(cost), nullptr, v.data());
  ceres::Solver::Options options;
  options.minimizer_type = ceres::TRUST_REGION;
  options.trust_region_strategy_type = ceres::LEVENBERG_MARQUARDT;
  options.linear_solver_type = ceres::DENSE_QR;
  options.max_num_iterations = max_iterations;
  options.function_tolerance = 1e-16;
  options.gradient_tolerance = 1e-16;
  options.parameter_tolerance = 1e-14;
  options.logging_type = ceres::SILENT;
  ceres::Solver::Summary summary;
  ceres::Solve(options, &problem, &summary);
  LeastSquaresCheckResult out;
  out.control = cost.control_background() + cost.prior().sqrt_multiply(v);
  out.final_cost = summary.final_cost;
  out.iterations = static_cast<int>(summary.iterations.size()) - 1;
  out.converged = summary.termination_type == ceres::CONVERGENCE;
  out.message = summary.BriefReport();
  return out;
}

}  // namespace varflow
