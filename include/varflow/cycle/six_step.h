#pragma once
// The six-step cycle on a registered model (design/cycle.md; Lorenz-96 by default, or a multi-scale
// model such as two-scale Lorenz-96 with a closure emulator of its slow variables): (1) physics forward, (2) the 4D-Var oracle on
// held-out windows, (3) the stencil emulator and its gate, (4) emulator-based analyses against the
// oracle, (5) the amortized predictor trained on the promoted model's pairs and held to the three
// gates against the physics oracle (cycle/predictor_step.h), (6) improve: every run writes a manifest
// (per step: a fingerprint of its inputs, its status and the checksum of its output), and a run in
// the same directory re-runs exactly the steps whose inputs changed and the steps downstream of them.
//
// Dependencies (a step's fingerprint covers its config keys and the checksums of its inputs):
//   1 <- the physics (model section), emulator.step_multiple, .train_pairs, .stride, .held_out, seed
//   2 <- step 1, oracle.windows and the observation network (cycling.window_steps,
//        observations.every_steps, .stride, .error_variance, background.variance, .fast_variance)
//   3 <- step 1, the emulator (emulator.hidden, .radius, .layers, .epochs, .learning_rate; it trains on one
//        thread, so not `threads`), or the
//        content checksum of emulator.file; for a multi-scale physics also cycling.window_steps (the
//        leads of the forecast-skill check)
//   4 <- step 2, step 3 (its output and verdict), on_gate_failure
//   5 <- the promoted model (the emulator when steps 3 and 4 passed; else the physics on fallback,
//        or none: the cycle stops), the physics, the observation network, the predictor settings,
//        threads
#include <filesystem>
#include <iosfwd>
#include <map>
#include <string>
#include <vector>

#include "varflow/core/communicator.h"
#include "varflow/core/types.h"
#include "varflow/cycle/predictor_step.h"
#include "varflow/model/model_registry.h"

namespace varflow::cycle {

// The configuration, in the sections every command shares (design/formats.md): model,
// observations, background, cycling; plus oracle, emulator and predictor. Units as in `assimilate`:
// error and background *variances*.
struct SixStepConfig {
  ModelSpec model;            // the physics (model registry; step 5 needs a registered amortized problem of its name)
  // emulator.step_multiple: physics steps per emulator step. The emulator predicts the physics'
  // resolved variables (all of them for a single-scale model; the slow ones of a multi-scale model,
  // ModelEntry::resolved_size) at this larger time step; cycling.window_steps and
  // observations.every_steps count emulator steps. 1 = the physics' own step; > 1 needs a multi-scale
  // physics (a closure replacing the fast scale and the small steps).
  Index step_multiple = 1;
  Index train_pairs = 6000;   // emulator.train_pairs: physics pairs for the emulator (every `stride` steps)
  Index stride = 5;           // emulator.stride
  Index held_out = 200;       // emulator.held_out: held-out states of the step-3 gate
  Index epochs = 150;         // emulator.epochs
  Index hidden = 16;          // emulator.hidden
  Index radius = 6;           // emulator.radius: stencil half-width (one RK4 step of Lorenz-96 reaches x_{i-8} .. x_{i+4})
  Index layers = 1;           // emulator.layers
  double learning_rate = 1e-2;  // emulator.learning_rate
  // emulator.file: an emulator file (varflow_stencil_emulator) to gate at step 3 instead of training
  // one: a component trained elsewhere, or a new version of the promoted one. "" = train.
  std::string emulator_file;
  Index windows = 10;         // oracle.windows: held-out 4D-Var windows (steps 2 and 4), <= held_out
  // The observation network of steps 2, 4 and 5: every obs_stride-th point observed at steps
  // 0, obs_every_steps, .. <= window_steps with error variance obs_error_variance; background error
  // variance background_variance (B = background_variance I).
  Index window_steps = 4;            // cycling.window_steps
  Index obs_every_steps = 2;         // observations.every_steps
  Index obs_stride = 1;              // observations.stride
  double obs_error_variance = 1.0;   // observations.error_variance
  double background_variance = 1.0;  // background.variance
  // background.fast_variance: the oracle's background error variance of the unresolved (fast)
  // variables of a multi-scale physics (unused for a single-scale one).
  double fast_background_variance = 0.01;

