#include <algorithm>
#include <cmath>

#include "solver_common.h"
#include "varflow/core/enum_text.h"
#include "varflow/core/error.h"
#include "varflow/core/random.h"
#include "varflow/var/incremental_4dvar.h"
#include "varflow/var/weak_4dvar.h"

namespace varflow {

namespace {
constexpr EnumNames<OuterHessian, 2> kOuterHessianNames{
    {{OuterHessian::kGaussNewton, "gauss_newton"}, {OuterHessian::kNewton, "newton"}}};
}  // namespace

std::string to_string(OuterHessian hessian) { return std::string(to_text(kOuterHessianNames, hessian)); }

bool outer_hessian_from_string(std::string_view name, OuterHessian* hessian) {
  return find_value(kOuterHessianNames, name, hessian);
}

void GaussNewtonOptions::validate() const {
  std::string e;
  if (max_outer_iterations < 1) e = format_message("max_outer_iterations = ", max_outer_iterations, " must be at least 1");
  else if (max_inner_iterations < 1)
    e = format_message("max_inner_iterations = ", max_inner_iterations, " must be at least 1");
  else if (!(inner_tolerance > 0.0 && inner_tolerance < 1.0))
    e = format_message("inner_tolerance = ", inner_tolerance, " must be in (0, 1)");
  else if (!(gradient_tolerance >= 0.0 && gradient_tolerance < 1.0))
    e = format_message("gradient_tolerance = ", gradient_tolerance, " must be in [0, 1)");
  else if (!(step_tolerance >= 0.0 && std::isfinite(step_tolerance)))
    e = format_message("step_tolerance = ", step_tolerance, " must be finite and non-negative");
  else if (posterior_lanczos_vectors < 0)
    e = format_message("posterior_lanczos_vectors = ", posterior_lanczos_vectors, " must be non-negative");
  else if (max_backtracking_steps < 0)
    e = format_message("max_backtracking_steps = ", max_backtracking_steps, " must be non-negative");
  else if (!(max_time_seconds > 0.0)) e = format_message("max_time_seconds = ", max_time_seconds, " must be positive");
  else if (posterior == PosteriorMethod::kLowRank || posterior == PosteriorMethod::kInnerLanczos) {
    try {
      with_prefix("low_rank.", [&] { low_rank.validate(); });
    } catch (const InvalidArgument& x) {
      e = x.what();
    }
  }
  if (!e.empty()) throw InvalidArgument(e);
}

namespace detail {

void record_work(const FourDVarCost& cost, const Stopwatch& clock, SolverSummary& summary) {
  const SweepCounts c = cost.counts();
  summary.num_forward_runs = c.forward_runs;
  summary.num_tl_sweeps = c.tl_sweeps;
  summary.num_ad_sweeps = c.ad_sweeps;
  summary.wall_time_seconds = clock.seconds();
}

void finish(const FourDVarCost& cost, const std::optional<Linearization>& map, const Vector& control,
            PosteriorMethod method, const LanczosEigenOptions& low_rank, Lanczos* inner, Index inner_vectors,
            VarResult& result, SolverSummary& summary) {
  const Index n = cost.state_size();
  result.control = control;
  result.analysis = control.head(n);
  if (!map) {
    summary.posterior_message = "no posterior: the solver has no valid linearisation";
    return;
  }
  result.final_state = map->final_state();
  result.map = std::make_shared<const Linearization>(*map);
  summary.posterior_method = method;
  if (method == PosteriorMethod::kNone) return;
  try {
    std::shared_ptr<const Covariance> cov;
    if (method == PosteriorMethod::kDense) {
      cov = laplace_covariance_dense(*map);
      summary.posterior_rank = cost.control_size();
    } else if (method == PosteriorMethod::kInnerLanczos && inner != nullptr && inner->size() > 0) {
      const Index target = std::min(inner_vectors, cost.control_size());
      if (target > inner->size()) {
        // Restarted (deflated) after each breakdown, so a degenerate spectrum still reaches `target`.
        Rng rng(low_rank.seed);
        inner->extend(target, rng);
        if (inner->non_finite()) throw NumericalError("extending the inner Lanczos process: non-finite Hessian product");
      }
      Vector values;
      Matrix vectors;
      inner->ritz_pairs(&values, &vectors);
      auto lr = laplace_covariance_from_ritz(cost.prior_ptr(), values, vectors);
      summary.posterior_rank = lr->rank();
      cov = lr;
    } else {
      LanczosEigenOptions options = low_rank;
      if (method == PosteriorMethod::kInnerLanczos) {
        summary.posterior_method = PosteriorMethod::kLowRank;
        summary.posterior_message =
            "no Gauss-Newton inner Lanczos process (none ran, or the last outer loop was a Newton one); "
            "low-rank Laplace path at the MAP used instead";
        const Index wanted = std::min(inner_vectors, cost.control_size());
        if (wanted > options.rank) {
          options.rank = wanted;
          options.max_iterations = std::max<int>(options.max_iterations, static_cast<int>(wanted));
        }
      }
      LanczosEigenResult info;
      auto lr = laplace_covariance_low_rank(*map, options, &info);
      summary.posterior_rank = lr->rank();
      if (!info.converged) {
        summary.posterior_message += (summary.posterior_message.empty() ? "" : "; ") + info.message;
      }
      cov = lr;
    }
    summary.posterior_prior_only = cost.control_size() - summary.posterior_rank;
    if (summary.posterior_prior_only > 0) {
      summary.posterior_message += format_message(
          summary.posterior_message.empty() ? "" : "; ", "truncated: ", summary.posterior_rank, " of ",
          cost.control_size(), " control directions updated, the other ", summary.posterior_prior_only,
          " keep their prior variance (set posterior_lanczos_vectors or low_rank.rank to the control size for ",
          "the full posterior)");
    }
    Provenance provenance = make_provenance(summary);
    auto post = std::make_shared<GaussianPosterior>(control, cov);
    post->set_provenance(provenance);
    result.control_posterior = post;
    if (cost.control_size() == n) {
      result.posterior = post;
    } else {
      auto marginal = std::make_shared<GaussianPosterior>(result.analysis, leading_block_covariance(*cov, n));
      marginal->set_provenance(provenance);
      result.posterior = marginal;
    }
  } catch (const Error& e) {
    result.posterior.reset();
    result.control_posterior.reset();
    summary.posterior_rank = 0;
    summary.posterior_message = e.what();
    summary.termination_type = TerminationType::kNumericalFailure;
    summary.message += std::string("; posterior failed: ") + e.what();
  }
}

GaussNewtonOutput run_gauss_newton(const FourDVarCost& cost, const GaussNewtonOptions& options,
                                   const Stopwatch& clock, SolverSummary& summary) {
  GaussNewtonOutput out;
  if (options.hessian == OuterHessian::kNewton) require_second_order(cost.window(), "options.hessian = newton");
  const Index p = cost.control_size();
  out.v = Vector::Zero(p);
  const Vector zb = cost.control_background();
  const Covariance& prior = cost.prior();
  Vector g;
  try {
    out.map.emplace(cost.linearize(zb));
    g = out.map->preconditioned_gradient(out.v);
  } catch (const Error& e) {
    out.map.reset();
    summary.termination_type = TerminationType::kNumericalFailure;
    summary.message = std::string("the background trajectory or its gradient failed: ") + e.what();
    return out;
  }
  const bool newton = options.hessian == OuterHessian::kNewton;
  double j = out.map->cost();
  summary.initial_cost = summary.final_cost = j;
  const double g0 = g.norm();
  summary.initial_gradient_norm = summary.final_gradient_norm = g0;
  LanczosSolveOptions inner_options{options.max_inner_iterations, options.inner_tolerance};
  inner_options.ritz_pairs = false;  // the posterior takes its Ritz pairs from the kept process
  auto gradient_converged = [&]() { return g.norm() <= options.gradient_tolerance * g0; };

  summary.termination_type = TerminationType::kNoConvergence;
  summary.message = format_message("max_outer_iterations = ", options.max_outer_iterations, " reached");
  for (int outer = 0; outer < options.max_outer_iterations; ++outer) {
    if (g0 == 0.0 || gradient_converged()) {
      summary.termination_type = TerminationType::kConverged;
      summary.message = format_message("|g| = ", g.norm(), " <= gradient_tolerance * |g0|");
      break;
    }
    if (clock.seconds() > options.max_time_seconds) {
      summary.message = format_message("max_time_seconds = ", options.max_time_seconds, " reached");
      break;
    }
    auto lin = std::make_shared<const Linearization>(*out.map);
    const LinearOperator gauss_newton = [lin](const Vector& dv) { return lin->preconditioned_hessian_multiply(dv); };
    const LinearOperator full = [lin](const Vector& dv) { return lin->preconditioned_full_hessian_multiply(dv); };
    // Lanczos-CG when the posterior will need the process's Ritz pairs (`process` not null), plain
    // CG otherwise: no basis to keep or reorthogonalise, O(n) memory.
    auto inner_solve = [&](const LinearOperator& hessian, std::unique_ptr<Lanczos>* process) {
      LanczosSolveResult r;
      try {
        r = process ? lanczos_solve(hessian, -g, inner_options, process) : conjugate_gradient(hessian, -g, inner_options);
      } catch (const Error& e) {
        r.numerical_failure = true;
        r.message = e.what();
      }
      return r;
    };
    // Accepts the step along dv unless it increases the cost beyond round-off; otherwise halves it.
    std::string failure;
    auto line_search = [&](const Vector& dv) {
      double step = 1.0;
      for (int k = 0; k <= options.max_backtracking_steps; ++k, step *= 0.5) {
        const Vector v_try = out.v + step * dv;
        try {
          Linearization trial = cost.linearize(zb + prior.sqrt_multiply(v_try));
          if (trial.cost() <= j + 1e-12 * std::abs(j)) {
            out.v = v_try;
            out.map.emplace(std::move(trial));
            return step;
          }
          failure = format_message("cost ", trial.cost(), " > ", j);
        } catch (const Error& e) {
          failure = e.what();
        }
      }
      return 0.0;
    };
    summary.outer_iterations = outer + 1;
    double step = 0.0;
    Vector dv;
    if (newton) {
      LanczosSolveResult inner = inner_solve(full, nullptr);
      summary.iterations += inner.iterations;
      if (!inner.numerical_failure) {
        dv = inner.x;
        step = line_search(dv);
      }
      if (step > 0.0) {
        out.last_inner.reset();  // the posterior needs Gauss-Newton Ritz pairs: a Newton loop leaves none
        out.last_inner_map.reset();
      } else {
        // Negative curvature, a failed sweep, or no decrease along the Newton direction far from the
        // MAP: this outer loop takes the Gauss-Newton step.
        ++summary.newton_fallbacks;
      }
    }
    if (step == 0.0) {
      std::unique_ptr<Lanczos> process;
      LanczosSolveResult inner =
          inner_solve(gauss_newton, options.posterior == PosteriorMethod::kInnerLanczos ? &process : nullptr);
      summary.iterations += inner.iterations;
      if (inner.numerical_failure) {
        summary.termination_type = TerminationType::kNumericalFailure;
        summary.message = format_message("outer loop ", outer + 1, ": inner solve failed: ", inner.message);
        break;
      }
      dv = inner.x;
      out.last_inner = std::move(process);
      out.last_inner_map = lin;
      step = line_search(dv);
      if (step == 0.0) {
        summary.termination_type = TerminationType::kNoConvergence;
        summary.message = format_message("outer loop ", outer + 1, ": no step along the Gauss-Newton direction ",
                                         "decreases the cost (last trial: ", failure, ")");
        break;
      }
    }
    j = out.map->cost();
    try {
      g = out.map->preconditioned_gradient(out.v);
    } catch (const Error& e) {
      summary.termination_type = TerminationType::kNumericalFailure;
      summary.message = format_message("outer loop ", outer + 1, ": gradient failed: ", e.what());
      summary.final_cost = j;
      break;
    }
    summary.final_cost = j;
    summary.final_gradient_norm = g.norm();
    if (step * dv.norm() <= options.step_tolerance * (out.v.norm() + options.step_tolerance)) {
      summary.termination_type = TerminationType::kConverged;
      summary.message = format_message("|dv| = ", step * dv.norm(), " <= step_tolerance * (|v| + step_tolerance)");
      break;
    }
    if (outer + 1 == options.max_outer_iterations && gradient_converged()) {
      summary.termination_type = TerminationType::kConverged;
      summary.message = format_message("|g| = ", g.norm(), " <= gradient_tolerance * |g0|");
    }
  }
  return out;
}

}  // namespace detail

namespace {

VarResult solve_gauss_newton(const FourDVarCost& cost, const GaussNewtonOptions& options, const char* method,
                             SolverSummary* summary_out) {
  Stopwatch clock;
  SolverSummary summary;
  summary.method = method;
  detail::GaussNewtonOutput gn = detail::run_gauss_newton(cost, options, clock, summary);
  VarResult result;
  const Vector z = cost.control_background() + cost.prior().sqrt_multiply(gn.v);
  detail::finish(cost, gn.map, z, options.posterior, options.low_rank, gn.last_inner.get(),
                 options.posterior_lanczos_vectors, result, summary);
  detail::record_work(cost, clock, summary);
  if (summary_out) *summary_out = summary;
  return result;
}


}  // namespace

IncrementalFourDVar::IncrementalFourDVar(Options options) : options_(std::move(options)) {
  with_prefix("IncrementalFourDVar: options.", [&] { options_.validate(); });
}

VarResult IncrementalFourDVar::solve(const AssimilationWindow& window, SolverSummary* summary) const {
  const FourDVarCost cost(window);
  return solve_gauss_newton(cost, options_, "incremental_4dvar", summary);
}

ThreeDVar::ThreeDVar(Options options) : options_(std::move(options)) {
  with_prefix("ThreeDVar: options.", [&] { options_.validate(); });
}

VarResult ThreeDVar::solve(const AssimilationWindow& window, SolverSummary* summary) const {
  for (std::size_t i = 0; i < window.observations.size(); ++i) {
    if (window.observations[i].step != 0) {
      throw InvalidArgument(format_message("ThreeDVar: observations[", i, "].step = ", window.observations[i].step,
                                           " must be 0 (3D-Var uses the observations of one time)"));
    }
  }
  const FourDVarCost cost(window);
  return solve_gauss_newton(cost, options_, "3dvar", summary);
}

void WeakFourDVarOptions::validate() const {
  if (subwindow_steps < 1) {
    throw InvalidArgument(format_message("subwindow_steps = ", subwindow_steps, " must be at least 1"));
  }
  GaussNewtonOptions::validate();
}

WeakFourDVar::WeakFourDVar(std::shared_ptr<const Covariance> q, Options options)
    : q_(std::move(q)), options_(std::move(options)) {
  if (!q_) throw InvalidArgument("WeakFourDVar: model-error covariance q is null");
  with_prefix("WeakFourDVar: options.", [&] { options_.validate(); });
}

VarResult WeakFourDVar::solve(const AssimilationWindow& window, SolverSummary* summary) const {
  const FourDVarCost cost(window, q_, options_.subwindow_steps);
  return solve_gauss_newton(cost, options_, "weak_4dvar", summary);
}

std::vector<Vector> WeakFourDVar::forcing(const VarResult& result, Index n) {
  if (n < 1 || result.control.size() % n != 0) {
    throw InvalidArgument(format_message("WeakFourDVar::forcing: control size ", result.control.size(),
                                         " is not a multiple of n = ", n));
  }
  std::vector<Vector> eta;
  for (Index j = 1; j < result.control.size() / n; ++j) eta.push_back(result.control.segment(j * n, n));
  return eta;
}

}  // namespace varflow
