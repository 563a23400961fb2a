#include "varflow/io/config_reader.h"

#include <yaml-cpp/yaml.h>

#include <sstream>

#include "varflow/core/error.h"
#include "varflow/core/limits.h"

namespace varflow::io {

struct ConfigReader::Node {
  YAML::Node yaml;
};

namespace {
std::string scalar_text(const YAML::Node& n) {
  if (n.IsScalar()) return n.Scalar();
  std::ostringstream os;
  os << n;
  return os.str();
}
}  // namespace

ConfigReader::ConfigReader(const Node& node, std::string path)
    : node_(std::make_shared<const Node>(node)), path_(std::move(path)) {
  const YAML::Node& n = node_->yaml;
  if (n.IsDefined() && !n.IsNull() && !n.IsMap()) {
    throw InvalidArgument(format_message("config: ", path_.empty() ? "the document" : path_,
                                         " must be a map of key: value pairs"));
  }
}

namespace {

// yaml-cpp keeps the first of two equal keys of a mapping without a word; a strict reader refuses
// them, since the setting that was meant is ambiguous. Keys that are not scalars are refused too.
// Aliases (`*a`) share nodes, so a small text can name exponentially many values ("billion
// laughs"); the walk stops with an error past this many.
constexpr long long kMaxConfigValues = 1'000'000;

void reject_duplicate_keys(const YAML::Node& node, const std::string& path, const std::string& source_name,
                           long long& visited) {
  if (++visited > kMaxConfigValues) {
    throw InvalidArgument(format_message("config ", source_name, ": the document holds more than ", kMaxConfigValues,
                                         " values (with its aliases expanded)"));
  }
  if (node.IsSequence()) {
    for (const auto& item : node) reject_duplicate_keys(item, path, source_name, visited);
    return;
  }
  if (!node.IsMap()) return;
  std::set<std::string> seen;
  for (const auto& kv : node) {
    // Every key is a name: a list or mapping as a key (`? [a, b]: 1`) is refused here, so that the
    // readers below can take every key as text.
    if (!kv.first.IsScalar()) {
      throw InvalidArgument(format_message("config ", source_name, ": a key ", path.empty() ? "" : "in '" + path + "' ",
                                           "at line ", kv.first.Mark().line + 1, " is not a name"));
    }
    const std::string key = kv.first.Scalar();
    const std::string name = path.empty() ? key : path + "." + key;
    if (!seen.insert(key).second) {
      throw InvalidArgument(format_message("config ", source_name, ": key '", name, "' appears twice (line ",
                                           kv.first.Mark().line + 1, ")"));
    }
    reject_duplicate_keys(kv.second, name, source_name, visited);
  }
}

}  // namespace

ConfigReader ConfigReader::parse(const std::string& text, const std::string& source_name) {
  try {
    YAML::Node root = YAML::Load(text);
    long long visited = 0;
    reject_duplicate_keys(root, "", source_name, visited);
    return ConfigReader(Node{root}, "");
  } catch (const YAML::ParserException& e) {
    throw InvalidArgument(format_message("config ", source_name, ": YAML syntax error at line ", e.mark.line + 1,
                                         ", column ", e.mark.column + 1, ": ", e.msg));
  }
}

std::string ConfigReader::name(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }

bool ConfigReader::has(const std::string& key) const {
  const YAML::Node& n = node_->yaml;
  return n.IsMap() && n[key].IsDefined() && !n[key].IsNull();
}

bool ConfigReader::is_list(const std::string& key) const { return has(key) && node_->yaml[key].IsSequence(); }

ConfigReader::Node ConfigReader::value(const std::string& key) {
  read_.insert(key);
  if (!node_->yaml.IsMap()) return Node{YAML::Node()};
  YAML::Node map = node_->yaml;  // a handle; the non-const [] gives an undefined node for a missing key
  return Node{map[key]};
}

double ConfigReader::real(const std::string& key, double default_value) {
  const YAML::Node n = value(key).yaml;
  if (!n.IsDefined() || n.IsNull()) return default_value;
  double v = 0.0;
  if (!n.IsScalar() || !YAML::convert<double>::decode(n, v)) {
    throw InvalidArgument(format_message("config: ", name(key), " = '", scalar_text(n), "' is not a number"));
  }
  return v;
}

long long ConfigReader::integer(const std::string& key, long long default_value) {
  const YAML::Node n = value(key).yaml;
  if (!n.IsDefined() || n.IsNull()) return default_value;
  long long v = 0;
  if (!n.IsScalar() || !YAML::convert<long long>::decode(n, v)) {
    throw InvalidArgument(format_message("config: ", name(key), " = '", scalar_text(n), "' is not an integer"));
  }
  return v;
}

long long ConfigReader::count(const std::string& key, long long default_value, long long minimum, long long maximum) {
  const long long v = integer(key, default_value);
  if (v < minimum) {
    throw InvalidArgument(format_message("config: ", name(key), " = ", v, " must be at least ", minimum));
  }
  limits::check_at_most("config", name(key), v, maximum);
  return v;
}

bool ConfigReader::boolean(const std::string& key, bool default_value) {
  const YAML::Node n = value(key).yaml;
  if (!n.IsDefined() || n.IsNull()) return default_value;
  bool v = false;
  if (!n.IsScalar() || !YAML::convert<bool>::decode(n, v)) {
    throw InvalidArgument(format_message("config: ", name(key), " = '", scalar_text(n), "' is not true or false"));
  }
  return v;
}

std::string ConfigReader::text(const std::string& key, const std::string& default_value) {
  const YAML::Node n = value(key).yaml;
  if (!n.IsDefined() || n.IsNull()) return default_value;
  if (!n.IsScalar()) throw InvalidArgument(format_message("config: ", name(key), " must be a single value"));
  return n.Scalar();
}

std::string ConfigReader::choice(const std::string& key, const std::string& default_value,
                                 const std::vector<std::string>& allowed) {
  const std::string v = text(key, default_value);
  for (const auto& a : allowed) {
    if (a == v) return v;
  }
  std::string list;
  for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
  throw InvalidArgument(format_message("config: ", name(key), " = '", v, "' is not one of: ", list));
}

std::vector<double> ConfigReader::reals(const std::string& key, const std::vector<double>& default_value) {
  const YAML::Node n = value(key).yaml;
  if (!n.IsDefined() || n.IsNull()) return default_value;
  if (!n.IsSequence()) throw InvalidArgument(format_message("config: ", name(key), " must be a list of numbers"));
  std::vector<double> out;
  for (std::size_t i = 0; i < n.size(); ++i) {
    double v = 0.0;
    if (!n[i].IsScalar() || !YAML::convert<double>::decode(n[i], v)) {
      throw InvalidArgument(format_message("config: ", name(key), "[", i, "] = '", scalar_text(n[i]),
                                           "' is not a number"));
    }
    out.push_back(v);
  }
  return out;
}

std::vector<long long> ConfigReader::integers(const std::string& key, const std::vector<long long>& default_value) {
  const YAML::Node n = value(key).yaml;
  if (!n.IsDefined() || n.IsNull()) return default_value;
  if (!n.IsSequence()) throw InvalidArgument(format_message("config: ", name(key), " must be a list of integers"));
  std::vector<long long> out;
  for (std::size_t i = 0; i < n.size(); ++i) {
    long long v = 0;
    if (!n[i].IsScalar() || !YAML::convert<long long>::decode(n[i], v)) {
      throw InvalidArgument(format_message("config: ", name(key), "[", i, "] = '", scalar_text(n[i]),
                                           "' is not an integer"));
    }
    out.push_back(v);
  }
  return out;
}

ConfigReader ConfigReader::section(const std::string& key) { return ConfigReader(value(key), name(key)); }

namespace {

// The scalar leaves under `node` as (dotted key, text), in file order; `where` names it in errors.
void walk_leaves(const YAML::Node& node, const std::string& prefix, const std::string& where,
                 std::vector<std::pair<std::string, std::string>>& out) {
  for (const auto& kv : node) {
    const std::string k = prefix.empty() ? kv.first.Scalar() : prefix + "." + kv.first.Scalar();
    if (kv.second.IsMap()) {
      walk_leaves(kv.second, k, where, out);
    } else if (kv.second.IsScalar()) {
      out.emplace_back(k, kv.second.Scalar());
    } else if (!kv.second.IsNull()) {
      throw InvalidArgument(format_message("config: ", where, k, " must be a value or a mapping"));
    }
  }
}

}  // namespace

std::vector<std::pair<std::string, std::string>> ConfigReader::flattened(const std::string& key) {
  std::vector<std::pair<std::string, std::string>> out;
  const YAML::Node root = value(key).yaml;
  if (!root.IsDefined() || root.IsNull()) return out;
  if (!root.IsMap()) throw InvalidArgument(format_message("config: ", name(key), " must be a mapping"));
  walk_leaves(root, "", name(key) + ".", out);
  return out;
}

std::vector<std::pair<std::string, std::string>> ConfigReader::entries() {
  std::vector<std::pair<std::string, std::string>> out;
  if (!node_->yaml.IsMap()) return out;
  for (const auto& kv : node_->yaml) read_.insert(kv.first.Scalar());
  walk_leaves(node_->yaml, "", path_.empty() ? "" : path_ + ".", out);
  return out;
}

void ConfigReader::refuse_renamed(const std::string& old_key, const std::string& new_key,
                                  const std::string& note) const {
  if (!node_->yaml.IsMap() || !node_->yaml[old_key].IsDefined()) return;
  throw InvalidArgument(format_message("config: key '", name(old_key), "' was renamed: use ", new_key,
                                       note.empty() ? "" : " (" + note + ")"));
}

void ConfigReader::finish() const {
  if (!node_->yaml.IsMap()) return;
  for (const auto& kv : node_->yaml) {
    const std::string key = kv.first.Scalar();
    if (read_.count(key) == 0) {
      std::string expected;
      for (const auto& k : read_) expected += (expected.empty() ? "" : ", ") + k;
      throw InvalidArgument(format_message("config: unknown key '", name(key), "' (expected one of: ", expected, ")"));
    }
  }
}

}  // namespace varflow::io
