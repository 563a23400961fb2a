#pragma once
// The six-step cycle on Lorenz-96 (design/cycle.md): (1) physics forward, (2) the 4D-Var oracle,
// (3) the stencil emulator and its gate, (4) emulator-based analyses against the oracle,
// (5) the amortized predictor (not implemented in this version: reported as such), (6) the
// manifest of the run. Steps 2 and 4 share the held-out windows: compare_analyses solves each
// window with the physics (the oracle, step 2) and with the promoted model (step 4) side by side.
#include <filesystem>
#include <iosfwd>
#include <string>
#include <vector>

#include "varflow/core/types.h"

namespace varflow::cycle {

struct SixStepConfig {
  Index n = 40;
  double forcing = 8.0;
  double dt = 0.05;
  Index train_pairs = 6000;   // physics pairs for the emulator (every `stride` steps)
  Index stride = 5;
  Index held_out = 200;       // held-out states of the step-3 gate
  Index epochs = 150;
  Index hidden = 16;
  Index radius = 4;
  Index layers = 1;
  double learning_rate = 1e-2;
  Index windows = 10;         // held-out 4D-Var windows (steps 2 and 4)
  Index window_steps = 4;
  Index threads = 1;          // OpenMP threads for the run (the small networks are fastest on one)
  std::string on_gate_failure = "stop";  // stop | fallback (to the physics model)

  // Throws InvalidArgument naming the field, its value and the rule.
  void validate() const;
  // Strict YAML reading: unknown keys name themselves; absent keys keep the defaults.
  static SixStepConfig from_yaml(const std::string& text, const std::string& source_name);
  std::string to_yaml() const;
};

enum class StepStatus { kPassed, kFailed, kRan, kSkipped, kNotImplemented };
std::string to_string(StepStatus s);

struct StepRecord {
  int number = 0;
  std::string name;
  StepStatus status = StepStatus::kSkipped;
  std::string gate;       // one line: statistics against thresholds
  std::string detail;     // the full gate report
  std::string artifact;   // file written by the step ("" if none)
  std::string checksum;   // of the step's output
  double seconds = 0.0;
};

struct SixStepReport {
  std::vector<StepRecord> steps;
  std::string config_hash;
  std::uint64_t seed = 0;
  bool all_gates_passed() const;
  std::string table() const;
};

// Runs the cycle, writes DIR/emulator.nc, DIR/manifest.json and DIR/report.html, logs progress to
// `log`. Throws InvalidArgument on an invalid config.
SixStepReport run_six_step(const SixStepConfig& config, std::uint64_t seed, const std::filesystem::path& dir,
                           std::ostream& log);

}  // namespace varflow::cycle
