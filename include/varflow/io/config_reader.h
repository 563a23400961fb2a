#pragma once
// Strict reading of YAML configuration sections. yaml-cpp stays a private dependency: the parsed
// document is held behind an opaque node.
//
// Every key read is recorded; finish() rejects any key that was not read, so a typo is an error that
// names the key and the keys that were expected, instead of a silently ignored setting. Errors:
//   config: unknown key 'model.forcng' (expected one of: dt, forcing, n)
//   config: model.n = 'abc' is not an integer
//   config: method = 'strongg' is not one of: strong, incremental, weak, 3dvar
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "varflow/core/limits.h"

namespace varflow::io {

class ConfigReader {
 public:
  // Parses YAML text (throws InvalidArgument with the line and column of a syntax error).
  static ConfigReader parse(const std::string& text, const std::string& source_name);

  bool has(const std::string& key) const;
  bool is_list(const std::string& key) const;
  double real(const std::string& key, double default_value);
  long long integer(const std::string& key, long long default_value);
  // An integer that sizes or counts something, in [minimum, maximum]: "config: cycling.cycles = -3
  // must be at least 1", "config: cycling.cycles = 10000000000 is above the limit 1000000000".
  long long count(const std::string& key, long long default_value, long long minimum,
                  long long maximum = limits::kMaxCount);
  bool boolean(const std::string& key, bool default_value);
  std::string text(const std::string& key, const std::string& default_value);
  // A string that must be one of `allowed`.
  std::string choice(const std::string& key, const std::string& default_value,
                     const std::vector<std::string>& allowed);
  std::vector<double> reals(const std::string& key, const std::vector<double>& default_value);
  std::vector<long long> integers(const std::string& key, const std::vector<long long>& default_value);
  // A sub-section (an empty one when absent).
  ConfigReader section(const std::string& key);
  // The scalars of sub-section `key`, at any depth, as (dotted key relative to the section, text):
  // `a: {b: 1, c: {d: x}}` gives ("b", "1"), ("c.d", "x"). For sections whose keys another reader
  // checks (e.g. amortized::apply_entry). Lists are an error naming the key.
  std::vector<std::pair<std::string, std::string>> flattened(const std::string& key);
  // The same for this whole section (every key counts as read), in file order.
  std::vector<std::pair<std::string, std::string>> entries();
  // A key of an earlier version of the format: InvalidArgument "config: key 'obs_noise' was renamed:
  // use observations.error_variance (<note>)" when it is present, so that an old file is not half-read.
  void refuse_renamed(const std::string& old_key, const std::string& new_key, const std::string& note = "") const;
  // Throws InvalidArgument naming the first key that was never read.
  void finish() const;
  // "model.n" for key "n" in section "model".
  std::string name(const std::string& key) const;

 private:
  struct Node;  // a yaml-cpp node (config_reader.cpp)
  // `node` must be a map or null (an absent section); `path` is the section's dotted name ("" = root).
  ConfigReader(const Node& node, std::string path);
  Node value(const std::string& key);
  std::shared_ptr<const Node> node_;
  std::string path_;
  std::set<std::string> read_;
};

}  // namespace varflow::io
