#pragma once
// Steps 2 and 4 of the six-step cycle (design/cycle.md): 4D-Var on held-out windows with the physics
// (the oracle, step 2), then with another forecast model (the emulator, step 4), compared.
//
//   HeldOutWindows w = make_held_out_windows(*physics, truths, options, rng);  // the problems
//   OracleAnalyses o = solve_oracle(w, physics);                              // step 2
//   AnalysisComparison c = compare_with_oracle(w, o, physics, emulator, agreement);  // step 4
//
// The SAME solver (StrongFourDVar with a dense Laplace posterior) runs on every window with either
// model. The physics posteriors are the oracle of the posterior agreement gate
// (validation/posterior_agreement.h: the model's MAP within tolerance_sigma = 1 physics posterior
// standard deviation in every component, spread ratios in [0.8, 1.25]).
//
// A held-out window: truth x_0 (given, e.g. states of a physics trajectory), background
// x_b = x_0 + N(0, background_sd^2 I), B = background_sd^2 I; the truth is advanced with the PHYSICS
// and every obs_stride-th grid point is observed at steps 0, obs_every, 2 obs_every, .. <= steps
// (R = obs_sd^2 I).
//
// Multi-scale physics (e.g. two-scale Lorenz-96), compared with a reduced model of its leading
// `resolved` (slow) components at a time step of `step_multiple` physics steps: the truth and
// background are full physics states (the fast components' background sd is fast_background_sd);
// only resolved components are observed; one window step is step_multiple physics steps. A window
// for the physics controls the full state (B = diag(background_sd^2 on the resolved components,
// fast_background_sd^2 on the rest)); a window for a model of size `resolved` controls the resolved
// components only (B = background_sd^2 I). The oracle's posterior is then compared on its resolved
// marginal. With resolved = 0 (every component) and step_multiple = 1 this is the single-scale case.
#include <memory>
#include <string>
#include <vector>

#include "varflow/core/random.h"
#include "varflow/core/types.h"
#include "varflow/model/model.h"
#include "varflow/posterior/posterior.h"
#include "varflow/validation/posterior_agreement.h"
#include "varflow/var/window.h"

namespace varflow {

struct WindowOptions {
  Index steps = 4;          // model steps per window
  Index obs_every = 2;      // observation slots at steps 0, obs_every, ... <= steps
  Index obs_stride = 1;     // observed points: every obs_stride-th
  double background_sd = 1.0;
  double obs_sd = 1.0;
  Index step_multiple = 1;         // physics steps per window step
  Index resolved = 0;              // leading resolved components (0 = all)
  double fast_background_sd = 1.0; // background sd of the unresolved components (resolved > 0 only)

  // Throws InvalidArgument naming the field, its value and the rule.
  void validate() const;
  Index slots() const { return steps / obs_every + 1; }
};

// The held-out problems. truth, background: n x windows; observations: (slots * observed) x windows,
// slot-major (slot s holds the observed points of step s * obs_every).
struct HeldOutWindows {
  WindowOptions options;
  Matrix truth;
  Matrix background;
  Matrix observations;
  Index count() const { return truth.cols(); }
  Index state_size() const { return truth.rows(); }
  // The leading components that are observed and compared (options.resolved, or all).
  Index resolved_size() const { return options.resolved > 0 ? options.resolved : truth.rows(); }
  // Window w as a 4D-Var problem for `model`: the physics (state_size()) or, when resolved_size() <
  // state_size(), a reduced model of resolved_size() components; InvalidArgument for another size.
  AssimilationWindow window(Index w, std::shared_ptr<const Model> model) const;
  // Throws InvalidArgument naming the field when the matrices do not fit each other and the options.
  void validate() const;
};

// One window per column of `truths` (n x windows): draws the background and observation noise from
// rng and observes the physics trajectory from each truth.
HeldOutWindows make_held_out_windows(const Model& physics, const Matrix& truths, const WindowOptions& options,
                                     Rng& rng);

// Step 2: the oracle's Laplace posteriors. mean: n x windows (the MAP); covariance: one n x n matrix
// per window (empty for a window whose solve did not converge).
struct OracleAnalyses {
  Matrix mean;
  std::vector<Matrix> covariance;
  std::vector<bool> converged;
  double seconds = 0.0;     // wall clock of all solves
  double mean_rmse = 0.0;   // analysis RMSE against the truth (resolved components), over converged windows
  Index converged_count() const;
  // The posterior of window w (GaussianPosterior); nullptr when that solve did not converge.
  // resolved > 0: its marginal on the leading `resolved` components.
  std::shared_ptr<const Posterior> posterior(Index w, Index resolved = 0) const;
};
OracleAnalyses solve_oracle(const HeldOutWindows& windows, std::shared_ptr<const Model> physics);

// Step 4.
struct AnalysisComparison {
  AgreementResult agreement;
  Index windows = 0;
  Index failed_solves = 0;           // windows where either solve did not converge (not in the gate)
  double physics_seconds = 0.0;      // wall clock of all physics-model solves
  double emulator_seconds = 0.0;     // wall clock of all emulator solves
  double speedup() const { return emulator_seconds > 0.0 ? physics_seconds / emulator_seconds : 0.0; }
  double mean_physics_rmse = 0.0, mean_emulator_rmse = 0.0;  // analysis error against the truth
  // Model steps per window (physics, model) and the sizes of their control vectors: what one TL/AD
  // sweep costs each.
  Index physics_steps = 0, model_steps = 0, physics_size = 0, model_size = 0;
  bool passed() const { return failed_solves == 0 && agreement.passed(); }
  std::string report() const;
};

// Solves every window with `model` (of the physics' size, or of windows.resolved_size()) and compares
// its posteriors with the oracle's (on the resolved components). The physics is
// solved again on the same windows, side by side in this process, for the wall-clock ratio only (the
// agreement uses `oracle`). Throws InvalidArgument when the models' state size is not the windows',
// or `oracle` does not have one posterior per window.
AnalysisComparison compare_with_oracle(const HeldOutWindows& windows, const OracleAnalyses& oracle,
                                       std::shared_ptr<const Model> physics, std::shared_ptr<const Model> model,
                                       const AgreementOptions& agreement = {});

// All of the above on `windows` windows whose truths are spun up on the physics attractor
// (`spinup` steps from 8 + N(0, I)).
struct AnalysisComparisonOptions {
  Index windows = 8;
  Index spinup = 1000;
  WindowOptions window;
  AgreementOptions agreement;
  void validate() const;
};
AnalysisComparison compare_analyses(std::shared_ptr<const Model> physics, std::shared_ptr<const Model> emulator,
                                    const AnalysisComparisonOptions& options, Rng& rng);

}  // namespace varflow
