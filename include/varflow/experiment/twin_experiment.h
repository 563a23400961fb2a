#pragma once
// Cycling twin experiments: a truth run of the model, synthetic observations of it, and a sequence
// of assimilation windows in which each window's background is the previous window's analysis
// forecast over the shift.
//
// Window c covers global model steps [t0, t0 + W] with t0 = c S (W = window_steps, S = shift_steps;
// S < W gives overlapping windows, S = W the classic back-to-back windows). Observation times
// t (t % obs_every_steps == 0) at both ends of the window count as inside it. Which of them the window
// assimilates is `assimilate`:
//     new     every observation time in the window not assimilated by an earlier window (each
//             observation used once; with S = W: (t0, t0 + W], plus t0 itself in cycle 0);
//     all     every observation time in [t0, t0 + W] (overlapping windows reuse observations);
//     newest  the latest observation time in [t0, t0 + W] only (DAPPER's Var4D and iEnKS cycling,
//             Bocquet & Sakov 2013: a window of L intervals shifted by one assimilates the newest).
// The analysis is the MAP of x at the window start. Scores against the truth, per cycle:
//     smoother RMSE  = ||x_a(t0) - x_t(t0)|| / sqrt(n)          (the analysis at the window start),
//     filter RMSE    = ||x_a(tf) - x_t(tf)|| / sqrt(n)          (the analysis trajectory at tf, the newest
//                                                                assimilated observation time; the window
//                                                                end when the window assimilated none),
//     forecast RMSE  = ||x_b(tf) - x_t(tf)|| / sqrt(n)          (the background trajectory at tf),
//     background RMSE= ||x_b(t0) - x_t(t0)|| / sqrt(n),
//     spread         = sqrt(mean_i P_a,ii)                       (posterior of x at t0).
// Innovation statistics need no truth (InnovationStatistics). Time means are over cycles >= burn_in.
//
// Everything random (truth spin-up, initial background, observation errors) comes from one Rng seeded
// with `seed`: the same config gives the same numbers on the same build.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "varflow/core/types.h"
#include "varflow/model/model.h"
#include "varflow/var/incremental_4dvar.h"
#include "varflow/var/summary.h"
#include "varflow/var/strong_4dvar.h"
#include "varflow/var/weak_4dvar.h"
#include "varflow/var/window.h"

