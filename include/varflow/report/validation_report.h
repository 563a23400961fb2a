#pragma once
// Validation of a trained amortized posterior against the oracle of its problem, and the report of
// the result (report.json and a self-contained report.html). See design/report.md.
//
//   AmortizedPosterior q = AmortizedPosterior::load("model.nc");
//   ValidationOptions options;                       // events, draws, gate options
//   Rng rng(seed);
//   ValidationReport r = validate_model(q, options, rng, progress);
//   write_report(r, "out");                          // out/report.json, out/report.html
//   return r.passed() ? 0 : 1;
//
// The oracle per problem (the problem label stored in the model file):
//   linear-gaussian  the exact posterior N(y pv/(pv+nv), pv nv/(pv+nv) I) and J = pv/(pv+nv) I;
//   two-moons        a quadrature posterior on a grid of the standardised state (exact prior density
//                    times the Gaussian likelihood); J by central differences of its mean in y;
//   lorenz96         strong-constraint incremental 4D-Var over the problem's window with the
//                    problem's prior as background (climatology: its mean and covariance, a Gaussian
//                    approximation; gaussian prior: exactly c and prior_sd^2 I); Laplace posterior
//                    (exact Gauss-Newton covariance); J by ObservationSensitivity (Gauss-Newton), by
//                    central differences of the MAP in y, or by ExactObservationSensitivity (full
//                    Hessian) at the MAP (ValidationOptions::window_jacobian).
// The gates are the library's (validation/gates.h): nothing is re-implemented here.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "varflow/amortized/amortized_posterior.h"
#include "varflow/core/communicator.h"
#include "varflow/core/random.h"
#include "varflow/core/types.h"
#include "varflow/validation/gates.h"

namespace varflow::report {

class Oracle;  // report/oracles.h

// How the Lorenz-96 oracle forms J = d(MAP)/dy.
//   gauss-newton     ObservationSensitivity at the MAP: P_a G^T R^-1 (adjoint and the Gauss-Newton
//                    posterior covariance). Omits the second-derivative terms of the Hessian, so it
//                    is a few to ~20% off the derivative of the MAP at obs_noise ~ 1.
//   map-differences  the full n x m matrix by central differences of the 4D-Var MAP in each observed
//                    y component (2 solves per observation, step map_difference_step x obs_noise):
//                    the derivative of the oracle's own mean, accurate to the solver tolerance.
//   exact            ExactObservationSensitivity at the MAP: the implicit-function derivative with the
//                    full Hessian (second-order adjoints), J v = H^-1 G'^T R^-1 v by CG; the
//                    derivative of the MAP without differencing, a few full-Hessian products per J v.
enum class OracleJacobian { kGaussNewton, kMapDifferences, kExact };
std::string to_string(OracleJacobian v);  // gauss-newton | map-differences | exact
OracleJacobian oracle_jacobian_from_string(const std::string& s, const std::string& key = "window_jacobian");

struct ValidationOptions {
  Index events = 20;            // held-out events for posterior agreement
  Index posterior_draws = 1000; // draws of a sample-based fast posterior per event (>= 400, gates.md)
  Index jacobian_cases = 3;     // events at which J is probed (the first ones)
  Index grid_points = 301;      // two-moons: grid points per axis on [-grid_extent, grid_extent]^2
  double grid_extent = 3.5;     // two-moons: half-width of the grid in standardised units
  double jacobian_step = 1e-2;  // two-moons: central-difference step in y for the oracle's J
  Index prior_variance_draws = 20000;  // simulated states for the prior variances (SBC sharpness)
  PromotionOptions gates;       // thresholds of the three gates (defaults: design/gates.md)
  amortized::WindowProblemOptions window_problem;  // the problem the model was trained on (not stored in the model)
  OracleJacobian window_jacobian = OracleJacobian::kExact;  // the Lorenz-96 oracle's J (see above)
  double map_difference_step = 1e-2;  // map-differences: step in y, in units of lorenz96.obs_noise
  // False with a message naming the option, its value and the rule.
  void validate() const;  // InvalidArgument naming the option and value
};

// Per held-out event: both sides' means and marginal standard deviations (for the report's plot).
struct EventComparison {
  std::string name;
  Vector y;
  Vector fast_mean, fast_std, oracle_mean, oracle_std;
};

struct ValidationReport {
  std::string model_path, problem, problem_description, head, oracle_description;
  // AmortizedPosterior::checksum() of the model validated: ties the report to that model file (a
  // cycle's amortized.validation checks it).
  std::string model_checksum;
  std::uint64_t seed = 0;
  std::string version;
  amortized::ProblemShape shape;
  PromotionDecision decision;
  std::vector<EventComparison> events;
  nn::TrainingSummary training;
  bool training_stored = false;  // the model file holds loss curves
  std::vector<std::string> notes;  // what was not checked, and why
  double seconds = 0.0;
  bool passed() const { return decision.promote(); }
};

using ProgressCallback = std::function<void(const std::string& line)>;

// Runs the three gates for q against the oracle of q.problem(). Throws InvalidArgument for invalid
// options, an unknown problem label or a model whose shape does not fit its problem. A candidate
// that answers NaN fails its gates (reported), it is not an error.
ValidationReport validate_model(amortized::AmortizedPosterior& q, const ValidationOptions& options, Rng& rng,
                                const ProgressCallback& progress = {});
// The same against a given oracle (e.g. a user's, through the C ABI's call-backs) instead of the
// registered oracle of q.problem(). Throws InvalidArgument when the oracle's simulator has another
// shape than q.
ValidationReport validate_model(amortized::AmortizedPosterior& q, Oracle& oracle, const ValidationOptions& options,
                                Rng& rng, const ProgressCallback& progress = {});
// The same over the ranks of comm (design/parallel.md): the held-out events (fast posterior, oracle
// solve, oracle J) and the SBC simulations are split into blocks of items, each item with its own
// random stream, and gathered in item order, so the report is the same for any number of ranks.
// Every rank calls it with the same arguments and gets the whole report; progress is called on the
// root only. A rank whose item fails (an exception, or a non-finite oracle mean, spread or J: a
// NumericalError) stops every rank with a message naming the rank and the event or simulation.
ValidationReport validate_model(amortized::AmortizedPosterior& q, const ValidationOptions& options, Rng& rng,
                                const ProgressCallback& progress, const Communicator& comm);
// Against a given oracle, over the ranks of comm.
ValidationReport validate_model(amortized::AmortizedPosterior& q, Oracle& oracle, const ValidationOptions& options,
                                Rng& rng, const ProgressCallback& progress, const Communicator& comm);

// The report as JSON (schema in design/formats.md) and as a self-contained HTML page (inline SVG).
std::string report_json(const ValidationReport& r);
std::string report_html(const ValidationReport& r);
// Creates `dir` if missing and writes dir/report.json and dir/report.html atomically.
void write_report(const ValidationReport& r, const std::filesystem::path& dir);

}  // namespace varflow::report
