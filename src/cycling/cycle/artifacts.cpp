#include "artifacts.h"

#include <fstream>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <sstream>

#include "varflow/report/html.h"
#include "varflow/core/error.h"
#include "varflow/core/hash.h"
#include "varflow/io/atomic_file.h"
#include "varflow/io/netcdf_file.h"
#include "varflow/nn/parameters.h"
#include "varflow/version.h"

namespace varflow::cycle {

namespace {

constexpr const char* kManifestFormat = "varflow_six_step_manifest";
constexpr long long kManifestVersion = 2;
constexpr long long kOracleFormatVersion = 2;  // 1: covariances flattened in covariance_entry

std::uint64_t hash_matrix(const Matrix& m, std::uint64_t h) {
  h = fnv1a(format_message(m.rows(), "x", m.cols()), h);
  return fnv1a(m.data(), static_cast<std::size_t>(m.size()) * sizeof(double), h);
}

void check_type(const NetcdfReader& in, const std::string& type) {
  const auto t = in.string_attribute("varflow_file_type");
  if (!t || *t != type) {
    throw InvalidArgument(format_message("'", in.path().string(), "': varflow_file_type = '", t.value_or(""),
                                         "', expected '", type, "'"));
  }
}

void check_checksum(const NetcdfReader& in, const std::string& computed) {
  const auto stored = in.string_attribute("checksum");
  if (!stored || *stored != computed) {
    throw InvalidArgument(format_message("'", in.path().string(), "': checksum mismatch (stored ",
                                         stored.value_or("none"), ", content ", computed, ")"));
  }
}

}  // namespace

// ---- physics.nc ----------------------------------------------------------------------------------

std::string PhysicsData::checksum() const {
  std::uint64_t h = fnv1a_offset_basis();
  for (const Matrix* m : {&train.states, &train.next, &held_out.states, &held_out.next}) h = hash_matrix(*m, h);
  return hex64(h);
}

void save_physics(const PhysicsData& data, const std::filesystem::path& file) {
  NetcdfWriter out(file);
  out.attribute("varflow_file_type", "varflow_six_step_physics");
  out.attribute("title", "varflow six-step physics: the emulator's training pairs and held-out states");
  out.attribute("format_version", 1LL);
  out.attribute("checksum", data.checksum());
  out.add_dimension("state", data.train.states.rows());
  out.add_dimension("pair", data.train.states.cols());
  out.add_dimension("held_out", data.held_out.states.cols());
  out.write("train_states", "pair", "state", data.train.states, "training states x_k of the physics");
  out.write("train_next", "pair", "state", data.train.next, "x_{k+1} = M(x_k) of the training states");
  out.write("held_out_states", "held_out", "state", data.held_out.states, "held-out states (another trajectory)");
  out.write("held_out_next", "held_out", "state", data.held_out.next, "M(x) of the held-out states");
  out.commit();
}

PhysicsData load_physics(const std::filesystem::path& file) {
  const NetcdfReader in(file);
  check_type(in, "varflow_six_step_physics");
  PhysicsData d;
  d.train.states = in.read_matrix("train_states");
  d.train.next = in.read_matrix("train_next", d.train.states.cols(), d.train.states.rows());
  d.held_out.states = in.read_matrix("held_out_states", -1, d.train.states.rows());
  d.held_out.next = in.read_matrix("held_out_next", d.held_out.states.cols(), d.train.states.rows());
  check_checksum(in, d.checksum());
  return d;
}

// ---- oracle.nc -----------------------------------------------------------------------------------

std::string OracleData::checksum() const {
  const auto& o = windows.options;
  std::uint64_t h = fnv1a(format_message(o.steps, ",", o.obs_every, ",", o.obs_stride, ",",
                                             std::setprecision(17), o.background_sd, ",", o.obs_sd, ",",
                                             o.step_multiple, ",", o.resolved, ",", o.fast_background_sd));
  for (const Matrix* m : {&windows.truth, &windows.background, &windows.observations, &analyses.mean}) {
    h = hash_matrix(*m, h);
  }
  for (std::size_t w = 0; w < analyses.converged.size(); ++w) {
    h = fnv1a(std::string(analyses.converged[w] ? "1" : "0"), h);
    if (analyses.converged[w]) h = hash_matrix(analyses.covariance[w], h);
  }
  return hex64(h);
}

namespace {
// oracle.nc format 2 stores covariance(window, state, state_column); format 1 stored each window's
// matrix column-major in covariance(window, covariance_entry). Returns n^2 x count, column j window
// j's matrix column-major (both read the same).
Matrix read_covariances(const NetcdfReader& in, Index count, Index n) {
  const long long version = in.require_int("format_version");
  if (version == 1) return in.read_matrix("covariance", count, n * n);
  if (version != kOracleFormatVersion) {
    throw InvalidArgument(format_message("'", in.path().string(), "': format_version = ", version,
                                         ", this build reads 1 and ", kOracleFormatVersion));
  }
  std::vector<Index> shape;
  const std::vector<double> values = in.read_array("covariance", &shape);
  if (shape != std::vector<Index>{count, n, n}) {
    throw InvalidArgument(format_message("'", in.path().string(), "': variable 'covariance' is not window x state x ",
                                         "state_column = ", count, " x ", n, " x ", n));
  }
  Matrix out(n * n, count);
  for (Index j = 0; j < count; ++j)
    for (Index r = 0; r < n; ++r)
      for (Index c = 0; c < n; ++c) out(c * n + r, j) = values[static_cast<std::size_t>((j * n + r) * n + c)];
  return out;
}
}  // namespace

void save_oracle(const OracleData& data, const std::filesystem::path& file) {
  const auto& w = data.windows;
  const Index n = w.state_size(), count = w.count();
  // covariance(window, state, state_column) in C order: window j's n x n matrix row by row.
  std::vector<double> covariance(static_cast<std::size_t>(n * n * count), 0.0);
  std::vector<long long> converged(static_cast<std::size_t>(count));
  for (Index j = 0; j < count; ++j) {
    const auto k = static_cast<std::size_t>(j);
    converged[k] = data.analyses.converged[k] ? 1 : 0;
    if (!converged[k]) continue;
    const Matrix& p = data.analyses.covariance[k];
    for (Index r = 0; r < n; ++r)
      for (Index c = 0; c < n; ++c) covariance[static_cast<std::size_t>((j * n + r) * n + c)] = p(r, c);
  }
  NetcdfWriter out(file);
  out.attribute("varflow_file_type", "varflow_six_step_oracle");
  out.attribute("title", "varflow six-step oracle: 4D-Var analyses of the held-out windows with the physics");
  out.attribute("format_version", kOracleFormatVersion);
  out.attribute("checksum", data.checksum());
  out.attribute("steps", static_cast<long long>(w.options.steps));
  out.attribute("obs_every", static_cast<long long>(w.options.obs_every));
  out.attribute("obs_stride", static_cast<long long>(w.options.obs_stride));
  out.attribute("background_sd", w.options.background_sd);
  out.attribute("obs_sd", w.options.obs_sd);
  out.attribute("step_multiple", static_cast<long long>(w.options.step_multiple));
  out.attribute("resolved", static_cast<long long>(w.options.resolved));
  out.attribute("fast_background_sd", w.options.fast_background_sd);
  out.attribute("solve_seconds", data.analyses.seconds);
  out.attribute("mean_rmse", data.analyses.mean_rmse);
  out.add_dimension("state", n);
  out.add_dimension("window", count);
  out.add_dimension("observation", w.observations.rows());
  out.add_dimension("state_column", n);
  out.write("truth", "window", "state", w.truth, "true initial state of each window");
  out.write("background", "window", "state", w.background, "background x_b of each window");
  out.write("observations", "window", "observation", w.observations,
            "observed values, slot-major (slot s at step s * obs_every)");
  out.write("analysis", "window", "state", data.analyses.mean, "4D-Var MAP of x_0 with the physics");
  out.write_array("covariance", {"window", "state", "state_column"}, covariance,
                  "Laplace posterior covariance of x_0 (n x n per window; zero where not converged)");
  out.write_int("converged", "window", converged, "1 when the physics solve converged", "1");
  out.variable_attribute("converged", "flag_values", std::vector<long long>{0, 1});
  out.variable_attribute("converged", "flag_meanings", "not_converged converged");
  out.commit();
}

OracleData load_oracle(const std::filesystem::path& file) {
  const NetcdfReader in(file);
  check_type(in, "varflow_six_step_oracle");
  OracleData d;
  auto& o = d.windows.options;
  o.steps = static_cast<Index>(in.require_double("steps"));
  o.obs_every = static_cast<Index>(in.require_double("obs_every"));
  o.obs_stride = static_cast<Index>(in.require_double("obs_stride"));
  o.background_sd = in.require_double("background_sd");
  o.obs_sd = in.require_double("obs_sd");
  o.step_multiple = static_cast<Index>(in.require_double("step_multiple"));
  o.resolved = static_cast<Index>(in.require_double("resolved"));
  o.fast_background_sd = in.require_double("fast_background_sd");
  d.windows.truth = in.read_matrix("truth");
  const Index n = d.windows.truth.rows(), count = d.windows.truth.cols();
  d.windows.background = in.read_matrix("background", count, n);
  d.windows.observations = in.read_matrix("observations", count);
  d.windows.validate();
  d.analyses.mean = in.read_matrix("analysis", count, n);
  const Matrix covariance = read_covariances(in, count, n);
  const auto converged = in.read_int("converged");
  if (static_cast<Index>(converged.size()) != count) {
    throw InvalidArgument(format_message("'", file.string(), "': converged has ", converged.size(), " values for ",
                                         count, " windows"));
  }
  for (Index j = 0; j < count; ++j) {
    const bool ok = converged[static_cast<std::size_t>(j)] != 0;
    d.analyses.converged.push_back(ok);
    d.analyses.covariance.push_back(ok ? Matrix(covariance.col(j).reshaped(n, n)) : Matrix());
  }
  d.analyses.seconds = in.require_double("solve_seconds");
  d.analyses.mean_rmse = in.require_double("mean_rmse");
  check_checksum(in, d.checksum());
  return d;
}

// ---- manifest.json -------------------------------------------------------------------------------

PreviousRun read_manifest(const std::filesystem::path& file) {
  PreviousRun prev;
  std::ifstream in(file);
  if (!in) {
    prev.why = "no previous manifest";
    return prev;
  }
  try {
    const nlohmann::json j = nlohmann::json::parse(in);
    if (j.value("format", std::string()) != kManifestFormat || j.value("format_version", 0LL) != kManifestVersion) {
      prev.why = format_message("'", file.string(), "' is not a version-", kManifestVersion, " six-step manifest");
      return prev;
    }
    for (const auto& s : j.at("steps")) {
      StepRecord r;
      r.number = s.at("step").get<int>();
      r.name = s.at("name").get<std::string>();
      r.status = step_status_from_string(s.at("status").get<std::string>());
      r.gate = s.at("gate").get<std::string>();
      r.detail = s.at("detail").get<std::string>();
      r.artifact = s.at("artifact").get<std::string>();
      r.checksum = s.at("checksum").get<std::string>();
      r.inputs = s.at("inputs").get<std::string>();
      r.seconds = s.at("seconds").get<double>();
      prev.steps[r.number] = r;
    }
  } catch (const std::exception& e) {
    prev.steps.clear();
    prev.why = format_message("'", file.string(), "' cannot be read (", e.what(), ")");
  }
  return prev;
}

void write_manifest(const SixStepReport& report, const std::string& config_yaml, const std::filesystem::path& file,
                    bool complete) {
  nlohmann::json j;
  j["format"] = kManifestFormat;
  j["format_version"] = kManifestVersion;
  j["varflow_version"] = VARFLOW_VERSION_STRING;
  j["config_hash"] = report.config_hash;
  j["seed"] = report.seed;
  j["config"] = config_yaml;
  j["steps"] = nlohmann::json::array();
  for (const auto& s : report.steps) {
    j["steps"].push_back({{"step", s.number},
                          {"name", s.name},
                          {"status", to_string(s.status)},
                          {"gate", s.gate},
                          {"detail", s.detail},
                          {"artifact", s.artifact},
                          {"checksum", s.checksum},
                          {"inputs", s.inputs},
                          {"seconds", s.seconds},
                          {"reused", s.reused}});
  }
  j["steps_run"] = report.steps_run();
  j["all_gates_passed"] = complete && report.all_gates_passed();
  j["complete"] = complete;
  write_text_atomically(file, j.dump(2) + "\n");
}

// ---- report.html ---------------------------------------------------------------------------------

void write_report_html(const SixStepReport& report, const std::string& config_yaml,
                       const std::filesystem::path& file) {
  std::ostringstream h;
  h << "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>varflow six-step report</title>\n"
       "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #999;"
       "padding:4px 8px;text-align:left}.passed{background:#dfd}.FAILED{background:#fdd}pre{background:#f4f4f4;"
       "padding:8px;white-space:pre-wrap}</style></head><body>\n<h1>varflow six-step report</h1>\n<p>seed "
    << report.seed << ", config hash " << report.config_hash << ", all gates passed: "
    << (report.all_gates_passed() ? "yes" : "no") << "</p>\n<table><tr><th>#</th><th>step</th><th>status</th>"
       "<th>this run</th><th>seconds</th><th>gate (statistic vs threshold)</th></tr>\n";
  for (const auto& s : report.steps) {
    h << "<tr class=\"" << to_string(s.status) << "\"><td>" << s.number << "</td><td>"
      << report::escape_html(s.name)
      << "</td><td>" << to_string(s.status) << "</td><td>" << (s.reused ? "reused" : "ran") << "</td><td>"
      << std::fixed << std::setprecision(2) << s.seconds << "</td><td>" << report::escape_html(s.gate)
      << "</td></tr>\n";
  }
  h << "</table>\n<p>A reused step's inputs (config keys and upstream checksums) had not changed since the run "
       "that computed it; its artifact was verified against the recorded checksum.</p>\n";
  for (const auto& s : report.steps) {
    if (!s.detail.empty()) {
      h << "<h2>Step " << s.number << ": " << report::escape_html(s.name) << "</h2>\n<pre>"
        << report::escape_html(s.detail)
        << "</pre>\n";
    }
  }
  h << "<h2>Configuration</h2>\n<pre>" << report::escape_html(config_yaml) << "</pre>\n</body></html>\n";
  write_text_atomically(file, h.str());
}

}  // namespace varflow::cycle
