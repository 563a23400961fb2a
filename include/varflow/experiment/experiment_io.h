#pragma once
// netCDF files of cycling experiments (formats in design/formats.md):
//   truth_obs.nc  (varflow simulate)   truth trajectory, observations, first background
//   analysis.nc   (varflow assimilate) per-cycle scores, final analysis and its standard deviations
// Writers never leave a half-written file (NetcdfWriter). Readers name the file, the variable and
// what was expected.
#include <filesystem>

#include "varflow/experiment/twin_experiment.h"
#include "varflow/experiment/experiment_config.h"

namespace varflow {

inline constexpr long long kExperimentFormatVersion = 1;

void write_twin_data(const std::filesystem::path& path, const TwinData& data, const ExperimentConfig& config);

// Reads observations (and the truth and first background when present) for an experiment with
// states of size n over total_steps global steps. Non-finite values are rejected (naming the time
// and observation) or masked, as `policy` says. A file without a truth gives an empty truth; without
// a background, an empty initial_background (the caller supplies one).
TwinData read_twin_data(const std::filesystem::path& path, Index n, Index total_steps, NonFiniteObservations policy);

// Reads a state vector of size n: variable `background`, else `analysis`, else `initial_background`.
Vector read_background(const std::filesystem::path& path, Index n);

void write_analysis(const std::filesystem::path& path, const TwinExperimentResult& result,
                    const ExperimentConfig& config);

}  // namespace varflow
