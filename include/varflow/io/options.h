#pragma once
// Typed numeric options: the one convention for a component's settings (a model's parameters, ...).
// Each option has a key, an integer or real kind, a default, a rule and a one-line help. The same
// table reads a config section (strict: ConfigReader names unknown keys), checks each value by its
// rule, writes YAML back, and documents the options in --help and printed defaults. Error messages:
//   config: model.n = 3 must be at least 4
//   config: model.dt = 0 must be positive
#include <map>
#include <string>
#include <vector>

#include "varflow/core/limits.h"
#include "varflow/io/config_reader.h"

namespace varflow::io {

struct NumericOption {
  enum class Kind { kReal, kInteger };
  enum class Rule { kFinite, kPositive, kNonNegative, kAtLeast };
  std::string key;
  Kind kind = Kind::kReal;
  double default_value = 0.0;
  Rule rule = Rule::kFinite;
  double minimum = 0.0;  // for kAtLeast
  // Integers only: the largest value accepted, checked before anything is allocated
  // (varflow/core/limits.h); `is_state_size`: the value is a number of state variables, and the
  // error says how much memory one state would take.
  long long maximum = limits::kMaxCount;
  bool is_state_size = false;
  std::string help;      // one line: meaning and unit

  static NumericOption real(std::string key, double default_value, Rule rule, std::string help);
  static NumericOption integer(std::string key, long long default_value, long long minimum, std::string help);
  // An integer that sizes a state (at most limits::kMaxStateSize).
  static NumericOption state_size(std::string key, long long default_value, long long minimum, std::string help);
};

// Values by key (every option of a table present once it has been read or defaulted).
using NumericValues = std::map<std::string, double>;

// The defaults of a table.
NumericValues default_values(const std::vector<NumericOption>& options);
// Reads every option of `options` from `section` (absent keys keep `start`'s value, else the
// default) and checks each by its rule; InvalidArgument names the dotted key and the value.
NumericValues read_values(ConfigReader& section, const std::vector<NumericOption>& options,
                          const NumericValues& start = {});
// Checks one value by its option's rule; `name` is the key as the user wrote it ("model.n", "--n").
void check_value(const NumericOption& option, double value, const std::string& name, const std::string& where);
// "  key: value\n" for each option in table order, with `indent` spaces (integers without a point,
// reals in the shortest form that reads back exactly).
std::string values_yaml(const std::vector<NumericOption>& options, const NumericValues& values, int indent);
// Dotted "a.b.c: value" entries as nested YAML mappings, consecutive keys of one section under one
// heading ("training.epochs", "training.batch_size" -> "training:\n  epochs: ...\n  batch_size: ...").
// Values are written as given, an empty one as "". For printing defaults that read back as a config.
std::string nested_yaml(const std::vector<std::pair<std::string, std::string>>& entries);
// The shortest text that reads back as the same double ("0.05", not "0.050000000000000003").
std::string shortest_text(double value);
// The value of `key` (InvalidArgument naming `where` and the key when it is not in the table).
double value_of(const NumericValues& values, const std::string& key, const std::string& where);

}  // namespace varflow::io
