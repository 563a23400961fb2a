#include "varflow/emulator/analysis_comparison.h"

#include <chrono>
#include <cmath>
#include <sstream>

#include "varflow/core/error.h"
#include "varflow/covariance/covariances.h"
#include "varflow/obs/operators.h"
#include "varflow/var/strong_4dvar.h"

namespace varflow::emulator {

void AnalysisComparisonOptions::validate() const {
  check_at_least("AnalysisComparisonOptions", "windows", windows, 1);
  check_at_least("AnalysisComparisonOptions", "steps", steps, 1);
  check_at_least("AnalysisComparisonOptions", "obs_every", obs_every, 1);
  check_at_least("AnalysisComparisonOptions", "spinup", spinup, 0);
  if (obs_every > steps) {
    throw InvalidArgument(format_message("AnalysisComparisonOptions: obs_every = ", obs_every,
                                         " must not exceed steps = ", steps));
  }
  for (auto [name, v] : {std::pair{"background_sd", background_sd}, std::pair{"obs_sd", obs_sd}}) {
    if (!(v > 0.0) || !std::isfinite(v)) {
      throw InvalidArgument(format_message("AnalysisComparisonOptions: ", name, " = ", v, " must be positive"));
    }
  }
  std::string error;
  if (!agreement.is_valid(&error)) throw InvalidArgument("AnalysisComparisonOptions: agreement: " + error);
}

std::string AnalysisComparison::report() const {
  std::ostringstream os;
  os.precision(4);
  os << "emulator-based analyses: " << (passed() ? "PASS" : "FAIL") << " over " << windows << " windows"
     << (failed_solves ? format_message(" (", failed_solves, " solves did not converge)") : std::string()) << "\n";
  os << "  wall clock: physics " << physics_seconds << " s, emulator " << emulator_seconds << " s, speed-up "
     << speedup() << "\n";
  os << "  analysis RMSE vs truth: physics " << mean_physics_rmse << ", emulator " << mean_emulator_rmse << "\n";
  os << agreement.report();
  return os.str();
}

AnalysisComparison compare_analyses(std::shared_ptr<const Model> physics, std::shared_ptr<const Model> emulator,
                                    const AnalysisComparisonOptions& options, Rng& rng) {
  options.validate();
  if (!physics || !emulator || physics->state_size() != emulator->state_size()) {
    throw InvalidArgument("compare_analyses: physics and emulator must be non-null models of the same state size");
  }
  const Index n = physics->state_size();
  const auto b = std::make_shared<DiagonalCovariance>(Vector::Constant(n, options.background_sd * options.background_sd));
  const auto r = std::make_shared<DiagonalCovariance>(Vector::Constant(n, options.obs_sd * options.obs_sd));
  const auto h = std::make_shared<IdentityObservation>(n);
  StrongFourDVar solver;
  AnalysisComparison out;
  out.windows = options.windows;
  std::vector<AgreementEvent> events;
  using clock = std::chrono::steady_clock;
  for (Index w = 0; w < options.windows; ++w) {
    Vector truth = Vector::Constant(n, 8.0) + rng.normal_vector(n);
    for (Index k = 0; k < options.spinup; ++k) physics->step(truth);
    AssimilationWindow window;
    window.background = truth + options.background_sd * rng.normal_vector(n);
    window.b = b;
    window.steps = options.steps;
    Vector x = truth;
    for (Index k = 1; k <= options.steps; ++k) {
      physics->step(x);
      if (k % options.obs_every != 0) continue;
      Observations o;
      o.step = k;
      o.values = x + options.obs_sd * rng.normal_vector(n);
      o.op = h;
      o.r = r;
      window.observations.push_back(std::move(o));
    }
    SolverSummary sp, se;
    window.model = physics;
    auto t0 = clock::now();
    const VarResult rp = solver.solve(window, &sp);
    auto t1 = clock::now();
    window.model = emulator;
    const VarResult re = solver.solve(window, &se);
    auto t2 = clock::now();
    out.physics_seconds += std::chrono::duration<double>(t1 - t0).count();
    out.emulator_seconds += std::chrono::duration<double>(t2 - t1).count();
    if (!sp.converged() || !se.converged() || !rp.posterior || !re.posterior) {
      ++out.failed_solves;
      continue;
    }
    out.mean_physics_rmse += (rp.analysis - truth).norm() / std::sqrt(static_cast<double>(n));
    out.mean_emulator_rmse += (re.analysis - truth).norm() / std::sqrt(static_cast<double>(n));
    events.push_back({format_message("window_", w), re.posterior, rp.posterior});
  }
  const Index good = static_cast<Index>(events.size());
  if (good > 0) {
    out.mean_physics_rmse /= static_cast<double>(good);
    out.mean_emulator_rmse /= static_cast<double>(good);
    out.agreement = posterior_agreement_gate(events, options.agreement);
  }
  return out;
}

}  // namespace varflow::emulator
