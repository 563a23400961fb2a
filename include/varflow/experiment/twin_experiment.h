#pragma once
// Cycling twin experiments: a truth run of the model, synthetic observations of it, and a sequence
// of assimilation windows in which each window's background is the previous window's analysis
// forecast to the window end (the analysis trajectory's final state).
//
// Window c covers global model steps [c W, (c + 1) W] (W = window_steps). It holds the observations at
// the global steps t in [c W, (c + 1) W) with t % obs_every_steps == 0 (so every observation is used
// once), at window step t - c W. The analysis is the MAP of x at the window start; it is scored
// against the truth there:
//     analysis RMSE  = ||x_a - x_t|| / sqrt(n),   background RMSE = ||x_b - x_t|| / sqrt(n),
//     spread         = sqrt(mean_i P_a,ii)        (the root-mean posterior variance of x_0).
// Time means are over the cycles c >= burn_in.
//
// Everything random (truth spin-up, initial background, observation errors) comes from one Rng seeded
// with `seed`: the same config gives the same numbers on the same build.
#include <cstdint>
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

namespace varflow {

enum class VarMethod { kStrong4DVar, kIncremental4DVar, kWeak4DVar, k3DVar };
// "strong_4dvar", "incremental_4dvar", "weak_4dvar", "3dvar".
std::string to_string(VarMethod method);
bool var_method_from_string(std::string_view name, VarMethod* method);

enum class BackgroundCovarianceType { kScaledIdentity, kPeriodicGaussian };
// "scaled_identity", "periodic_gaussian".
std::string to_string(BackgroundCovarianceType type);
bool background_covariance_type_from_string(std::string_view name, BackgroundCovarianceType* type);

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
  double initial_background_std = 1.0; // x_b of cycle 0 = truth + N(0, s^2 I)
  // ---- cycling
  Index window_steps = 8;
  Index cycles = 100;
  Index burn_in = 20;
  std::uint64_t seed = 1;
  // ---- the method and its options
  VarMethod method = VarMethod::kIncremental4DVar;
  StrongFourDVarOptions strong;
  GaussNewtonOptions incremental;   // incremental 4D-Var and 3D-Var
  WeakFourDVarOptions weak;
  double model_error_variance = 0.01;  // Q = variance * I (weak constraint)

  // Throws InvalidArgument naming the first bad field, its value and the rule (e.g. burn_in >= cycles,
  // an observed variable outside [0, n), 3D-Var with window_steps != obs_every_steps).
  void validate() const;
};

// The built-in default: Lorenz-96 (n = 40, F = 8, dt = 0.05), every variable observed every 4 steps with
// R = I, incremental 4D-Var over 8-step windows (two observation times per window, 0.4 time units),
// B = 0.4 I, 100 cycles with a burn-in of 20; Gauss-Newton to a relative gradient of 1e-6 (at most 10
// outer loops), the posterior from the last inner Lanczos process extended to the full control space. See design/solvers.md for the measured scores and the B and window scans behind them.
TwinExperimentConfig default_twin_experiment_config();

// The inputs of a cycling run that are not configuration: the truth (when known), the observations
// and the first background. simulate_twin_data() makes them from a config; they can also be read from
// files (experiment/experiment_io.h), e.g. real observations with no truth.
struct TwinData {
  // x at global steps 0 .. cycles * window_steps (empty when the truth is unknown: RMSEs are NaN).
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
  // outside [0, total_steps).
  void validate(Index n, Index total_steps) const;
};

// Truth run from the config's truth start (after spin-up), observations of it with N(0, R) errors,
// and a first background truth + N(0, initial_background_std^2 I); all from Rng(config.seed).
TwinData simulate_twin_data(const TwinExperimentConfig& config);

struct CycleRecord {
  Index cycle = 0;
  double analysis_rmse = 0.0;
  double background_rmse = 0.0;
  double spread = 0.0;  // NaN when the solver returned no posterior
  int iterations = 0;
  int outer_iterations = 0;
  double final_cost = 0.0;
  Index num_tl_sweeps = 0;
  Index num_ad_sweeps = 0;
  Index num_forward_runs = 0;
  double seconds = 0.0;
  TerminationType termination = TerminationType::kConverged;
};

struct TwinExperimentResult {
  std::string method;
  std::vector<CycleRecord> cycles;
  Index burn_in = 0;
  // Time means over cycles >= burn_in.
  double mean_analysis_rmse = 0.0;
  double mean_background_rmse = 0.0;
  double mean_spread = 0.0;
  double mean_seconds = 0.0;
  double mean_iterations = 0.0;
  double mean_tl_sweeps = 0.0;
  double mean_ad_sweeps = 0.0;
  Index cycles_not_converged = 0;  // over all cycles
  Index cycles_failed = 0;         // of those, numerical failures (TerminationType::kNumericalFailure)
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
// Runs the experiment on given data (the config's observation and truth settings are not used).
TwinExperimentResult run_twin_experiment(const TwinExperimentConfig& config, const TwinData& data,
                                         const ProgressCallback& progress = {});

}  // namespace varflow
