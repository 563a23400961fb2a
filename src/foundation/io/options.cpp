#include "varflow/io/options.h"

#include <charconv>
#include <cmath>
#include <limits>
#include <sstream>

#include "varflow/core/error.h"

namespace varflow::io {

NumericOption NumericOption::real(std::string key, double default_value, Rule rule, std::string help) {
  NumericOption o;
  o.key = std::move(key);
  o.kind = Kind::kReal;
  o.default_value = default_value;
  o.rule = rule;
  o.help = std::move(help);
  return o;
}

NumericOption NumericOption::integer(std::string key, long long default_value, long long minimum, std::string help) {
  NumericOption o;
  o.key = std::move(key);
  o.kind = Kind::kInteger;
  o.default_value = static_cast<double>(default_value);
  o.rule = Rule::kAtLeast;
  o.minimum = static_cast<double>(minimum);
  o.help = std::move(help);
  return o;
}

NumericOption NumericOption::state_size(std::string key, long long default_value, long long minimum,
                                        std::string help) {
  NumericOption o = integer(std::move(key), default_value, minimum, std::move(help));
  o.maximum = limits::kMaxStateSize;
  o.is_state_size = true;
  return o;
}

NumericValues default_values(const std::vector<NumericOption>& options) {
  NumericValues v;
  for (const auto& o : options) v[o.key] = o.default_value;
  return v;
}

void check_value(const NumericOption& o, double v, const std::string& name, const std::string& where) {
  const auto fail = [&](const std::string& rule) {
    throw InvalidArgument(format_message(where, ": ", name, " = ", v, " ", rule));
  };
  if (!std::isfinite(v)) fail("must be finite");
  switch (o.rule) {
    case NumericOption::Rule::kFinite: break;
    case NumericOption::Rule::kPositive:
      if (!(v > 0.0)) fail("must be positive");
      break;
    case NumericOption::Rule::kNonNegative:
      if (!(v >= 0.0)) fail("must be non-negative");
      break;
    case NumericOption::Rule::kAtLeast:
      if (v < o.minimum) fail(format_message("must be at least ", o.minimum));
      break;
  }
  if (o.kind == NumericOption::Kind::kInteger) {
    // Integer values come from a long long, so the conversion below is exact up to 2^53 and
    // saturates above the limit in any case.
    const long long n = v >= 9.2e18 ? std::numeric_limits<long long>::max() : static_cast<long long>(v);
    limits::check_at_most(where, name, n, o.maximum,
                          o.is_state_size ? "one state would take " + limits::bytes_text(8.0 * v) : "");
  }
}

NumericValues read_values(ConfigReader& section, const std::vector<NumericOption>& options, const NumericValues& start) {
  NumericValues values = default_values(options);
  for (const auto& [k, v] : start) {
    if (values.count(k) != 0) values[k] = v;
  }
  for (const auto& o : options) {
    double& v = values[o.key];
    if (o.kind == NumericOption::Kind::kInteger) {
      v = static_cast<double>(section.integer(o.key, static_cast<long long>(v)));
    } else {
      v = section.real(o.key, v);
    }
    check_value(o, v, section.name(o.key), "config");
  }
  return values;
}

std::string values_yaml(const std::vector<NumericOption>& options, const NumericValues& values, int indent) {
  std::ostringstream os;
  for (const auto& o : options) {
    const double v = value_of(values, o.key, "values_yaml");
    os << std::string(static_cast<std::size_t>(indent), ' ') << o.key << ": ";
    if (o.kind == NumericOption::Kind::kInteger) {
      os << static_cast<long long>(v);
    } else {
      os << shortest_text(v);
    }
    os << "\n";
  }
  return os.str();
}

std::string nested_yaml(const std::vector<std::pair<std::string, std::string>>& entries) {
  std::ostringstream os;
  std::vector<std::string> open;  // the sections of the previous key
  for (const auto& [key, value] : entries) {
    std::vector<std::string> parts;
    for (std::size_t start = 0;;) {
      const std::size_t dot = key.find('.', start);
      parts.push_back(key.substr(start, dot - start));
      if (dot == std::string::npos) break;
      start = dot + 1;
    }
    std::size_t common = 0;
    while (common < open.size() && common + 1 < parts.size() && open[common] == parts[common]) ++common;
    open.resize(common);
    for (std::size_t level = common; level + 1 < parts.size(); ++level) {
      os << std::string(2 * level, ' ') << parts[level] << ":\n";
      open.push_back(parts[level]);
    }
    os << std::string(2 * (parts.size() - 1), ' ') << parts.back() << ": " << (value.empty() ? "\"\"" : value) << "\n";
  }
  return os.str();
}

std::string shortest_text(double value) {
  char buffer[32];
  const auto r = std::to_chars(buffer, buffer + sizeof buffer, value);
  return std::string(buffer, r.ptr);
}

double value_of(const NumericValues& values, const std::string& key, const std::string& where) {
  const auto it = values.find(key);
  if (it == values.end()) throw InvalidArgument(format_message(where, ": no value for '", key, "'"));
  return it->second;
}

}  // namespace varflow::io
