#pragma once
// The provenance of the run that writes files: the command line, the config text and the seed. A
// command sets it once, before writing; every NetcdfWriter::commit adds it to the file as global
// attributes (`config`, `config_hash`, `seed`, and the command line in `history`; design/formats.md,
// "CF and provenance"). Unset, files carry the program version and creation time only.
#include <cstdint>
#include <optional>
#include <string>

namespace varflow {

struct RunProvenance {
  std::string command_line;           // the program's arguments, joined by spaces
  std::string config;                 // the run's config text (YAML), "" when it has none
  std::optional<std::uint64_t> seed;  // the run's seed, when it has one
};

// The process's run provenance (one run per process: the command line program).
const RunProvenance& run_provenance();
void set_run_command_line(int argc, const char* const* argv);
void set_run_config(const std::string& config_text, std::uint64_t seed);
void clear_run_provenance();  // back to unset (tests)
// Now in UTC, ISO 8601: "2026-12-02T04:51:41Z" (the `date_created` attribute).
std::string utc_timestamp();
// FNV-1a 64 of a config text, 16 hex digits (the `config_hash` attribute).
std::string provenance_config_hash(const std::string& config_text);

}  // namespace varflow
