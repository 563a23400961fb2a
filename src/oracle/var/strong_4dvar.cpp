#include "varflow/var/strong_4dvar.h"

#include <ceres/gradient_problem.h>
#include <ceres/gradient_problem_solver.h>
#include <ceres/iteration_callback.h>

#include <cmath>

#include "solver_common.h"
#include "varflow/core/error.h"

namespace varflow {

void StrongFourDVarOptions::validate() const {
  std::string e;
  if (max_iterations < 1) e = format_message("max_iterations = ", max_iterations, " must be at least 1");
  else if (!(gradient_tolerance >= 0.0 && gradient_tolerance < 1.0))
    e = format_message("gradient_tolerance = ", gradient_tolerance, " must be in [0, 1)");
  else if (!(function_tolerance >= 0.0 && std::isfinite(function_tolerance)))
    e = format_message("function_tolerance = ", function_tolerance, " must be finite and non-negative");
  else if (!(parameter_tolerance >= 0.0 && std::isfinite(parameter_tolerance)))
    e = format_message("parameter_tolerance = ", parameter_tolerance, " must be finite and non-negative");
  else if (max_lbfgs_rank < 1) e = format_message("max_lbfgs_rank = ", max_lbfgs_rank, " must be at least 1");
  else if (!(max_time_seconds > 0.0)) e = format_message("max_time_seconds = ", max_time_seconds, " must be positive");
  else if (posterior == PosteriorMethod::kInnerLanczos)
    e = "posterior = inner_lanczos is only available for the Gauss-Newton solvers (use dense, low_rank or none)";
  else if (posterior == PosteriorMethod::kLowRank) {
    try {
      with_prefix("low_rank.", [&] { low_rank.validate(); });
    } catch (const InvalidArgument& x) {
      e = x.what();
    }
  }
  if (!e.empty()) throw InvalidArgument(e);
}

StrongFourDVar::StrongFourDVar(Options options) : options_(std::move(options)) {
  with_prefix("StrongFourDVar: options.", [&] { options_.validate(); });
}

namespace {

// J(v) and dJ/dv for Ceres. A failed evaluation (non-finite trajectory) returns false, which Ceres
// treats as an invalid step; no exception crosses Ceres.
class PreconditionedCost final : public ceres::FirstOrderFunction {
 public:
  explicit PreconditionedCost(const FourDVarCost& cost) : cost_(cost) {}
  bool Evaluate(const double* parameters, double* value, double* gradient) const override {
    const Eigen::Map<const Vector> v(parameters, cost_.control_size());
    try {
      const Linearization lin = cost_.linearize(cost_.control_from_preconditioned(v));
      *value = lin.cost();
      if (gradient != nullptr) {
        Eigen::Map<Vector> g(gradient, cost_.control_size());
        g = lin.preconditioned_gradient(v);
        if (!g.allFinite()) return false;
      }
      return std::isfinite(*value);
    } catch (const Error&) {
      return false;
    }
  }
  int NumParameters() const override { return static_cast<int>(cost_.control_size()); }

 private:
  const FourDVarCost& cost_;
};

// Stops the minimiser when ||g_k|| <= tol ||g_0||.
class RelativeGradientTest final : public ceres::IterationCallback {
 public:
  explicit RelativeGradientTest(double tolerance) : tolerance_(tolerance) {}
  ceres::CallbackReturnType operator()(const ceres::IterationSummary& s) override {
    if (s.iteration == 0) initial_ = s.gradient_norm;
    last_ = s.gradient_norm;
    if (s.gradient_norm <= tolerance_ * initial_) {
      reached_ = true;
      return ceres::SOLVER_TERMINATE_SUCCESSFULLY;
    }
    return ceres::SOLVER_CONTINUE;
  }
  bool reached() const { return reached_; }
  double initial() const { return initial_; }
  double last() const { return last_; }

 private:
  double tolerance_;
  double initial_ = std::numeric_limits<double>::quiet_NaN();
  double last_ = std::numeric_limits<double>::quiet_NaN();
  bool reached_ = false;
};

}  // namespace

VarResult StrongFourDVar::solve(const AssimilationWindow& window, SolverSummary* summary_out) const {
  Stopwatch clock;
  const FourDVarCost cost(window);
  SolverSummary summary;
  summary.method = "strong_4dvar";
  const Index n = cost.control_size();
  Vector v = Vector::Zero(n);

  ceres::GradientProblemSolver::Options co;
  co.line_search_direction_type = ceres::LBFGS;
  co.max_lbfgs_rank = options_.max_lbfgs_rank;
  co.max_num_iterations = options_.max_iterations;
  co.max_solver_time_in_seconds = options_.max_time_seconds;
  co.function_tolerance = options_.function_tolerance;
  co.parameter_tolerance = options_.parameter_tolerance;
  co.gradient_tolerance = 0.0;  // replaced by the relative test below
  co.logging_type = ceres::SILENT;
  co.minimizer_progress_to_stdout = false;
  RelativeGradientTest test(options_.gradient_tolerance);
  co.callbacks.push_back(&test);

  ceres::GradientProblem problem(new PreconditionedCost(cost));
  ceres::GradientProblemSolver::Summary cs;
  ceres::Solve(co, problem, v.data(), &cs);

  summary.iterations = cs.iterations.empty() ? 0 : static_cast<int>(cs.iterations.size()) - 1;
  summary.initial_cost = cs.initial_cost;
  summary.final_cost = cs.final_cost;
  summary.initial_gradient_norm = test.initial();
  summary.final_gradient_norm = test.last();
  if (test.reached()) {
    summary.termination_type = TerminationType::kConverged;
    summary.message = format_message("|g| = ", test.last(), " <= gradient_tolerance * |g0|");
  } else {
    switch (cs.termination_type) {
      case ceres::CONVERGENCE:
      case ceres::USER_SUCCESS: summary.termination_type = TerminationType::kConverged; break;
      case ceres::NO_CONVERGENCE: summary.termination_type = TerminationType::kNoConvergence; break;
      default: summary.termination_type = TerminationType::kNumericalFailure; break;
    }
    summary.message = "L-BFGS: " + cs.message;
  }

  std::optional<Linearization> map;
  if (v.allFinite()) {
    try {
      map.emplace(cost.linearize(cost.control_from_preconditioned(v)));
      summary.final_cost = map->cost();
    } catch (const Error& e) {
      summary.termination_type = TerminationType::kNumericalFailure;
      summary.message += std::string("; the final trajectory failed: ") + e.what();
    }
  } else {
    summary.termination_type = TerminationType::kNumericalFailure;
    summary.message += "; the final control is not finite";
    v.setZero();
  }
  VarResult result;
  const Vector z = cost.control_background() + cost.prior().sqrt_multiply(v);
  detail::finish(cost, map, z, options_.posterior, options_.low_rank, nullptr, 0, result, summary);
  detail::record_work(cost, clock, summary);
  if (summary_out) *summary_out = summary;
  return result;
}

}  // namespace varflow
