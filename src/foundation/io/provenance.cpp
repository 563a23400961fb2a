#include "varflow/io/provenance.h"

#include <ctime>

#include "varflow/core/hash.h"

namespace varflow {

namespace {
RunProvenance& state() {
  static RunProvenance p;
  return p;
}
}  // namespace

const RunProvenance& run_provenance() { return state(); }

void set_run_command_line(int argc, const char* const* argv) {
  std::string line;
  for (int i = 0; i < argc; ++i) line += (i == 0 ? "" : " ") + std::string(argv[i]);
  state().command_line = line;
}

void set_run_config(const std::string& config_text, std::uint64_t seed) {
  state().config = config_text;
  state().seed = seed;
}

std::string utc_timestamp() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

void clear_run_provenance() { state() = RunProvenance{}; }

std::string provenance_config_hash(const std::string& config_text) { return hex64(fnv1a(config_text)); }

}  // namespace varflow
