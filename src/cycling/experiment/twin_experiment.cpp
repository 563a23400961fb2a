#include "varflow/experiment/twin_experiment.h"

#include <cmath>
#include <limits>
#include <sstream>

#include "varflow/core/enum_text.h"
#include "varflow/core/error.h"
#include "varflow/core/random.h"
#include "varflow/covariance/covariances.h"
#include "varflow/model/lorenz96.h"
#include "varflow/obs/operators.h"
#include "varflow/var/window.h"

namespace varflow {

namespace {
constexpr EnumNames<VarMethod, 4> kVarMethodNames{{{VarMethod::kStrong4DVar, "strong_4dvar"},
                                                   {VarMethod::kIncremental4DVar, "incremental_4dvar"},
                                                   {VarMethod::kWeak4DVar, "weak_4dvar"},
                                                   {VarMethod::k3DVar, "3dvar"}}};
constexpr EnumNames<BackgroundCovarianceType, 2> kBackgroundCovarianceNames{
    {{BackgroundCovarianceType::kScaledIdentity, "scaled_identity"},
     {BackgroundCovarianceType::kPeriodicGaussian, "periodic_gaussian"}}};
}  // namespace

std::string to_string(VarMethod method) { return std::string(to_text(kVarMethodNames, method)); }

bool var_method_from_string(std::string_view name, VarMethod* method) {
  return find_value(kVarMethodNames, name, method);
}

std::string to_string(BackgroundCovarianceType type) { return std::string(to_text(kBackgroundCovarianceNames, type)); }

bool background_covariance_type_from_string(std::string_view name, BackgroundCovarianceType* type) {
  return find_value(kBackgroundCovarianceNames, name, type);
}

void TwinExperimentConfig::validate() const {
  const char* w = "TwinExperimentConfig";
  if (!model) throw InvalidArgument("TwinExperimentConfig: model is null");
  const Index n = model->state_size();
  if (truth_start.size() != 0) {
    check_size(w, "truth_start", truth_start.size(), n);
    check_finite(w, "truth_start", truth_start);
  }
  check_at_least(w, "spin_up_steps", spin_up_steps, 0);
  for (std::size_t i = 0; i < observed_variables.size(); ++i) {
    if (observed_variables[i] < 0 || observed_variables[i] >= n) {
      throw InvalidArgument(format_message(w, ": observed_variables[", i, "] = ", observed_variables[i],
                                           " is outside [0, ", n, ")"));
    }
  }
  check_at_least(w, "obs_every_steps", obs_every_steps, 1);
  check_positive(w, "obs_error_variance", obs_error_variance);
  check_positive(w, "b_variance", b_variance);
  if (b_type == BackgroundCovarianceType::kPeriodicGaussian) {
    check_positive(w, "b_length_scale", b_length_scale);
    if (!(b_nugget >= 0.0 && b_nugget < 1.0)) {
      throw InvalidArgument(format_message(w, ": b_nugget = ", b_nugget, " must be in [0, 1)"));
    }
  }
  check_nonnegative(w, "initial_background_std", initial_background_std);
  check_at_least(w, "window_steps", window_steps, 1);
  check_at_least(w, "cycles", cycles, 1);
  check_at_least(w, "burn_in", burn_in, 0);
  if (burn_in >= cycles) {
    throw InvalidArgument(format_message(w, ": burn_in = ", burn_in, " must be less than cycles = ", cycles));
  }
  switch (method) {
    case VarMethod::kStrong4DVar:
      with_prefix(format_message(w, ": strong."), [&] { strong.validate(); });
      break;
    case VarMethod::kIncremental4DVar:
      with_prefix(format_message(w, ": incremental."), [&] { incremental.validate(); });
      break;
    case VarMethod::kWeak4DVar:
      with_prefix(format_message(w, ": weak."), [&] { weak.validate(); });
      check_positive(w, "model_error_variance", model_error_variance);
      break;
    case VarMethod::k3DVar:
      with_prefix(format_message(w, ": incremental."), [&] { incremental.validate(); });
      if (window_steps != obs_every_steps) {
        throw InvalidArgument(format_message(w, ": window_steps = ", window_steps, " must equal obs_every_steps = ",
                                             obs_every_steps, " for 3dvar (one observation time per window)"));
      }
      break;
  }
}

TwinExperimentConfig default_twin_experiment_config() {
  TwinExperimentConfig c;
  c.model = std::make_shared<Lorenz96>(40, 8.0, 0.05);
  c.truth_start = Vector::Constant(40, 8.0);
  c.truth_start[19] += 0.01;
  c.spin_up_steps = 1000;
  c.obs_every_steps = 4;
  c.obs_error_variance = 1.0;
  // B = 0.4 I: measured best among scaled identities and periodic Gaussians (design/solvers.md).
  c.b_type = BackgroundCovarianceType::kScaledIdentity;
  c.b_variance = 0.4;
  c.window_steps = 8;
  c.cycles = 100;
  c.burn_in = 20;
  c.method = VarMethod::kIncremental4DVar;
  // Cycling needs a good MAP, not one converged to round-off: a few outer loops suffice once the
  // background is close (each later cycle starts within the basin).
  c.incremental.max_outer_iterations = 10;
  c.incremental.gradient_tolerance = 1e-6;
  c.incremental.inner_tolerance = 1e-6;
  c.strong.gradient_tolerance = 1e-6;
  c.weak.max_outer_iterations = 10;
  c.weak.gradient_tolerance = 1e-6;
  c.weak.inner_tolerance = 1e-6;
  c.weak.subwindow_steps = 4;
  // Spreads from the full Gauss-Newton posterior: extend the last inner Lanczos process to the whole
  // control space (capped at the control size), as the inner Krylov space alone leaves directions
  // at their prior variance.
  c.incremental.posterior_lanczos_vectors = 1 << 20;
  c.weak.posterior_lanczos_vectors = 1 << 20;
  return c;
}

namespace {

double rms(const Vector& v) { return std::sqrt(v.squaredNorm() / static_cast<double>(v.size())); }

std::shared_ptr<const Covariance> make_b(const TwinExperimentConfig& c, Index n) {
  if (c.b_type == BackgroundCovarianceType::kScaledIdentity) {
    return std::make_shared<DiagonalCovariance>(DiagonalCovariance::scaled_identity(n, c.b_variance));
  }
  return std::make_shared<PeriodicGaussianCovariance>(n, c.b_variance, c.b_length_scale, 1.0, c.b_nugget);
}

VarResult solve(const TwinExperimentConfig& c, const AssimilationWindow& window, SolverSummary* summary) {
  switch (c.method) {
    case VarMethod::kStrong4DVar: return StrongFourDVar(c.strong).solve(window, summary);
    case VarMethod::kIncremental4DVar: return IncrementalFourDVar(c.incremental).solve(window, summary);
    case VarMethod::kWeak4DVar: {
      auto q = std::make_shared<DiagonalCovariance>(
          DiagonalCovariance::scaled_identity(window.state_size(), c.model_error_variance));
      return WeakFourDVar(q, c.weak).solve(window, summary);
    }
    case VarMethod::k3DVar: return ThreeDVar(c.incremental).solve(window, summary);
  }
  return {};
}

void check_state(const Vector& x, const char* what, Index step) {
  if (!x.allFinite()) {
    throw NumericalError(format_message("run_twin_experiment: the ", what, " is not finite at global step ", step));
  }
}

}  // namespace

void TwinData::validate(Index n, Index total_steps) const {
  const char* w = "TwinData";
  if (!truth.empty()) {
    check_size(w, "truth (number of states)", static_cast<Index>(truth.size()), total_steps + 1);
    for (std::size_t k = 0; k < truth.size(); ++k) {
      check_size(w, format_message("truth[", k, "]"), truth[k].size(), n);
    }
  }
  if (observed_variables.empty()) throw InvalidArgument("TwinData: observed_variables is empty");
  const Index m = static_cast<Index>(observed_variables.size());
  for (Index j = 0; j < m; ++j) {
    const Index v = observed_variables[static_cast<std::size_t>(j)];
    if (v < 0 || v >= n) {
      throw InvalidArgument(format_message(w, ": observed_variables[", j, "] = ", v, " is outside [0, ", n, ")"));
    }
  }
  check_size(w, "obs_error_variance", obs_error_variance.size(), m);
  for (Index j = 0; j < m; ++j) check_positive(w, format_message("obs_error_variance[", j, "]"), obs_error_variance[j]);
  const Index times = static_cast<Index>(obs_steps.size());
  check_size(w, "obs_values rows", obs_values.rows(), m);
  check_size(w, "obs_values columns", obs_values.cols(), times);
  check_size(w, "obs_mask rows", obs_mask.rows(), m);
  check_size(w, "obs_mask columns", obs_mask.cols(), times);
  for (Index t = 0; t < times; ++t) {
    const Index step = obs_steps[static_cast<std::size_t>(t)];
    if (step < 0 || step >= total_steps) {
      throw InvalidArgument(format_message(w, ": obs_steps[", t, "] = ", step, " is outside [0, ", total_steps, ")"));
    }
    if (t > 0 && step <= obs_steps[static_cast<std::size_t>(t - 1)]) {
      throw InvalidArgument(format_message(w, ": obs_steps[", t, "] = ", step, " is not after obs_steps[", t - 1,
                                           "] = ", obs_steps[static_cast<std::size_t>(t - 1)]));
    }
    for (Index j = 0; j < m; ++j) {
      if (obs_mask(j, t) && !std::isfinite(obs_values(j, t))) {
        throw InvalidArgument(format_message(w, ": obs_values at time ", t, " (step ", step, "), observation ", j,
                                             " = ", obs_values(j, t), " is not finite"));
      }
    }
  }
  check_size(w, "initial_background", initial_background.size(), n);
  check_finite(w, "initial_background", initial_background);
}

TwinData simulate_twin_data(const TwinExperimentConfig& c) {
  c.validate();
  const Model& model = *c.model;
  const Index n = model.state_size();
  const Index total = c.cycles * c.window_steps;
  Rng rng(c.seed);
  TwinData d;

  Vector x = c.truth_start.size() == n ? c.truth_start : Vector(Vector::Ones(n) + 0.01 * rng.normal_vector(n));
  for (Index k = 0; k < c.spin_up_steps; ++k) model.step(x);
  check_state(x, "truth spin-up", 0);
  d.truth.reserve(static_cast<std::size_t>(total + 1));
  d.truth.push_back(x);
  for (Index k = 0; k < total; ++k) {
    model.step(x);
    check_state(x, "truth", k + 1);
    d.truth.push_back(x);
  }

  if (c.observed_variables.empty()) {
    for (Index i = 0; i < n; ++i) d.observed_variables.push_back(i);
  } else {
    d.observed_variables = c.observed_variables;
  }
  const Index m = static_cast<Index>(d.observed_variables.size());
  d.obs_error_variance = Vector::Constant(m, c.obs_error_variance);
  for (Index t = 0; t < total; t += c.obs_every_steps) d.obs_steps.push_back(t);
  const Index times = static_cast<Index>(d.obs_steps.size());
  d.obs_values.resize(m, times);
  d.obs_mask.setConstant(m, times, true);
  const double obs_std = std::sqrt(c.obs_error_variance);
  for (Index t = 0; t < times; ++t) {
    const Vector& xt = d.truth[static_cast<std::size_t>(d.obs_steps[static_cast<std::size_t>(t)])];
    for (Index j = 0; j < m; ++j) {
      d.obs_values(j, t) = xt[d.observed_variables[static_cast<std::size_t>(j)]] + obs_std * rng.normal();
    }
  }
  d.initial_background = d.truth[0] + c.initial_background_std * rng.normal_vector(n);
  return d;
}

TwinExperimentResult run_twin_experiment(const TwinExperimentConfig& c, const ProgressCallback& progress) {
  return run_twin_experiment(c, simulate_twin_data(c), progress);
}

TwinExperimentResult run_twin_experiment(const TwinExperimentConfig& c, const TwinData& data,
                                         const ProgressCallback& progress) {
  c.validate();
  const Model& model = *c.model;
  const Index n = model.state_size();
  const Index w = c.window_steps;
  data.validate(n, c.cycles * w);
  const double nan = std::numeric_limits<double>::quiet_NaN();

  // Observation operator and R, shared by every slot.
  const Index m = static_cast<Index>(data.observed_variables.size());
  bool identity = m == n;
  for (Index j = 0; identity && j < m; ++j) identity = data.observed_variables[static_cast<std::size_t>(j)] == j;
  std::shared_ptr<const ObservationOperator> op;
  if (identity) {
    op = std::make_shared<IdentityObservation>(n);
  } else {
    op = std::make_shared<SubsetObservation>(n, data.observed_variables);
  }
  auto r = std::make_shared<DiagonalCovariance>(data.obs_error_variance);
  const std::shared_ptr<const Covariance> b = make_b(c, n);
  auto truth_at = [&](Index step) -> const Vector* {
    return data.truth.empty() ? nullptr : &data.truth[static_cast<std::size_t>(step)];
  };

  TwinExperimentResult result;
  result.method = to_string(c.method);
  result.burn_in = c.burn_in;
  result.obs_error_std = std::sqrt(data.obs_error_variance.mean());
  Vector background = data.initial_background;
  std::size_t next_obs = 0;
  for (Index cycle = 0; cycle < c.cycles; ++cycle) {
    const Index t0 = cycle * w;
    AssimilationWindow window;
    window.background = background;
    window.b = b;
    window.model = c.model;
    window.steps = w;
    for (; next_obs < data.obs_steps.size() && data.obs_steps[next_obs] < t0 + w; ++next_obs) {
      Observations o;
      o.step = data.obs_steps[next_obs] - t0;
      o.values = data.obs_values.col(static_cast<Index>(next_obs));
      o.mask = data.obs_mask.col(static_cast<Index>(next_obs));
      if (o.mask.all()) o.mask.resize(0);
      o.op = op;
      o.r = r;
      window.observations.push_back(std::move(o));
    }
    SolverSummary summary;
    const VarResult a = solve(c, window, &summary);
    CycleRecord rec;
    rec.cycle = cycle;
    const Vector* truth = truth_at(t0);
    rec.analysis_rmse = truth ? rms(a.analysis - *truth) : nan;
    rec.background_rmse = truth ? rms(background - *truth) : nan;
    rec.spread = a.posterior ? rms(a.posterior->marginal_std()) : nan;
    rec.iterations = summary.iterations;
    rec.outer_iterations = summary.outer_iterations;
    rec.final_cost = summary.final_cost;
    rec.num_tl_sweeps = summary.num_tl_sweeps;
    rec.num_ad_sweeps = summary.num_ad_sweeps;
    rec.num_forward_runs = summary.num_forward_runs;
    rec.seconds = summary.wall_time_seconds;
    rec.termination = summary.termination_type;
    if (!summary.converged()) ++result.cycles_not_converged;
    if (summary.termination_type == TerminationType::kNumericalFailure) ++result.cycles_failed;
    result.cycles.push_back(rec);
    if (cycle + 1 == c.cycles) {
      result.final_analysis = a.analysis;
      result.final_analysis_std = a.posterior ? a.posterior->marginal_std() : Vector();
      result.final_summary = summary;
    }
    if (progress) progress(cycle, c.cycles, rec);

    // The next background: the analysis trajectory at the window end.
    if (a.final_state.size() == n) {
      background = a.final_state;
    } else {
      background = a.analysis;
      for (Index k = 0; k < w; ++k) model.step(background);
    }
    check_state(background, "forecast", t0 + w);
  }

  const double count = static_cast<double>(c.cycles - c.burn_in);
  for (Index i = c.burn_in; i < c.cycles; ++i) {
    const CycleRecord& rec = result.cycles[static_cast<std::size_t>(i)];
    result.mean_analysis_rmse += rec.analysis_rmse / count;
    result.mean_background_rmse += rec.background_rmse / count;
    result.mean_spread += rec.spread / count;
    result.mean_seconds += rec.seconds / count;
    result.mean_iterations += rec.iterations / count;
    result.mean_tl_sweeps += static_cast<double>(rec.num_tl_sweeps) / count;
    result.mean_ad_sweeps += static_cast<double>(rec.num_ad_sweeps) / count;
  }
  return result;
}

std::string TwinExperimentResult::summary() const {
  return format_message(method, ": ", cycles.size(), " cycles (burn-in ", burn_in, "): analysis RMSE ",
                        mean_analysis_rmse, ", background RMSE ", mean_background_rmse, ", spread ", mean_spread,
                        ", obs error ", obs_error_std, "; per cycle ", mean_iterations, " iterations, TL ",
                        mean_tl_sweeps, " AD ", mean_ad_sweeps, " sweeps, ", mean_seconds, " s; ",
                        cycles_not_converged, " cycles not converged");
}

std::string TwinExperimentResult::table() const {
  std::ostringstream os;
  os << "cycle  analysis_rmse  background_rmse  spread  iterations  outer  final_cost  tl  ad  seconds  termination\n";
  for (const CycleRecord& r : cycles) {
    os << format_message(r.cycle, "  ", r.analysis_rmse, "  ", r.background_rmse, "  ", r.spread, "  ", r.iterations,
                         "  ", r.outer_iterations, "  ", r.final_cost, "  ", r.num_tl_sweeps, "  ", r.num_ad_sweeps,
                         "  ", r.seconds, "  ", to_string(r.termination))
       << "\n";
  }
  return os.str();
}

}  // namespace varflow