namespace varflow {

enum class VarMethod { kStrong4DVar, kIncremental4DVar, kWeak4DVar, k3DVar };
// "strong_4dvar", "incremental_4dvar", "weak_4dvar", "3dvar".
std::string to_string(VarMethod method);
bool var_method_from_string(std::string_view name, VarMethod* method);

enum class BackgroundCovarianceType { kScaledIdentity, kPeriodicGaussian, kClimatological };
// "scaled_identity", "periodic_gaussian", "climatological".
std::string to_string(BackgroundCovarianceType type);
bool background_covariance_type_from_string(std::string_view name, BackgroundCovarianceType* type);

// Which observation times of its window a cycle assimilates (see the top of this file).
enum class ObservationSelection { kNew, kAll, kNewest };
// "new", "all", "newest".
std::string to_string(ObservationSelection selection);
bool observation_selection_from_string(std::string_view name, ObservationSelection* selection);

struct TwinExperimentConfig {
  // ---- model and truth
  std::shared_ptr<const Model> model;  // required
  Vector truth_start;                  // empty: ones(n) + 0.01 N(0, I)
  Index spin_up_steps = 1000;          // truth steps before cycle 0 (onto the attractor)
  // ---- observations: y = x[observed_variables] + N(0, obs_error_variance I)
  std::vector<Index> observed_variables;  // empty: every variable
  Index obs_every_steps = 4;
  double obs_error_variance = 1.0;
  // ---- background error covariance B = b_variance * C
  BackgroundCovarianceType b_type = BackgroundCovarianceType::kScaledIdentity;
  double b_variance = 0.4;
  double b_length_scale = 2.0;         // grid points (periodic Gaussian only)
  double b_nugget = 0.01;              // periodic Gaussian only
  // Climatological B (DAPPER's default B): b_variance times the sample covariance of the states of
  // a free model run of climatology_steps steps from the truth start after spin-up (one state per step).
  Index climatology_steps = 10000;
  // Flow-dependent hybrid B (the variational counterpart of an extended Kalman filter / smoother):
  // window c + 1 uses B_{c+1} = (1 - w) B + w r^2 M P_a M^T, with P_a the previous window's Laplace
  // posterior covariance of x at its start and M the TL model over the shift (at the analysis
  // trajectory); w = b_hybrid_weight in [0, 1) (0: static B), r = b_inflation > 0 (multiplicative
  // inflation of the propagated part). Needs a posterior (a method posterior other than none).
  double b_hybrid_weight = 0.0;
  double b_inflation = 1.0;
  double initial_background_std = 1.0; // x_b of cycle 0 = truth + N(0, s^2 I)
  // ---- cycling
  Index window_steps = 8;               // window length W (>= 0; 0: one time, 3D-Var)
  Index shift_steps = 0;                // shift S between window starts (>= 1); 0: S = W
  ObservationSelection assimilate = ObservationSelection::kNew;
  Index cycles = 100;
  Index burn_in = 20;
  std::uint64_t seed = 1;
  // ---- the method and its options
  VarMethod method = VarMethod::kIncremental4DVar;
  StrongFourDVarOptions strong;
  GaussNewtonOptions incremental;   // incremental 4D-Var and 3D-Var
  WeakFourDVarOptions weak;
  double model_error_variance = 0.01;  // Q = variance * I (weak constraint)
  // ---- the amortized analysis (design/solvers.md, "The amortized analysis in the cycle"): with a
  // model file, each cycle's analysis is the mean of that trained amortized posterior of
  // (background, observations), checked per cycle; `method` is the fallback for a cycle the check
  // refuses (the layout of its observations, a non-finite output, or 2 J(x_a) above
  // m + check_sigmas sqrt(2 m)).
  struct Amortized {
    std::string model;          // a `varflow train` model file (background.prior: background); empty: none
    double check_sigmas = 4.0;  // > 0
    Index draws = 200;          // >= 2: draws for the spread (flow and score heads; exact for gaussian)
    // The `varflow validate` report.json of that model (path relative to the working directory); empty:
    // none. When given, the run is refused unless the report is of this model (its checksum) and every
    // gate passed: the gates decide what may replace 4D-Var.
    std::string validation;
  } amortized;

  Index shift() const { return shift_steps > 0 ? shift_steps : window_steps; }
  // Global model steps of the experiment: the last window ends at (cycles - 1) S + W.
  Index total_steps() const { return (cycles - 1) * shift() + window_steps; }

  // Throws InvalidArgument naming the first bad field, its value and the rule (e.g. burn_in >= cycles,
  // an observed variable outside [0, n), 3D-Var with window_steps != 0), then check_memory_plan().
  void validate() const;
  // Throws InvalidArgument when what the run would hold at once (truth trajectory, observations,
  // cycle records, dense n x n matrices) is above the memory of this machine (limits::check_memory).
  void check_memory_plan() const;
};

// The built-in default: Lorenz-96 (n = 40, F = 8, dt = 0.05), every variable observed every 4 steps with
// R = I, incremental 4D-Var over 8-step windows (two observation times per window, 0.4 time units),
// B = 0.4 I, 100 cycles with a burn-in of 20; Newton outer loops to a relative gradient of 1e-6 (at most 10
// outer loops), the posterior from the last inner Lanczos process extended to the full control space. See design/solvers.md for the measured scores and the B and window scans behind them.
TwinExperimentConfig default_twin_experiment_config();

// The inputs of a cycling run that are not configuration: the truth (when known), the observations
// and the first background. simulate_twin_data() makes them from a config; they can also be read from
// files (experiment/experiment_io.h), e.g. real observations with no truth.
struct TwinData {
  // x at global steps 0 .. total_steps() (empty when the truth is unknown: RMSEs are NaN).
  std::vector<Vector> truth;
  // The observed state variables (indices in [0, n)); the operator is their subset (identity when
  // they are 0 .. n-1 in order). R = diag(obs_error_variance).
  std::vector<Index> observed_variables;
  Vector obs_error_variance;
  // One column per observation time: the global step of each, values (m x times) and mask (false =
  // missing; a missing value may be NaN).
  std::vector<Index> obs_steps;
  Matrix obs_values;
  Eigen::Array<bool, Eigen::Dynamic, Eigen::Dynamic> obs_mask;
  Vector initial_background;  // x_b of cycle 0

