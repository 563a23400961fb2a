#include "varflow/experiment/twin_experiment.h"

#include "varflow/io/checkpoint_file.h"

#include "amortized_analysis.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "varflow/core/enum_text.h"
#include "varflow/core/error.h"
#include "varflow/core/limits.h"
#include "varflow/core/random.h"
#include "varflow/covariance/covariances.h"
#include "varflow/model/lorenz96.h"
#include "varflow/model/trajectory.h"
#include "varflow/obs/operators.h"
#include "varflow/var/window.h"

namespace varflow {

namespace {
constexpr EnumNames<VarMethod, 4> kVarMethodNames{{{VarMethod::kStrong4DVar, "strong_4dvar"},
                                                   {VarMethod::kIncremental4DVar, "incremental_4dvar"},
                                                   {VarMethod::kWeak4DVar, "weak_4dvar"},
                                                   {VarMethod::k3DVar, "3dvar"}}};
constexpr EnumNames<BackgroundCovarianceType, 3> kBackgroundCovarianceNames{
    {{BackgroundCovarianceType::kScaledIdentity, "scaled_identity"},
     {BackgroundCovarianceType::kPeriodicGaussian, "periodic_gaussian"},
     {BackgroundCovarianceType::kClimatological, "climatological"}}};
constexpr EnumNames<ObservationSelection, 3> kObservationSelectionNames{
    {{ObservationSelection::kNew, "new"}, {ObservationSelection::kAll, "all"}, {ObservationSelection::kNewest, "newest"}}};
}  // namespace

std::string to_string(ObservationSelection selection) {
  return std::string(to_text(kObservationSelectionNames, selection));
}

bool observation_selection_from_string(std::string_view name, ObservationSelection* selection) {
  return find_value(kObservationSelectionNames, name, selection);
}

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
  if (b_type == BackgroundCovarianceType::kClimatological) {
    if (climatology_steps < 2 * n) {
      throw InvalidArgument(format_message(w, ": climatology_steps = ", climatology_steps, " must be at least 2 n = ",
                                           2 * n, " (a sample covariance of fewer states is singular)"));
    }
  }
  if (!(b_hybrid_weight >= 0.0 && b_hybrid_weight < 1.0)) {
    throw InvalidArgument(format_message(w, ": b_hybrid_weight = ", b_hybrid_weight, " must be in [0, 1)"));
  }
  check_positive(w, "b_inflation", b_inflation);
  if (b_hybrid_weight > 0.0) {
    const PosteriorMethod posterior = method == VarMethod::kStrong4DVar ? strong.posterior
                                      : method == VarMethod::kWeak4DVar ? weak.posterior
                                                                        : incremental.posterior;
    if (posterior == PosteriorMethod::kNone) {
      throw InvalidArgument(format_message(w, ": b_hybrid_weight = ", b_hybrid_weight, " needs a posterior, but the ",
                                           to_string(method), " posterior is none"));
    }
  }
  check_nonnegative(w, "initial_background_std", initial_background_std);
  check_at_least(w, "window_steps", window_steps, 0);
  check_at_least(w, "shift_steps", shift_steps, 0);
  if (shift() < 1) {
    throw InvalidArgument(format_message(w, ": shift_steps = ", shift_steps, " must be at least 1 when window_steps = ",
                                         window_steps, " (shift_steps 0 means window_steps)"));
  }
  if (!amortized.model.empty()) {
    if (!(amortized.check_sigmas > 0.0) || !std::isfinite(amortized.check_sigmas)) {
      throw InvalidArgument(format_message(w, ": amortized.check_sigmas = ", amortized.check_sigmas, " must be positive"));
    }
    check_at_least(w, "amortized.draws", amortized.draws, 2);
  }
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
      if (incremental.hessian == OuterHessian::kNewton && !model->has_second_order()) {
        throw InvalidArgument(format_message(w, ": incremental.hessian = newton needs second-order adjoints, and model '",
                                             model->name(), "' has none (use gauss_newton)"));
      }
      break;
    case VarMethod::kWeak4DVar:
      with_prefix(format_message(w, ": weak."), [&] { weak.validate(); });
      check_positive(w, "model_error_variance", model_error_variance);
      break;
    case VarMethod::k3DVar:
      with_prefix(format_message(w, ": incremental."), [&] { incremental.validate(); });
      // Windows hold the observations at both ends (changed in 0.2: they used to stop before the end),
      // so a 3D-Var window is the single time t0 and the cycle moves on by the shift.
      if (window_steps != 0) {
        throw InvalidArgument(format_message(
            w, ": window_steps = ", window_steps, " must be 0 for 3dvar (one observation time per window: windows ",
            "now include the observations at both ends; for 3D-Var every k steps use window_steps 0 and shift_steps k)"));
      }
      break;
  }
  check_memory_plan();
}

