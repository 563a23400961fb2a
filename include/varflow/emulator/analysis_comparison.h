#pragma once
// Step 4 of the six-step cycle (design/cycle.md): do 4D-Var analyses with the emulator as the forecast
// model agree with those of the physics model? The SAME solver (StrongFourDVar with a dense Laplace
// posterior) runs on the same held-out windows twice, once per model; the physics posteriors are the
// oracle of the posterior agreement gate (validation/posterior_agreement.h: emulator MAP within
// tolerance_sigma = 1 physics posterior standard deviation in every component, spread ratios in
// [0.8, 1.25]). Wall-clock times of both runs are measured side by side in the same process.
//
// Held-out windows: truth x_0 spun up on the physics attractor from a random start, background
// x_b = x_0 + N(0, background_sd^2 I), B = background_sd^2 I; the truth is advanced with the PHYSICS
// and observed at steps obs_every, 2 obs_every, .. <= steps (identity operator, every grid point,
// R = obs_sd^2 I).
#include <memory>
#include <string>

#include "varflow/core/random.h"
#include "varflow/core/types.h"
#include "varflow/model/model.h"
#include "varflow/validation/posterior_agreement.h"

namespace varflow::emulator {

struct AnalysisComparisonOptions {
  Index windows = 8;
  Index steps = 4;          // model steps per window
  Index obs_every = 2;
  double background_sd = 1.0;
  double obs_sd = 1.0;
  Index spinup = 1000;      // steps from a random start to the truth of a window
  AgreementOptions agreement;

  // Throws InvalidArgument naming the field, its value and the rule.
  void validate() const;
};

struct AnalysisComparison {
  AgreementResult agreement;
  Index windows = 0;
  Index failed_solves = 0;           // windows where either solver did not converge (not in the gate)
  double physics_seconds = 0.0;      // wall clock of all physics-model solves
  double emulator_seconds = 0.0;     // wall clock of all emulator solves
  double speedup() const { return emulator_seconds > 0.0 ? physics_seconds / emulator_seconds : 0.0; }
  double mean_physics_rmse = 0.0, mean_emulator_rmse = 0.0;  // analysis error against the truth
  bool passed() const { return failed_solves == 0 && agreement.passed(); }
  std::string report() const;
};

// Throws InvalidArgument on invalid options or models of different state sizes.
AnalysisComparison compare_analyses(std::shared_ptr<const Model> physics, std::shared_ptr<const Model> emulator,
                                    const AnalysisComparisonOptions& options, Rng& rng);

}  // namespace varflow::emulator
