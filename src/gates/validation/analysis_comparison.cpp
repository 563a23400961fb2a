#include "varflow/validation/analysis_comparison.h"

#include <cassert>
#include <cmath>
#include <sstream>

#include "varflow/core/error.h"
#include "varflow/core/stopwatch.h"
#include "varflow/covariance/covariances.h"
#include "varflow/obs/operators.h"
#include "varflow/var/strong_4dvar.h"

namespace varflow {

namespace {

double rmse(const Vector& a, const Vector& b) {
  return (a - b).norm() / std::sqrt(static_cast<double>(a.size()));
}

Index observed_points(Index n, Index stride) { return (n + stride - 1) / stride; }

}  // namespace

void WindowOptions::validate() const {
  check_at_least("WindowOptions", "steps", steps, 1);
  check_at_least("WindowOptions", "obs_every", obs_every, 1);
  check_at_least("WindowOptions", "obs_stride", obs_stride, 1);
  check_at_least("WindowOptions", "step_multiple", step_multiple, 1);
  check_at_least("WindowOptions", "resolved", resolved, 0);
  if (obs_every > steps) {
    throw InvalidArgument(format_message("WindowOptions: obs_every = ", obs_every, " must not exceed steps = ", steps));
  }
  for (auto [name, v] : {std::pair{"background_sd", background_sd}, std::pair{"obs_sd", obs_sd},
                         std::pair{"fast_background_sd", fast_background_sd}}) {
    if (!(v > 0.0) || !std::isfinite(v)) {
      throw InvalidArgument(format_message("WindowOptions: ", name, " = ", v, " must be positive"));
    }
  }
}

void HeldOutWindows::validate() const {
  options.validate();
  const Index n = truth.rows(), w = truth.cols();
  if (options.resolved > n) {
    throw InvalidArgument(format_message("HeldOutWindows: options.resolved = ", options.resolved,
                                         " exceeds the state size ", n));
  }
  if (resolved_size() == n && options.step_multiple != 1) {
    throw InvalidArgument(format_message("HeldOutWindows: options.step_multiple = ", options.step_multiple,
                                         " needs a reduced model (options.resolved below the state size ", n, ")"));
  }
  const Index rows = options.slots() * observed_points(resolved_size(), options.obs_stride);
  if (resolved_size() < options.obs_stride || w < 1) {
    throw InvalidArgument(format_message("HeldOutWindows: truth is ", n, " x ", w, "; need at least one window of ",
                                         options.obs_stride, " or more points"));
  }
  if (background.rows() != n || background.cols() != w) {
    throw InvalidArgument(format_message("HeldOutWindows: background is ", background.rows(), " x ", background.cols(),
                                         ", expected ", n, " x ", w));
  }
  if (observations.rows() != rows || observations.cols() != w) {
    throw InvalidArgument(format_message("HeldOutWindows: observations is ", observations.rows(), " x ",
                                         observations.cols(), ", expected ", rows, " x ", w));
  }
}

AssimilationWindow HeldOutWindows::window(Index w, std::shared_ptr<const Model> model) const {
  assert(w >= 0 && w < count());
  const Index n = state_size(), nr = resolved_size();
  const Index size = model ? model->state_size() : 0;
  if (size != n && size != nr) {
    throw InvalidArgument(format_message("HeldOutWindows::window: the model has state size ", size,
                                         "; the windows need ", n, " (physics) or ", nr, " (resolved components)"));
  }
  const bool full = size == n;
  const Index multiple = full ? options.step_multiple : 1;
  const auto h = std::make_shared<SubsetObservation>(
      SubsetObservation(size, SubsetObservation::every(nr, options.obs_stride).indices()));
  const Index m = h->obs_size();
  const auto r = std::make_shared<DiagonalCovariance>(Vector::Constant(m, options.obs_sd * options.obs_sd));
  Vector variance = Vector::Constant(size, options.background_sd * options.background_sd);
  variance.tail(size - nr).setConstant(options.fast_background_sd * options.fast_background_sd);
  AssimilationWindow window;
  window.background = background.col(w).head(size);
  window.b = std::make_shared<DiagonalCovariance>(variance);
  window.model = std::move(model);
  window.steps = options.steps * multiple;
  for (Index slot = 0; slot < options.slots(); ++slot) {
    Observations o;
    o.step = slot * options.obs_every * multiple;
    o.values = observations.col(w).segment(slot * m, m);
    o.op = h;
    o.r = r;
    window.observations.push_back(std::move(o));
  }
  return window;
}

HeldOutWindows make_held_out_windows(const Model& physics, const Matrix& truths, const WindowOptions& options,
                                     Rng& rng) {
  options.validate();
  const Index n = truths.rows();
  if (n != physics.state_size()) {
    throw InvalidArgument(format_message("make_held_out_windows: truths have ", n, " rows, the model state size is ",
                                         physics.state_size()));
  }
  if (options.resolved > n) {
    throw InvalidArgument(format_message("make_held_out_windows: options.resolved = ", options.resolved,
                                         " exceeds the model state size ", n));
  }
  const Index nr = options.resolved > 0 ? options.resolved : n;
  const SubsetObservation h(n, SubsetObservation::every(nr, options.obs_stride).indices());
  const Index m = h.obs_size();
  Vector sd = Vector::Constant(n, options.background_sd);
  sd.tail(n - nr).setConstant(options.fast_background_sd);
  HeldOutWindows out;
  out.options = options;
  out.truth = truths;
  out.background.resize(n, truths.cols());
  out.observations.resize(options.slots() * m, truths.cols());
  Vector y;
  for (Index w = 0; w < truths.cols(); ++w) {
    out.background.col(w) = truths.col(w) + sd.cwiseProduct(rng.normal_vector(n));
    Vector x = truths.col(w);
    for (Index k = 0; k <= options.steps; ++k) {
      if (k % options.obs_every == 0) {
        h.apply(x, y);
        out.observations.col(w).segment((k / options.obs_every) * m, m) = y + options.obs_sd * rng.normal_vector(m);
      }
      if (k < options.steps) {
        for (Index s = 0; s < options.step_multiple; ++s) physics.step(x);
      }
    }
  }
  out.validate();
  return out;
}

Index OracleAnalyses::converged_count() const {
  Index c = 0;
  for (bool b : converged) c += b ? 1 : 0;
  return c;
}

std::shared_ptr<const Posterior> OracleAnalyses::posterior(Index w, Index resolved) const {
  assert(w >= 0 && w < mean.cols());
  if (!converged[static_cast<std::size_t>(w)]) return nullptr;
  const Index k = resolved > 0 ? resolved : mean.rows();
  const Matrix& c = covariance[static_cast<std::size_t>(w)];
  return std::make_shared<GaussianPosterior>(Vector(mean.col(w).head(k)),
                                             std::make_shared<DenseCovariance>(Matrix(c.topLeftCorner(k, k))));
}

OracleAnalyses solve_oracle(const HeldOutWindows& windows, std::shared_ptr<const Model> physics) {
  windows.validate();
  if (!physics || physics->state_size() != windows.state_size()) {
    throw InvalidArgument("solve_oracle: the physics must be a non-null model of the windows' state size");
  }
  const Index n = windows.state_size(), count = windows.count();
  const StrongFourDVar solver;
  OracleAnalyses out;
  out.mean = Matrix::Zero(n, count);
  out.covariance.resize(static_cast<std::size_t>(count));
  out.converged.assign(static_cast<std::size_t>(count), false);
  const Stopwatch clock;
  for (Index w = 0; w < count; ++w) {
    SolverSummary summary;
    const VarResult r = solver.solve(windows.window(w, physics), &summary);
    out.mean.col(w) = r.analysis;
    if (!summary.converged() || !r.posterior) continue;
    out.covariance[static_cast<std::size_t>(w)] = r.posterior->covariance()->dense();
    out.converged[static_cast<std::size_t>(w)] = true;
  }
  out.seconds = clock.seconds();
  for (Index w = 0; w < count; ++w) {
    // Over the resolved components (for a multi-scale physics, the ones observed and compared).
    const Index k = windows.resolved_size();
    if (out.converged[static_cast<std::size_t>(w)]) {
      out.mean_rmse += rmse(out.mean.col(w).head(k), windows.truth.col(w).head(k));
    }
  }
  if (out.converged_count() > 0) out.mean_rmse /= static_cast<double>(out.converged_count());
  return out;
}

std::string AnalysisComparison::report() const {
  std::ostringstream os;
  os.precision(4);
  os << "emulator-based analyses: " << (passed() ? "PASS" : "FAIL") << " over " << windows << " windows"
     << (failed_solves ? format_message(" (", failed_solves, " solves did not converge)") : std::string()) << "\n";
  os << "  wall clock: physics " << physics_seconds << " s, emulator " << emulator_seconds << " s, speed-up "
     << speedup() << "\n";
  os << "  one TL/AD sweep: physics " << physics_steps << " steps of " << physics_size << " variables, model "
     << model_steps << " steps of " << model_size << " variables\n";
  os << "  analysis RMSE vs truth: physics " << mean_physics_rmse << ", emulator " << mean_emulator_rmse << "\n";
  if (agreement.events == 0) {
    os << "  no window gave both analyses with a posterior: nothing to compare\n";
  } else {
    os << agreement.report();
  }
  return os.str();
}

AnalysisComparison compare_with_oracle(const HeldOutWindows& windows, const OracleAnalyses& oracle,
                                       std::shared_ptr<const Model> physics, std::shared_ptr<const Model> model,
                                       const AgreementOptions& agreement) {
  windows.validate();
  const Index n = windows.state_size(), nr = windows.resolved_size();
  if (!physics || !model || physics->state_size() != n ||
      (model->state_size() != n && model->state_size() != nr)) {
    throw InvalidArgument(format_message("compare_with_oracle: physics and model must be non-null models of the "
                                         "windows' state size ", n, " (the model may have the resolved size ", nr,
                                         ")"));
  }
  // The agreement is on the components both analyses have.
  const Index compared = model->state_size();
  if (oracle.mean.cols() != windows.count() || oracle.mean.rows() != n ||
      static_cast<Index>(oracle.converged.size()) != windows.count()) {
    throw InvalidArgument(format_message("compare_with_oracle: the oracle has ", oracle.mean.cols(),
                                         " analyses for ", windows.count(), " windows"));
  }
  with_context("compare_with_oracle: agreement", [&] { agreement.validate(); });
  const StrongFourDVar solver;
  AnalysisComparison out;
  out.windows = windows.count();
  out.physics_size = n;
  out.model_size = compared;
  out.physics_steps = windows.window(0, physics).steps;
  out.model_steps = windows.window(0, model).steps;
  std::vector<AgreementEvent> events;
  for (Index w = 0; w < windows.count(); ++w) {
    const Stopwatch physics_clock;
    (void)solver.solve(windows.window(w, physics));  // timing only: the oracle is `oracle`
    out.physics_seconds += physics_clock.seconds();
    SolverSummary summary;
    const Stopwatch model_clock;
    const VarResult r = solver.solve(windows.window(w, model), &summary);
    out.emulator_seconds += model_clock.seconds();
    const auto reference = oracle.posterior(w, compared);
    if (!reference || !summary.converged() || !r.posterior) {
      ++out.failed_solves;
      continue;
    }
    const Vector truth = windows.truth.col(w).head(compared);
    out.mean_physics_rmse += rmse(reference->mean(), truth);
    out.mean_emulator_rmse += rmse(r.analysis, truth);
    events.push_back({format_message("window_", w), r.posterior, reference});
  }
  const Index good = static_cast<Index>(events.size());
  if (good > 0) {
    out.mean_physics_rmse /= static_cast<double>(good);
    out.mean_emulator_rmse /= static_cast<double>(good);
    out.agreement = posterior_agreement_gate(events, agreement);
  }
  return out;
}

void AnalysisComparisonOptions::validate() const {
  check_at_least("AnalysisComparisonOptions", "windows", windows, 1);
  check_at_least("AnalysisComparisonOptions", "spinup", spinup, 0);
  window.validate();
  with_context("AnalysisComparisonOptions: agreement", [&] { agreement.validate(); });
}

AnalysisComparison compare_analyses(std::shared_ptr<const Model> physics, std::shared_ptr<const Model> emulator,
                                    const AnalysisComparisonOptions& options, Rng& rng) {
  options.validate();
  if (!physics || !emulator || physics->state_size() != emulator->state_size()) {
    throw InvalidArgument("compare_analyses: physics and emulator must be non-null models of the same state size");
  }
  const Index n = physics->state_size();
  Matrix truths(n, options.windows);
  for (Index w = 0; w < options.windows; ++w) {
    Vector truth = Vector::Constant(n, 8.0) + rng.normal_vector(n);
    for (Index k = 0; k < options.spinup; ++k) physics->step(truth);
    truths.col(w) = truth;
  }
  const HeldOutWindows windows = make_held_out_windows(*physics, truths, options.window, rng);
  const OracleAnalyses oracle = solve_oracle(windows, physics);
  return compare_with_oracle(windows, oracle, physics, emulator, options.agreement);
}

}  // namespace varflow