void TwinExperimentConfig::check_memory_plan() const {
  // The largest things a run holds at once, in doubles (no overflow): the truth trajectory, the
  // observations, four states per cycle record, and the n x n matrices of a dense B or posterior.
  const double n = static_cast<double>(model->state_size());
  const double steps = static_cast<double>(cycles - 1) * static_cast<double>(shift()) +
                       static_cast<double>(window_steps) + 1.0;
  const double observed = observed_variables.empty() ? n : static_cast<double>(observed_variables.size());
  const double truth = steps * (8.0 * n + 32.0);
  const double observations = (steps / static_cast<double>(obs_every_steps) + 1.0) * observed * 9.0;
  const double records = static_cast<double>(cycles) * (32.0 * n + 256.0);
  const PosteriorMethod posterior = method == VarMethod::kStrong4DVar ? strong.posterior
                                    : method == VarMethod::kWeak4DVar ? weak.posterior
                                                                      : incremental.posterior;
  const bool dense = b_type != BackgroundCovarianceType::kScaledIdentity || b_hybrid_weight > 0.0 ||
                     posterior == PosteriorMethod::kDense;
  const double matrices = dense ? 3.0 * 8.0 * n * n : 0.0;
  limits::check_memory("TwinExperimentConfig",
                       format_message("the run (state size ", model->state_size(), ", ", cycles, " cycles, ",
                                      static_cast<long long>(steps), " model steps", dense ? ", dense n x n matrices" : "",
                                      ")"),
                       truth + observations + records + matrices);
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
  // Newton outer loops: with the observation at the window end, Gauss-Newton stopped at its 10 outer
  // loops in 9 of 360 cycles (12 seeds x 30 cycles), Newton in none (design/solvers.md).
  c.incremental.hessian = OuterHessian::kNewton;
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

// Sample covariance of the states of a free run (one per step), the climatology of the model.
Matrix climatological_covariance(const TwinExperimentConfig& c, Index n) {
  Rng rng(c.seed);
  Vector x = c.truth_start.size() == n ? c.truth_start : Vector(Vector::Ones(n) + 0.01 * rng.normal_vector(n));
  for (Index k = 0; k < c.spin_up_steps; ++k) c.model->step(x);
  Vector mean = Vector::Zero(n);
  Matrix second = Matrix::Zero(n, n);
  for (Index k = 0; k < c.climatology_steps; ++k) {
    c.model->step(x);
    if (!x.allFinite()) {
      throw NumericalError(format_message("climatological B: the free run is not finite at step ", k + 1));
    }
    mean += x;
    second.selfadjointView<Eigen::Lower>().rankUpdate(x);
  }
  const double count = static_cast<double>(c.climatology_steps);
  mean /= count;
  Matrix cov = second.selfadjointView<Eigen::Lower>();
  cov = (cov - count * mean * mean.transpose()) / (count - 1.0);
  return 0.5 * (cov + cov.transpose());
}

// The operator of the observed variables: the identity when all n are observed in order, else the
// subset; shared by every slot of a window.
std::shared_ptr<const ObservationOperator> observation_operator(const TwinData& data, Index n) {
  const Index m = static_cast<Index>(data.observed_variables.size());
  bool identity = m == n;
  for (Index j = 0; identity && j < m; ++j) identity = data.observed_variables[static_cast<std::size_t>(j)] == j;
  if (identity) return std::make_shared<IdentityObservation>(n);
  return std::make_shared<SubsetObservation>(n, data.observed_variables);
}

std::shared_ptr<const Covariance> make_b(const TwinExperimentConfig& c, Index n) {
  switch (c.b_type) {
    case BackgroundCovarianceType::kScaledIdentity:
      return std::make_shared<DiagonalCovariance>(DiagonalCovariance::scaled_identity(n, c.b_variance));
    case BackgroundCovarianceType::kPeriodicGaussian:
      return std::make_shared<PeriodicGaussianCovariance>(n, c.b_variance, c.b_length_scale, 1.0, c.b_nugget);
    case BackgroundCovarianceType::kClimatological:
      return std::make_shared<DenseCovariance>(c.b_variance * climatological_covariance(c, n));
  }
  return {};
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
    if (step < 0 || step > total_steps) {
      throw InvalidArgument(format_message(w, ": obs_steps[", t, "] = ", step, " is outside [0, ", total_steps, "]"));
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
  const Index total = c.total_steps();
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
  for (Index t = 0; t <= total; t += c.obs_every_steps) d.obs_steps.push_back(t);
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

namespace {

// The model trajectory from x at each observed step of the window: H_s(x(k_s)) for every slot.
std::vector<Vector> observed_trajectory(const AssimilationWindow& window, Vector x) {
  std::vector<Vector> out(window.observations.size());
  Index k = 0;
  std::vector<std::size_t> order(window.observations.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return window.observations[a].step < window.observations[b].step;
  });
  for (std::size_t i : order) {
    const Observations& o = window.observations[i];
    for (; k < o.step; ++k) window.model->step(x);
    if (!x.allFinite()) {
      throw NumericalError(format_message("innovation_statistics: the trajectory is not finite at window step ", k));
    }
    o.op->apply(x, out[i]);
  }
  return out;
}

}  // namespace

InnovationStatistics innovation_statistics(const AssimilationWindow& window, const Vector& analysis,
                                           double analysis_cost) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<Vector> hb = observed_trajectory(window, window.background);
  const std::vector<Vector> ha = observed_trajectory(window, analysis);
  InnovationStatistics s;
  double sum_b = 0.0, sum_a = 0.0, sq_b = 0.0, sq_a = 0.0;
  for (std::size_t i = 0; i < window.observations.size(); ++i) {
    const Observations& o = window.observations[i];
    Vector db = o.values - hb[i];
    Vector da = o.values - ha[i];
    for (Index j = 0; j < db.size(); ++j) {
      if (o.mask.size() != 0 && !o.mask[j]) {
        db[j] = da[j] = 0.0;
        continue;
      }
      ++s.count;
      sum_b += db[j];
      sum_a += da[j];
      sq_b += db[j] * db[j];
      sq_a += da[j] * da[j];
    }
  }
  if (s.count == 0) return {0, nan, nan, nan, nan, nan};
  const double m = static_cast<double>(s.count);
  s.omb_mean = sum_b / m;
  s.omb_rms = std::sqrt(sq_b / m);
  s.oma_mean = sum_a / m;
  s.oma_rms = std::sqrt(sq_a / m);
  s.chi2_per_obs = 2.0 * analysis_cost / m;
  return s;
}

// ---- checkpoints of a cycling run ---------------------------------------------------------------

namespace {

// 2: the records carry the amortized-analysis flag and fallback reason.
constexpr std::string_view kTwinCheckpointKind = "varflow_assimilate_checkpoint 2";

void put_record(ByteWriter& w, const CycleRecord& r) {
  w.put(r.cycle);
  w.put(r.window_start);
  w.put(r.filter_step);
  w.put(r.analysis_rmse);
  w.put(r.background_rmse);
  w.put(r.filter_rmse);
  w.put(r.forecast_rmse);
  w.put(r.spread);
  w.put(r.innovations);
  w.put(r.iterations);
  w.put(r.outer_iterations);
  w.put(r.final_cost);
  w.put(r.num_tl_sweeps);
  w.put(r.num_ad_sweeps);
  w.put(r.num_forward_runs);
  w.put(r.seconds);
  w.put(static_cast<std::int32_t>(r.termination));
  w.put(r.analysis);
  w.put(r.background);
  w.put(r.filter_analysis);
  w.put(r.forecast);
  w.put(static_cast<std::int32_t>(r.amortized ? 1 : 0));
  w.put(r.fallback_reason);
}

CycleRecord get_record(ByteReader& r) {
  CycleRecord c;
  c.cycle = r.get<Index>();
  c.window_start = r.get<Index>();
  c.filter_step = r.get<Index>();
  c.analysis_rmse = r.get<double>();
  c.background_rmse = r.get<double>();
  c.filter_rmse = r.get<double>();
  c.forecast_rmse = r.get<double>();
  c.spread = r.get<double>();
  c.innovations = r.get<InnovationStatistics>();
  c.iterations = r.get<int>();
  c.outer_iterations = r.get<int>();
  c.final_cost = r.get<double>();
  c.num_tl_sweeps = r.get<Index>();
  c.num_ad_sweeps = r.get<Index>();
  c.num_forward_runs = r.get<Index>();
  c.seconds = r.get<double>();
  const auto t = r.get<std::int32_t>();
  if (t < 0 || t > static_cast<std::int32_t>(TerminationType::kNumericalFailure)) {
    throw InvalidArgument(r.where() + ": bad termination type");
  }
  c.termination = static_cast<TerminationType>(t);
  c.analysis = r.get_vector();
  c.background = r.get_vector();
  c.filter_analysis = r.get_vector();
  c.forecast = r.get_vector();
  c.amortized = r.get<std::int32_t>() != 0;
  c.fallback_reason = r.get_string();
  return c;
}

}  // namespace

void save_twin_state(const std::filesystem::path& file, const TwinState& st, const std::string& fingerprint) {
  ByteWriter w;
  w.put(st.cycles_done);
  w.put(st.background);
  w.put(st.assimilated_until);
  w.put(st.cycle_b);
  w.put(st.cycles_not_converged);
  w.put(st.cycles_failed);
  w.put(static_cast<std::uint64_t>(st.cycles.size()));
  for (const CycleRecord& r : st.cycles) put_record(w, r);
  write_checkpoint(file, kTwinCheckpointKind, fingerprint, w.bytes);
}

TwinState load_twin_state(const std::filesystem::path& file, const std::string& fingerprint) {
  ByteReader r = read_checkpoint(file, kTwinCheckpointKind, fingerprint);
  TwinState st;
  st.cycles_done = r.get<Index>();
  st.background = r.get_vector();
  st.assimilated_until = r.get<Index>();
  st.cycle_b = r.get_matrix();
  st.cycles_not_converged = r.get<Index>();
  st.cycles_failed = r.get<Index>();
  const auto count = r.get<std::uint64_t>();
  if (count != static_cast<std::uint64_t>(st.cycles_done)) throw InvalidArgument(r.where() + ": inconsistent cycle count");
  for (std::uint64_t i = 0; i < count; ++i) st.cycles.push_back(get_record(r));
  if (!r.done()) throw InvalidArgument(r.where() + ": trailing bytes");
  return st;
}

TwinExperimentResult run_twin_experiment(const TwinExperimentConfig& c, const TwinData& data,
                                         const ProgressCallback& progress, const TwinCheckpointing& checkpointing) {
  c.validate();
  const Model& model = *c.model;
  const Index n = model.state_size();
  const Index w = c.window_steps;
  const Index shift = c.shift();
  data.validate(n, c.total_steps());
  const double nan = std::numeric_limits<double>::quiet_NaN();

  // Observation operator and R, shared by every slot.
  const std::shared_ptr<const ObservationOperator> op = observation_operator(data, n);
  auto r = std::make_shared<DiagonalCovariance>(data.obs_error_variance);
  const std::shared_ptr<const Covariance> b = make_b(c, n);
  // The amortized analysis, when configured; checked against this experiment before any cycle runs.
  std::unique_ptr<AmortizedAnalysis> amortized;
  if (!c.amortized.model.empty()) amortized = std::make_unique<AmortizedAnalysis>(c, data);
  auto truth_at = [&](Index step) -> const Vector* {
    return data.truth.empty() ? nullptr : &data.truth[static_cast<std::size_t>(step)];
  };
  auto forecast = [&](Vector x, Index steps, Index from) {
    for (Index k = 0; k < steps; ++k) model.step(x);
    check_state(x, "forecast", from + steps);
    return x;
  };

  TwinExperimentResult result;
  result.method = to_string(c.method);
  result.amortized_model = c.amortized.model;
  result.burn_in = c.burn_in;
  result.obs_error_std = std::sqrt(data.obs_error_variance.mean());
  Vector background = data.initial_background;
  Index assimilated_until = -1;  // the latest observation step assimilated so far
  // The hybrid B of the next window (null: the static B), and the static part as a matrix.
  std::shared_ptr<const Covariance> cycle_b;
  const Matrix static_b = c.b_hybrid_weight > 0.0 ? b->dense() : Matrix();
  Index first_cycle = 0;
  if (const TwinState* st = checkpointing.resume) {
    if (st->cycles_done < 1 || st->cycles_done >= c.cycles || st->background.size() != n ||
        static_cast<Index>(st->cycles.size()) != st->cycles_done ||
        (st->cycle_b.size() != 0 && (st->cycle_b.rows() != n || st->cycle_b.cols() != n))) {
      throw InvalidArgument(format_message("run_twin_experiment: the checkpoint (", st->cycles_done,
                                           " cycles done, state size ", st->background.size(),
                                           ") does not fit this run (", c.cycles, " cycles, state size ", n, ")"));
    }
    first_cycle = st->cycles_done;
    background = st->background;
    assimilated_until = st->assimilated_until;
    if (st->cycle_b.size() != 0) cycle_b = std::make_shared<DenseCovariance>(st->cycle_b);
    result.cycles = st->cycles;
    result.cycles_not_converged = st->cycles_not_converged;
    result.cycles_failed = st->cycles_failed;
    for (const CycleRecord& rec : result.cycles) result.cycles_amortized += rec.amortized ? 1 : 0;
  }
  for (Index cycle = first_cycle; cycle < c.cycles; ++cycle) {
    const Index t0 = cycle * shift;
    AssimilationWindow window;
    window.background = background;
    window.b = cycle_b ? cycle_b : b;
    window.model = c.model;
    window.steps = w;
    // The observation times in [t0, t0 + w], then the ones this window assimilates.
    std::vector<std::size_t> inside;
    for (std::size_t i = 0; i < data.obs_steps.size(); ++i) {
      if (data.obs_steps[i] >= t0 && data.obs_steps[i] <= t0 + w) inside.push_back(i);
    }
    std::vector<std::size_t> chosen;
    switch (c.assimilate) {
      case ObservationSelection::kAll: chosen = inside; break;
      case ObservationSelection::kNewest:
        if (!inside.empty()) chosen.push_back(inside.back());
        break;
      case ObservationSelection::kNew:
        for (std::size_t i : inside)
          if (data.obs_steps[i] > assimilated_until) chosen.push_back(i);
        break;
    }
    for (std::size_t i : chosen) {
      Observations o;
      o.step = data.obs_steps[i] - t0;
      o.values = data.obs_values.col(static_cast<Index>(i));
      o.mask = data.obs_mask.col(static_cast<Index>(i));
      if (o.mask.all()) o.mask.resize(0);
      o.op = op;
      o.r = r;
      window.observations.push_back(std::move(o));
      assimilated_until = std::max(assimilated_until, data.obs_steps[i]);
    }
    const Index tf = chosen.empty() ? t0 + w : data.obs_steps[chosen.back()];
    SolverSummary summary;
    AmortizedAnalysis::Outcome outcome;
    if (amortized) outcome = amortized->analyse(window, cycle);
    VarResult a;
    if (outcome.used) {
      a.analysis = outcome.analysis;
      summary.termination_type = TerminationType::kConverged;
      summary.final_cost = outcome.cost;
      summary.wall_time_seconds = outcome.seconds;
    } else {
      a = solve(c, window, &summary);
      summary.wall_time_seconds += outcome.seconds;  // the refused amortized analysis's time too
    }
    CycleRecord rec;
    rec.amortized = outcome.used;
    rec.fallback_reason = outcome.reason;
    rec.cycle = cycle;
    rec.window_start = t0;
    rec.filter_step = tf;
    rec.analysis = a.analysis;
    rec.background = background;
    rec.filter_analysis = a.analysis.allFinite() ? forecast(a.analysis, tf - t0, t0) : a.analysis;
    rec.forecast = forecast(background, tf - t0, t0);
    const Vector* truth = truth_at(t0);
    const Vector* truth_f = truth_at(tf);
    rec.analysis_rmse = truth ? rms(a.analysis - *truth) : nan;
    rec.background_rmse = truth ? rms(background - *truth) : nan;
    rec.filter_rmse = truth_f ? rms(rec.filter_analysis - *truth_f) : nan;
    rec.forecast_rmse = truth_f ? rms(rec.forecast - *truth_f) : nan;
    rec.spread = outcome.used ? rms(outcome.marginal_std) : a.posterior ? rms(a.posterior->marginal_std()) : nan;
    if (a.analysis.allFinite() && !window.observations.empty()) {
      rec.innovations = innovation_statistics(window, a.analysis, summary.final_cost);
    } else {
      rec.innovations = {0, nan, nan, nan, nan, nan};
    }
    rec.iterations = summary.iterations;
    rec.outer_iterations = summary.outer_iterations;
    rec.final_cost = summary.final_cost;
    rec.num_tl_sweeps = summary.num_tl_sweeps;
    rec.num_ad_sweeps = summary.num_ad_sweeps;
    rec.num_forward_runs = summary.num_forward_runs;
    rec.seconds = summary.wall_time_seconds;
    rec.termination = summary.termination_type;
    if (outcome.used) ++result.cycles_amortized;
    if (!summary.converged()) ++result.cycles_not_converged;
    if (summary.termination_type == TerminationType::kNumericalFailure) ++result.cycles_failed;
    result.cycles.push_back(rec);
    if (cycle + 1 == c.cycles) {
      result.final_analysis = a.analysis;
      result.final_analysis_std = a.posterior ? a.posterior->marginal_std() : Vector();
      result.final_summary = summary;
    }
    if (progress) progress(cycle, c.cycles, result.cycles.back());

    // The next window's hybrid B: the posterior at t0 propagated over the shift by the TL model.
    if (c.b_hybrid_weight > 0.0) {
      cycle_b.reset();
      if (a.posterior && a.posterior->covariance() && a.analysis.allFinite()) {
        const Matrix pa = a.posterior->covariance()->dense();
        const Trajectory traj = Trajectory::integrate(model, a.analysis, shift);
        Matrix m_tl(n, n);
        Vector e = Vector::Zero(n);
        for (Index j = 0; j < n; ++j) {
          e[j] = 1.0;
          m_tl.col(j) = traj.tangent(e, shift);
          e[j] = 0.0;
        }
        Matrix bf = (1.0 - c.b_hybrid_weight) * static_b +
                    c.b_hybrid_weight * c.b_inflation * c.b_inflation * (m_tl * pa * m_tl.transpose());
        bf = 0.5 * (bf + bf.transpose());
        if (bf.allFinite()) cycle_b = std::make_shared<DenseCovariance>(bf);
      }
    }

    // The next background: the analysis forecast over the shift (the analysis trajectory at the
    // window end when the shift is the window).
    if (shift == w && a.final_state.size() == n) {
      background = a.final_state;
      check_state(background, "forecast", t0 + shift);
    } else {
      background = forecast(a.analysis, shift, t0);
    }
    if (checkpointing.every > 0 && checkpointing.save && (cycle + 1) % checkpointing.every == 0 &&
        cycle + 1 < c.cycles) {
      TwinState st;
      st.cycles_done = cycle + 1;
      st.background = background;
      st.assimilated_until = assimilated_until;
      if (cycle_b) st.cycle_b = cycle_b->dense();
      st.cycles = result.cycles;
      st.cycles_not_converged = result.cycles_not_converged;
      st.cycles_failed = result.cycles_failed;
      checkpointing.save(st);
    }
  }

  const double count = static_cast<double>(c.cycles - c.burn_in);
  Index innovation_cycles = 0;
  InnovationStatistics& mi = result.mean_innovations;
  for (Index i = c.burn_in; i < c.cycles; ++i) {
    const CycleRecord& rec = result.cycles[static_cast<std::size_t>(i)];
    result.mean_analysis_rmse += rec.analysis_rmse / count;
    result.mean_background_rmse += rec.background_rmse / count;
    result.mean_filter_rmse += rec.filter_rmse / count;
    result.mean_forecast_rmse += rec.forecast_rmse / count;
    if (std::isfinite(rec.spread)) {
      result.mean_spread += rec.spread;
      ++result.spread_cycles;
    }
    result.mean_seconds += rec.seconds / count;
    result.mean_iterations += rec.iterations / count;
    result.mean_outer_iterations += rec.outer_iterations / count;
    result.mean_tl_sweeps += static_cast<double>(rec.num_tl_sweeps) / count;
    result.mean_ad_sweeps += static_cast<double>(rec.num_ad_sweeps) / count;
    const InnovationStatistics& s = rec.innovations;
    if (s.count == 0) continue;
    ++innovation_cycles;
    mi.count += s.count;
    mi.omb_mean += s.omb_mean;
    mi.omb_rms += s.omb_rms;
    mi.oma_mean += s.oma_mean;
    mi.oma_rms += s.oma_rms;
    mi.chi2_per_obs += s.chi2_per_obs;
  }
  result.mean_spread =
      result.spread_cycles > 0 ? result.mean_spread / static_cast<double>(result.spread_cycles) : nan;
  if (innovation_cycles == 0) {
    mi = {0, nan, nan, nan, nan, nan};
  } else {
    const double k = static_cast<double>(innovation_cycles);
    mi.omb_mean /= k;
    mi.omb_rms /= k;
    mi.oma_mean /= k;
    mi.oma_rms /= k;
    mi.chi2_per_obs /= k;
  }
  return result;
}

std::string TwinExperimentResult::summary() const {
  return format_message(method, ": ", cycles.size(), " cycles (burn-in ", burn_in, "): filter RMSE ", mean_filter_rmse,
                        ", forecast RMSE ", mean_forecast_rmse, ", smoother (window start) RMSE ",
                        mean_analysis_rmse, ", background RMSE ", mean_background_rmse, ", spread ",
                        spread_cycles > 0 ? format_message(mean_spread) : std::string("- (no posterior)"),
                        ", chi2/m ", mean_innovations.chi2_per_obs, ", O-B rms ", mean_innovations.omb_rms,
                        ", O-A rms ", mean_innovations.oma_rms,
                        ", obs error ", obs_error_std, "; per cycle ", mean_iterations, " iterations, TL ",
                        mean_tl_sweeps, " AD ", mean_ad_sweeps, " sweeps, ", mean_seconds, " s; ",
                        cycles_not_converged, " cycles not converged",
                        !amortized_model.empty()
                            ? format_message("; ", cycles_amortized, " of ", cycles.size(), " cycles amortized")
                            : std::string());
}

std::string TwinExperimentResult::table() const {
  std::ostringstream os;
  os << "cycle  filter_rmse  forecast_rmse  smoother_rmse  background_rmse  spread  chi2_per_obs  iterations  outer  "
        "final_cost  tl  ad  seconds  termination\n";
  for (const CycleRecord& r : cycles) {
    os << format_message(r.cycle, "  ", r.filter_rmse, "  ", r.forecast_rmse, "  ", r.analysis_rmse, "  ",
                         r.background_rmse, "  ", r.spread, "  ", r.innovations.chi2_per_obs, "  ", r.iterations,
                         "  ", r.outer_iterations, "  ", r.final_cost, "  ", r.num_tl_sweeps, "  ", r.num_ad_sweeps,
                         "  ", r.seconds, "  ", to_string(r.termination))
       << "\n";
  }
  return os.str();
}

AssimilationWindow first_window(const TwinExperimentConfig& c, const TwinData& data) {
  c.validate();
  const Index n = c.model->state_size();
  data.validate(n, c.total_steps());
  const std::shared_ptr<const ObservationOperator> op = observation_operator(data, n);
  auto r = std::make_shared<DiagonalCovariance>(data.obs_error_variance);
  AssimilationWindow window;
  window.background = data.initial_background;
  window.b = make_b(c, n);
  window.model = c.model;
  window.steps = c.window_steps;
  std::vector<std::size_t> inside;
  for (std::size_t i = 0; i < data.obs_steps.size(); ++i) {
    if (data.obs_steps[i] <= c.window_steps) inside.push_back(i);
  }
  // Cycle 0: "new" and "all" take every time inside the window, "newest" the last one.
  if (c.assimilate == ObservationSelection::kNewest && !inside.empty()) inside = {inside.back()};
  for (std::size_t i : inside) {
    Observations o;
    o.step = data.obs_steps[i];
    o.values = data.obs_values.col(static_cast<Index>(i));
    o.mask = data.obs_mask.col(static_cast<Index>(i));
    if (o.mask.all()) o.mask.resize(0);
    o.op = op;
    o.r = r;
    window.observations.push_back(std::move(o));
  }
  window.validate();
  return window;
}

}  // namespace varflow
