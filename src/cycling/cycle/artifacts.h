#pragma once
// The files of a six-step run (internal to the cycle module; formats in design/formats.md):
// physics.nc (step 1), oracle.nc (step 2), manifest.json and report.html. Every netCDF artifact
// stores the checksum of its content; loading recomputes it and refuses a file that does not match.
#include <filesystem>
#include <map>
#include <string>

#include "varflow/cycle/six_step.h"
#include "varflow/validation/analysis_comparison.h"
#include "varflow/emulator/stencil_emulator.h"

namespace varflow::cycle {

// Step 1's output: the emulator's training pairs and the held-out states.
struct PhysicsData {
  emulator::TrajectoryPairs train;
  emulator::TrajectoryPairs held_out;
  std::string checksum() const;  // FNV-1a 64 over the four matrices, 16 hex digits
};
void save_physics(const PhysicsData& data, const std::filesystem::path& file);
PhysicsData load_physics(const std::filesystem::path& file);

// Step 2's output: the held-out windows and the oracle's analyses of them.
struct OracleData {
  HeldOutWindows windows;
  OracleAnalyses analyses;
  std::string checksum() const;  // over the windows (options included) and the analyses
};
void save_oracle(const OracleData& data, const std::filesystem::path& file);
OracleData load_oracle(const std::filesystem::path& file);

// The previous run's manifest: its step records by number. Empty (with `why` set) when the file is
// missing, unreadable or not a six-step manifest of this format.
struct PreviousRun {
  std::map<int, StepRecord> steps;
  std::string why;  // "" when a manifest was read
};
PreviousRun read_manifest(const std::filesystem::path& file);
// `complete` is false for the manifest written after each step of a run still going (or killed):
// it records the finished steps, and all_gates_passed is false.
void write_manifest(const SixStepReport& report, const std::string& config_yaml, const std::filesystem::path& file,
                    bool complete);
void write_report_html(const SixStepReport& report, const std::string& config_yaml,
                       const std::filesystem::path& file);

}  // namespace varflow::cycle
