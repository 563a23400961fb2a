#pragma once
// Running a peer program (a numpy or scipy script) from a bench and reading what it prints.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

namespace varflow::bench {

// Runs `command` through the shell and returns its standard output with trailing newlines removed;
// empty when it could not be started or printed nothing.
inline std::string command_output(const std::string& command) {
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  if (!pipe) return {};
  std::string out;
  char buffer[512];
  while (std::fgets(buffer, sizeof buffer, pipe.get()) != nullptr) out += buffer;
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

// The number of `key=<number>` in a line of space-separated fields (the key at the start of the
// line or after a space); NaN when absent.
inline double field(const std::string& line, const std::string& key) {
  for (std::size_t at = line.find(key + "="); at != std::string::npos; at = line.find(key + "=", at + 1)) {
    if (at == 0 || line[at - 1] == ' ') return std::atof(line.c_str() + at + key.size() + 1);
  }
  return std::nan("");
}

}  // namespace varflow::bench