  Index state_size() const { return model.make()->state_size(); }  // the physics' state
  Index resolved_size() const { return model.resolved_size(); }     // what the emulator predicts
  double dt() const { return model.parameter("dt"); }                 // the physics' time step
  double emulator_dt() const { return dt() * static_cast<double>(step_multiple); }
  // Step 5 runs when an amortized problem of the physics' name is registered (amortized/problems.h).
  bool has_predictor_problem() const;
  double obs_sd() const;
  double background_sd() const;
  // Step 5 (design/cycle.md): overrides of the predictor's defaults by dotted key, as in the
  // `predictor:` section of the YAML config: "pairs", "head", "training.epochs", "gaussian.width",
  // "encoder.context", ... (the keys of `varflow train` configs) and "validation.events",
  // "validation.posterior_draws", "validation.jacobian_cases", "validation.sbc_simulations",
  // "validation.oracle_jacobian". The problem itself comes from the sections above: the physics, the
  // observation network, and background.variance as the variance of the predictor's Gaussian prior.
  std::map<std::string, std::string> predictor;
  Index threads = 2;          // OpenMP threads of step 5 (labels, training replicas, validation); step 3 uses one
  // stop | fallback (to the physics model) | evaluate (step 4 measures the refused emulator against
  // the oracle; nothing is promoted, step 5 stops, step 3 stays FAILED)
  std::string on_gate_failure = "stop";

  // Throws InvalidArgument naming the field, its value and the rule.
  void validate() const;
  // The options of step 5 for this configuration (InvalidArgument naming a bad predictor key).
  PredictorStepOptions predictor_options() const;
  // Strict YAML reading: unknown keys name themselves; absent keys keep the defaults; the flat keys of
  // earlier versions (n, obs_noise, ...) are refused naming their new key.
  static SixStepConfig from_yaml(const std::string& text, const std::string& source_name);
  std::string to_yaml() const;
};

enum class StepStatus { kPassed, kFailed, kRan, kSkipped };
// "passed" | "FAILED" | "ran" | "skipped"; step_status_from_string is its inverse
// (throws InvalidArgument naming the text).
std::string to_string(StepStatus s);
StepStatus step_status_from_string(const std::string& text);

struct StepRecord {
  int number = 0;
  std::string name;
  StepStatus status = StepStatus::kSkipped;
  std::string gate;       // one line: statistics against thresholds
  std::string detail;     // the full gate report
  std::string artifact;   // file written by the step ("" if none)
  std::string checksum;   // of the step's output (content, not file bytes)
  std::string inputs;     // fingerprint of the step's inputs (config keys and upstream checksums)
  double seconds = 0.0;   // of the run that computed the step
  bool reused = false;    // taken from the previous run's manifest: its inputs had not changed
  // Named series the step measured for the pictures of report.html (e.g. the emulator's loss per
  // epoch, its forecast RMSE per lead), kept in the manifest so that a reused step keeps them.
  std::map<std::string, std::vector<double>> figures;
};

struct SixStepReport {
  std::vector<StepRecord> steps;
  std::string config_hash;
  std::uint64_t seed = 0;
  bool all_gates_passed() const;
  // Numbers of the steps computed by this run (not reused), ascending.
  std::vector<int> steps_run() const;
  std::string table() const;
};

struct SixStepRunOptions {
  bool fresh = false;  // ignore DIR/manifest.json of a previous run: compute every step
  // Testing a killed run: throw Error right after step `stop_after_step` (1-5) is recorded in the
  // manifest; 0 runs to the end.
  int stop_after_step = 0;
};

// Runs the cycle in `dir` (created if missing) and writes its artifacts there: physics.nc (step 1),
// oracle.nc (2), emulator.nc (3), predictor.nc (5), manifest.json and report.html. A step is reused
// when the previous manifest in `dir` records the same input fingerprint and its artifact is present
// with the recorded checksum; everything else runs. Every step draws from its own random stream
// (seed, step), so a re-run step gives what a complete run would. Logs progress to `log`. Throws
// InvalidArgument on an invalid config.
//
// On several ranks (design/parallel.md) every rank of `comm` calls it with the same arguments and
// `dir` on a file system all of them see. Steps 1-4 run on every rank (the same numbers); step 5
// splits its oracle labels, training batches, held-out events and SBC simulations over the ranks.
// Rank 0 alone logs and writes; a step is reused only when every rank can reuse it.
SixStepReport run_six_step(const SixStepConfig& config, std::uint64_t seed, const std::filesystem::path& dir,
                           std::ostream& log, const SixStepRunOptions& run = {},
                           const Communicator& comm = serial_communicator());

}  // namespace varflow::cycle
