#pragma once
// netCDF files of the amortized posterior other than the model itself (model files:
// AmortizedPosterior::save / load). Formats in design/formats.md. Outputs are written through
// AtomicOutput (never half-written); reading errors are InvalidArgument naming the file and field.
#include <cstdint>
#include <filesystem>
#include <string>

#include "varflow/core/types.h"

namespace varflow::amortized {

// Observation file: a double variable `observations` of any rank, read in C order (so the
// observations(obs_time, obs) of a `varflow simulate` file read time after time), or a 1-D
// `observation(obs)` (older files); NaN (or the variable's _FillValue) marks a missing value. The
// writer writes `observations(obs)`.
Vector read_observation_file(const std::filesystem::path& file);
void write_observation_file(const std::filesystem::path& file, const Vector& y);

struct SamplesFileInfo {
  std::string model;     // path of the model file the draws came from
  std::string problem;   // the model's problem label
  std::string head;      // flow | score | gaussian
  std::uint64_t seed = 0;
};

// Samples file: samples(sample, state) (one draw per row), observation(obs) (NaN = missing) and
// mean(state) (the model's posterior mean at the observation), with the info as attributes.
void write_samples_file(const std::filesystem::path& file, const Matrix& draws, const Vector& observation,
                        const Vector& mean, const SamplesFileInfo& info);

struct SamplesFile {
  Matrix draws;  // state x sample (one draw per column, as everywhere in varflow)
  Vector observation;
  Vector mean;
  SamplesFileInfo info;
};
SamplesFile read_samples_file(const std::filesystem::path& file);

}  // namespace varflow::amortized