  // Throws InvalidArgument naming the inconsistent field for an experiment on states of size n over
  // `total_steps` global steps: sizes, indices, non-finite present values, steps out of order or
  // outside [0, total_steps].
  void validate(Index n, Index total_steps) const;
};

// Truth run from the config's truth start (after spin-up), observations of it with N(0, R) errors,
// and a first background truth + N(0, initial_background_std^2 I); all from Rng(config.seed).
TwinData simulate_twin_data(const TwinExperimentConfig& config);

// The window of cycle 0 of run_twin_experiment(config, data): background data.initial_background, the
// config's B, the observations in [0, window_steps] that cycle 0 assimilates (config.assimilate) with
// their operator and R. For one-window tools (`varflow vi`). Throws InvalidArgument as
// run_twin_experiment does for inconsistent data.
AssimilationWindow first_window(const TwinExperimentConfig& config, const TwinData& data);

// Innovation statistics of one window (Desroziers, Berre, Chapnik & Poli 2005, QJRMS 131: "Diagnosis
// of observation, background and analysis-error statistics in observation space"), over the m present
// observation values the window assimilated:
//     O-B  d_b = y - H(x_b(t)),   O-A  d_a = y - H(x_a(t))   (trajectories from the window start);
//     chi2_per_obs = 2 J(x_a) / m: expectation 1 when B and R are the true error covariances of a
//                    linear Gaussian problem (E[2 J_min] = m; Talagrand 1999, Desroziers et al. 2005
//                    section 3). For a linear problem 2 J(x_a) = d_a^T R^-1 d_b exactly (B^-1 dx_a =
//                    H^T R^-1 d_a at the minimum), so this is also their consistency statistic for R.
// Means and rms are over the m values (model units). All NaN when m = 0.
struct InnovationStatistics {
  Index count = 0;
  double omb_mean = 0.0, omb_rms = 0.0;
  double oma_mean = 0.0, oma_rms = 0.0;
  double chi2_per_obs = 0.0;
};
// analysis_cost is J at the analysis (SolverSummary::final_cost). Throws NumericalError when a
// trajectory is not finite.
InnovationStatistics innovation_statistics(const AssimilationWindow& window, const Vector& analysis,
                                           double analysis_cost);

struct CycleRecord {
  Index cycle = 0;
  Index window_start = 0;   // global step t0
  Index filter_step = 0;    // global step tf of the filter and forecast scores
  double analysis_rmse = 0.0;    // the smoother score, at t0
  double background_rmse = 0.0;  // at t0
  double filter_rmse = 0.0;      // analysis trajectory at tf
  double forecast_rmse = 0.0;    // background trajectory at tf
  double spread = 0.0;  // NaN when the solver returned no posterior
  InnovationStatistics innovations;
  int iterations = 0;
  int outer_iterations = 0;
  double final_cost = 0.0;
  Index num_tl_sweeps = 0;
  Index num_ad_sweeps = 0;
  Index num_forward_runs = 0;
  double seconds = 0.0;
  TerminationType termination = TerminationType::kConverged;
  // The amortized analysis (config.amortized): whether this cycle used it, and otherwise why it fell
  // back to 4D-Var (empty when no amortized model is configured).
  bool amortized = false;
  std::string fallback_reason;
  // The states: analysis and background at t0, analysis and background (forecast) at tf.
  Vector analysis, background, filter_analysis, forecast;
};

struct TwinExperimentResult {
  std::string method;
  std::vector<CycleRecord> cycles;
  Index burn_in = 0;
  // Time means over cycles >= burn_in.
  double mean_analysis_rmse = 0.0;  // smoother (window start)
  double mean_background_rmse = 0.0;
  double mean_filter_rmse = 0.0;
  double mean_forecast_rmse = 0.0;
  // Over the cycles >= burn_in that have a spread (a posterior: the solver's, or the amortized
  // model's); NaN when none has (posterior: none and no amortized cycle).
  double mean_spread = 0.0;
  Index spread_cycles = 0;
  double mean_seconds = 0.0;
  double mean_iterations = 0.0;
  double mean_outer_iterations = 0.0;
  double mean_tl_sweeps = 0.0;
  double mean_ad_sweeps = 0.0;
  // Time means of the per-cycle innovation statistics (cycles with m = 0 left out).
  InnovationStatistics mean_innovations;
  Index cycles_not_converged = 0;  // over all cycles
  Index cycles_failed = 0;         // of those, numerical failures (TerminationType::kNumericalFailure)
  std::string amortized_model;     // config.amortized.model (empty: 4D-Var every cycle)
  Index cycles_amortized = 0;      // cycles whose analysis is the amortized one
  double obs_error_std = 0.0;         // root-mean observation-error standard deviation
  // The last cycle's analysis (MAP of x at its window start), its marginal standard deviations (empty
  // when the solver gave no posterior) and its summary.
  Vector final_analysis;
  Vector final_analysis_std;
  SolverSummary final_summary;
  // A one-line summary and a per-cycle table.
  std::string summary() const;
  std::string table() const;
};

// Called after each cycle with (cycle index i, number of cycles n, that cycle's record).
using ProgressCallback = std::function<void(Index, Index, const CycleRecord&)>;

// Runs the experiment on simulated data (run_twin_experiment(config, simulate_twin_data(config))).
// Throws InvalidArgument for an invalid config and NumericalError when the truth or a forecast blows
// up; solver failures are recorded per cycle (CycleRecord::termination).
TwinExperimentResult run_twin_experiment(const TwinExperimentConfig& config, const ProgressCallback& progress = {});
// The state of a cycling run after its first `cycles_done` cycles: resuming from it continues
// bit-identically (same config and data).
struct TwinState {
  Index cycles_done = 0;
  Vector background;             // of cycle `cycles_done`
  Index assimilated_until = -1;  // the latest observation step assimilated so far
  Matrix cycle_b;                // the next window's hybrid B; empty: the static B
  std::vector<CycleRecord> cycles;
  Index cycles_not_converged = 0, cycles_failed = 0;
};

// Checkpoints of run_twin_experiment: `save` is called with the state after every `every` cycles
// (0: never; not after the last); `resume`, when set, is the state to start from (cycles_done below
// config.cycles, else InvalidArgument).
struct TwinCheckpointing {
  Index every = 0;
  std::function<void(const TwinState&)> save;
  const TwinState* resume = nullptr;
};

// A checkpoint file of a cycling run (varflow/io/checkpoint_file.h), tied to `fingerprint`.
void save_twin_state(const std::filesystem::path& file, const TwinState& state, const std::string& fingerprint);
// InvalidArgument naming the file when it is not such a checkpoint, is damaged or has another fingerprint.
TwinState load_twin_state(const std::filesystem::path& file, const std::string& fingerprint);

// Runs the experiment on given data (the config's observation and truth settings are not used).
TwinExperimentResult run_twin_experiment(const TwinExperimentConfig& config, const TwinData& data,
                                         const ProgressCallback& progress = {},
                                         const TwinCheckpointing& checkpointing = {});

}  // namespace varflow
