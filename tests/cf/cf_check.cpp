// varflow_cf_check FILE...: checks the CF-1.10 conventions and the provenance every netCDF file of
// varflow carries (design/formats.md, "CF and provenance"). Prints one line per violation and exits
// with the number of files that have any (0: all pass). No CF checker is packaged in Debian, so the
// rules are written out here:
//  - global attributes Conventions (CF-1.x), title, source, history, date_created (ISO 8601 UTC),
//    varflow_file_type, varflow_version, varflow_build_arch, config (text), config_hash (FNV-1a 64 of the run's config
//    text: `run_config` when the file has one, else `config`), seed;
//  - every dimension has a coordinate variable (1-D, same name) with units, except the length
//    dimension of strings;
//  - every non-char variable has long_name and units, and the units are UDUNITS strings of the
//    project ("1", "s");
//  - every double variable holding NaN has _FillValue and missing_value (both NaN);
//  - flag variables (`converged`, or any with flag_values) have flag_values and as many
//    flag_meanings, and hold only listed values.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <netcdf>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "varflow/core/hash.h"

namespace nc = netCDF;

namespace {

std::string text_attribute(const nc::NcFile& f, const std::string& name) {
  const auto atts = f.getAtts();
  const auto it = atts.find(name);
  if (it == atts.end()) return "";
  std::string v;
  it->second.getValues(v);
  while (!v.empty() && v.back() == '\0') v.pop_back();
  return v;
}

bool has_global(const nc::NcFile& f, const std::string& name) { return f.getAtts().count(name) != 0; }

std::string var_text(const nc::NcVar& v, const std::string& name) {
  const auto atts = v.getAtts();
  const auto it = atts.find(name);
  if (it == atts.end()) return "";
  std::string s;
  it->second.getValues(s);
  return s;
}

// The violations of one file.
std::vector<std::string> check(const std::string& path) {
  std::vector<std::string> bad;
  nc::NcFile f(path, nc::NcFile::read);
  const std::string conventions = text_attribute(f, "Conventions");
  if (conventions.rfind("CF-1.", 0) != 0) bad.push_back("global Conventions = '" + conventions + "', expected CF-1.x");
  for (const char* name : {"title", "source", "history", "varflow_file_type", "varflow_version",
                           "varflow_build_arch", "config", "config_hash"}) {
    if (text_attribute(f, name).empty() && !(std::string(name) == "config" && has_global(f, "config"))) {
      bad.push_back(std::string("global attribute ") + name + " is missing or empty");
    }
  }
  if (!has_global(f, "seed")) bad.push_back("global attribute seed is missing");
  if (!std::regex_match(text_attribute(f, "date_created"), std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)"))) {
    bad.push_back("date_created = '" + text_attribute(f, "date_created") + "' is not ISO 8601 UTC");
  }
  const std::string run_config = has_global(f, "run_config") ? text_attribute(f, "run_config")
                                                             : text_attribute(f, "config");
  const std::string hash = varflow::hex64(varflow::fnv1a(run_config));
  if (text_attribute(f, "config_hash") != hash) {
    bad.push_back("config_hash = '" + text_attribute(f, "config_hash") + "', the config text hashes to " + hash);
  }

  std::set<std::string> string_lengths;
  for (const auto& [name, v] : f.getVars()) {
    if (v.getType() == nc::ncChar && v.getDimCount() > 0) string_lengths.insert(v.getDim(v.getDimCount() - 1).getName());
  }
  for (const auto& [name, d] : f.getDims()) {
    if (string_lengths.count(name) != 0) continue;
    const nc::NcVar c = f.getVar(name);
    if (c.isNull() || c.getDimCount() != 1 || c.getDim(0).getName() != name) {
      bad.push_back("dimension " + name + " has no coordinate variable " + name + "(" + name + ")");
    }
  }
  const std::set<std::string> units_known = {"1", "s"};
  for (const auto& [name, v] : f.getVars()) {
    if (v.getType() == nc::ncChar) continue;
    if (var_text(v, "long_name").empty()) bad.push_back("variable " + name + " has no long_name");
    const std::string units = var_text(v, "units");
    if (units_known.count(units) == 0) bad.push_back("variable " + name + " has units '" + units + "'");
    std::size_t size = 1;
    for (int d = 0; d < v.getDimCount(); ++d) size *= v.getDim(d).getSize();
    const auto atts = v.getAtts();
    if (v.getType() == nc::ncDouble && size > 0) {
      std::vector<double> values(size);
      v.getVar(values.data());
      bool nan = false;
      for (double x : values) nan = nan || std::isnan(x);
      if (nan && (atts.count("_FillValue") == 0 || atts.count("missing_value") == 0)) {
        bad.push_back("variable " + name + " holds NaN without _FillValue and missing_value");
      }
    }
    if (name == "converged" || atts.count("flag_values") != 0) {
      if (atts.count("flag_values") == 0 || atts.count("flag_meanings") == 0) {
        bad.push_back("flag variable " + name + " lacks flag_values or flag_meanings");
        continue;
      }
      const nc::NcVarAtt fv = atts.find("flag_values")->second;
      std::vector<long long> flags(fv.getAttLength());
      fv.getValues(flags.data());
      std::istringstream meanings(var_text(v, "flag_meanings"));
      std::size_t words = 0;
      for (std::string w; meanings >> w;) ++words;
      if (words != flags.size()) bad.push_back("variable " + name + ": flag_meanings and flag_values differ in count");
      std::vector<long long> values(size);
      if (size > 0) v.getVar(values.data());
      for (long long x : values) {
        if (std::find(flags.begin(), flags.end(), x) == flags.end()) {
          bad.push_back("variable " + name + " holds " + std::to_string(x) + ", not in flag_values");
          break;
        }
      }
    }
  }
  return bad;
}

}  // namespace

int main(int argc, char** argv) {
  int failed = 0;
  for (int i = 1; i < argc; ++i) {
    std::vector<std::string> bad;
    try {
      bad = check(argv[i]);
    } catch (const std::exception& e) {
      bad.push_back(std::string("cannot be read: ") + e.what());
    }
    for (const auto& b : bad) std::printf("%s: %s\n", argv[i], b.c_str());
    if (bad.empty()) std::printf("%s: CF and provenance OK\n", argv[i]);
    failed += bad.empty() ? 0 : 1;
  }
  return failed;
}
