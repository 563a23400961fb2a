#include "varflow/var/summary.h"

#include <sstream>

#include "varflow/core/enum_text.h"
#include "varflow/core/error.h"

namespace varflow {

namespace {
constexpr EnumNames<TerminationType, 3> kTerminationNames{{{TerminationType::kConverged, "converged"},
                                                           {TerminationType::kNoConvergence, "no_convergence"},
                                                           {TerminationType::kNumericalFailure, "numerical_failure"}}};
constexpr EnumNames<PosteriorMethod, 4> kPosteriorMethodNames{{{PosteriorMethod::kNone, "none"},
                                                               {PosteriorMethod::kInnerLanczos, "inner_lanczos"},
                                                               {PosteriorMethod::kDense, "dense"},
                                                               {PosteriorMethod::kLowRank, "low_rank"}}};
}  // namespace

std::string to_string(TerminationType type) { return std::string(to_text(kTerminationNames, type)); }

bool termination_type_from_string(std::string_view name, TerminationType* type) {
  return find_value(kTerminationNames, name, type);
}

std::string to_string(PosteriorMethod method) { return std::string(to_text(kPosteriorMethodNames, method)); }

bool posterior_method_from_string(std::string_view name, PosteriorMethod* method) {
  return find_value(kPosteriorMethodNames, name, method);
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
