#pragma once
// YAML configuration of a cycling assimilation experiment (`varflow simulate`, `varflow assimilate`,
// `varflow config --print-default`). The format, key by key, is in design/formats.md; the default is
// default_experiment_yaml(). Unknown keys, wrong types and out-of-range values are errors that name
// the key and the value (InvalidArgument).
#include <memory>
#include <string>

#include "varflow/experiment/twin_experiment.h"
#include "varflow/model/model_registry.h"

namespace varflow {

// What to do with non-finite observation values read from a file.
enum class NonFiniteObservations { kReject, kMask };

struct ExperimentConfig {
  ModelSpec model;                  // the model section (model/model_registry.h)
  TwinExperimentConfig experiment;  // experiment.model is built from `model`
  NonFiniteObservations non_finite_observations = NonFiniteObservations::kReject;
  std::string text;                 // the YAML it was read from ("" for a built-in default)
};

// Parses and validates a YAML config; `source` names it in messages (a file name).
ExperimentConfig parse_experiment_config(const std::string& yaml, const std::string& source);
// The built-in default (Lorenz-96, N=40, F=8, dt=0.05, all variables observed every 4 steps, R=I,
// incremental 4D-Var, 100 cycles), as the config struct and as commented YAML ready to edit.
ExperimentConfig default_experiment_config();
std::string default_experiment_yaml();
// A config written back as YAML (every key, with its value).
std::string to_yaml(const ExperimentConfig& config);
// FNV-1a 64-bit hash of the text, as 16 hex digits (the provenance config hash).
std::string config_hash(const std::string& text);

}  // namespace varflow
