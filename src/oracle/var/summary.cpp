#include "varflow/var/summary.h"

#include <sstream>

#include "varflow/core/error.h"

namespace varflow {

std::string to_string(TerminationType type) {
  switch (type) {
    case TerminationType::kConverged: return "converged";
    case TerminationType::kNoConvergence: return "no_convergence";
    case TerminationType::kNumericalFailure: return "numerical_failure";
  }
  return "unknown";
}

bool termination_type_from_string(std::string_view name, TerminationType* type) {
  for (TerminationType t : {TerminationType::kConverged, TerminationType::kNoConvergence,
                            TerminationType::kNumericalFailure}) {
    if (name == to_string(t)) {
      *type = t;
      return true;
    }
  }
  return false;
}

std::string to_string(PosteriorMethod method) {
  switch (method) {
    case PosteriorMethod::kNone: return "none";
    case PosteriorMethod::kInnerLanczos: return "inner_lanczos";
    case PosteriorMethod::kDense: return "dense";
    case PosteriorMethod::kLowRank: return "low_rank";
  }
  return "unknown";
}

bool posterior_method_from_string(std::string_view name, PosteriorMethod* method) {
  for (PosteriorMethod m : {PosteriorMethod::kNone, PosteriorMethod::kInnerLanczos, PosteriorMethod::kDense,
                            PosteriorMethod::kLowRank}) {
    if (name == to_string(m)) {
      *method = m;
      return true;
    }
  }
  return false;
}

std::string SolverSummary::BriefReport() const {
  return format_message(method, ": ", to_string(termination_type), ", iterations ", iterations,
                        (outer_iterations > 0 ? format_message(" (", outer_iterations, " outer)") : std::string()),
                        ", cost ", initial_cost, " -> ", final_cost, ", |g| ", initial_gradient_norm, " -> ",
                        final_gradient_norm, ", sweeps TL ", num_tl_sweeps, " AD ", num_ad_sweeps, ", ",
                        wall_time_seconds, " s");
}

std::string SolverSummary::FullReport() const {
  std::ostringstream os;
  os.precision(12);
  os << "method                 " << method << "\n"
     << "termination            " << to_string(termination_type) << "\n"
     << "message                " << message << "\n"
     << "iterations             " << iterations << "\n"
     << "outer iterations       " << outer_iterations << "\n"
     << "initial cost           " << initial_cost << "\n"
     << "final cost             " << final_cost << "\n"
     << "initial |gradient|     " << initial_gradient_norm << "\n"
     << "final |gradient|       " << final_gradient_norm << "\n"
     << "forward runs           " << num_forward_runs << "\n"
     << "TL sweeps              " << num_tl_sweeps << "\n"
     << "AD sweeps              " << num_ad_sweeps << "\n"
     << "wall time (s)          " << wall_time_seconds << "\n"
     << "posterior              " << to_string(posterior_method) << " (rank " << posterior_rank << ")"
     << (posterior_message.empty() ? std::string() : ": " + posterior_message) << "\n";
  return os.str();
}

}  // namespace varflow
