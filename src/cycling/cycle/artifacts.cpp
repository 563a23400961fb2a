#include "artifacts.h"

#include <cmath>
#include <fstream>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <sstream>

#include "varflow/report/html.h"
#include "varflow/report/svg_plot.h"
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
      if (s.contains("figures")) {
        for (const auto& [name, values] : s.at("figures").items()) {
          auto& series = r.figures[name];
          for (const auto& v : values) series.push_back(v.is_null() ? std::nan("") : v.get<double>());
        }
      }
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
  j["varflow_build_arch"] = VARFLOW_BUILD_ARCH;
  j["config_hash"] = report.config_hash;
  j["seed"] = report.seed;
  j["config"] = config_yaml;
  j["steps"] = nlohmann::json::array();
  for (const auto& s : report.steps) {
    nlohmann::json figures = nlohmann::json::object();
    for (const auto& [name, values] : s.figures) {
      auto& series = figures[name] = nlohmann::json::array();
      for (double v : values) series.push_back(std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr));
    }
    j["steps"].push_back({{"step", s.number},
                          {"name", s.name},
                          {"status", to_string(s.status)},
                          {"gate", s.gate},
                          {"detail", s.detail},
                          {"artifact", s.artifact},
                          {"checksum", s.checksum},
                          {"inputs", s.inputs},
                          {"seconds", s.seconds},
                          {"reused", s.reused},
                          {"figures", std::move(figures)}});
  }
  j["steps_run"] = report.steps_run();
  j["all_gates_passed"] = complete && report.all_gates_passed();
  j["complete"] = complete;
  write_text_atomically(file, j.dump(2) + "\n");
}

// ---- report.html ---------------------------------------------------------------------------------

namespace {

namespace svg = report::svg;

std::vector<double> row_of(const Matrix& m, Index row, Index count) {
  std::vector<double> v;
  for (Index j = 0; j < std::min(count, m.cols()); ++j) v.push_back(m(row, j));
  return v;
}
std::vector<double> counting(std::size_t n, double start = 0.0) {
  std::vector<double> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = start + static_cast<double>(i);
  return v;
}
const std::vector<double>* figure(const StepRecord& s, const std::string& name) {
  const auto it = s.figures.find(name);
  return it == s.figures.end() || it->second.empty() ? nullptr : &it->second;
}
std::string missing_figure(const std::string& what) {
  return "<p class=\"caption\">" + report::escape_html(what) + "</p>";
}

// Step 1: the first components of the physics trajectory the emulator trains on.
std::string physics_figures(const std::filesystem::path& dir) {
  if (!std::filesystem::exists(dir / "physics.nc")) return missing_figure("physics.nc is not in the directory.");
  const PhysicsData d = load_physics(dir / "physics.nc");
  const Index count = std::min<Index>(d.train.states.cols(), 300);
  svg::Plot p("physics trajectory (training states)", "training pair k (emulator.stride physics steps apart)",
              "state x_i (1)", 620, 250);
  const char* colours[] = {svg::kOracle, svg::kFast, "#2e7d32"};
  for (Index i = 0; i < std::min<Index>(3, d.train.states.rows()); ++i) {
    p.line(format_message("x[", i, "]"), counting(static_cast<std::size_t>(count)), row_of(d.train.states, i, count),
           colours[i]);
  }
  p.integer_x();
  return p.svg();
}

// Step 2: the oracle's analysis of the first windows against the truth, with +-1 posterior sigma.
std::string oracle_figures(const std::filesystem::path& dir) {
  if (!std::filesystem::exists(dir / "oracle.nc")) return missing_figure("oracle.nc is not in the directory.");
  const OracleData d = load_oracle(dir / "oracle.nc");
  std::string out = "<div class=\"grid\">";
  const Index n = d.windows.truth.rows();
  for (Index w = 0; w < std::min<Index>(2, d.windows.count()); ++w) {
    std::vector<double> x, xa, truth, background, analysis, lo, hi;
    for (Index i = 0; i < n; ++i) {
      x.push_back(static_cast<double>(i));
      xa.push_back(static_cast<double>(i) + 0.15);
      truth.push_back(d.windows.truth(i, w));
      background.push_back(d.windows.background(i, w));
      analysis.push_back(d.analyses.mean(i, w));
      const bool ok = d.analyses.converged[static_cast<std::size_t>(w)];
      const double sd = ok ? std::sqrt(d.analyses.covariance[static_cast<std::size_t>(w)](i, i)) : std::nan("");
      lo.push_back(analysis.back() - sd);
      hi.push_back(analysis.back() + sd);
    }
    svg::Plot p(format_message("window ", w, ": x_0 against the truth"), "state component", "x_0 (1)",
                std::max(380, static_cast<int>(std::min<Index>(n, 60) * 12 + 100)));
    p.line("truth", x, truth, "#222");
    p.points("background", x, background, "#999", 2.0);
    p.error_bars("oracle analysis +-1 sigma", xa, analysis, lo, hi, svg::kOracle);
    p.integer_x();
    out += p.svg();
  }
  return out + "</div>";
}

// Step 3: the emulator's loss per epoch, its one-step errors and its forecast error against lead.
std::string emulator_figures(const StepRecord& s) {
  std::string out = "<div class=\"grid\">";
  if (const auto* train = figure(s, "train_loss")) {
    svg::Plot p("emulator loss per epoch", "epoch", "loss (normalised units)");
    p.line("training", counting(train->size(), 1.0), *train, "#222");
    if (const auto* validation = figure(s, "validation_loss")) {
      p.line("validation", counting(validation->size(), 1.0), *validation, svg::kFast);
    }
    p.integer_x();
    out += p.svg();
  }
  if (const auto* e = figure(s, "forward_errors")) {
    svg::Plot p("one-step error per held-out state", "held-out state", "relative error e_j (1)");
    p.points("e_j", counting(e->size()), *e, svg::kFast);
    if (const auto* t = figure(s, "forward_tolerance")) p.y_line(format_message("tolerance ", svg::number_text(t->front())), t->front(), svg::kFail);
    p.integer_x();
    out += p.svg();
  }
  const auto* lead = figure(s, "lead_time");
  const auto* rmse = figure(s, "forecast_rmse");
  if (lead && rmse) {
    svg::Plot p("forecast error against lead", "lead time (model time units)", "RMSE against the physics (1)");
    p.line("emulator", *lead, *rmse, svg::kFast);
    if (const auto* truncated = figure(s, "truncated_rmse")) p.line("truncated model", *lead, *truncated, "#777");
    if (const auto* c = figure(s, "climatology_rmse")) p.y_line("no skill (climatology)", c->front(), "#999");
    out += p.svg();
  }
  if (out.size() < 30) return missing_figure("No emulator curves were recorded for this step (gate not reached, or a "
                                             "manifest written before curves were kept).");
  return out + "</div>";
}

// Step 4: d of every component of every window against the +-tolerance band.
std::string agreement_figures(const StepRecord& s) {
  const auto* d = figure(s, "standardized_difference");
  const auto* w = figure(s, "window");
  if (!d || !w) return missing_figure("No window was compared in this step.");
  const double t = figure(s, "tolerance_sigma") ? figure(s, "tolerance_sigma")->front() : 1.0;
  svg::Plot p("emulator analyses against the oracle", "held-out window",
              "d = (x_a emulator - x_a oracle) / sigma oracle (1)", 520, 250);
  p.y_band(format_message("|d| <= ", svg::number_text(t)), -t, t, "#2e7d32", 0.15);
  p.points("component", *w, *d, svg::kFast, 2.0);
  p.integer_x();
  return p.svg();
}

// Step 5: each gate's statistic against its limit, and the link to the full validation report.
std::string predictor_summary(const StepRecord& s, const std::filesystem::path& dir) {
  std::ostringstream h;
  struct Row {
    const char* key;
    const char* gate;
    const char* rule;
  };
  const Row rows[] = {{"agreement_max_abs_d", "posterior agreement", "max |d| at most"},
                      {"adjoint_max_probe_error", "adjoint calibration", "max probe error below"},
                      {"sbc_min_p_value", "simulation-based calibration", "min p-value above"}};
  bool any = false;
  h << "<table><tr><th>gate</th><th>statistic</th><th>value</th><th>limit</th><th>verdict</th></tr>";
  for (const Row& row : rows) {
    const auto* v = figure(s, row.key);
    if (!v || v->size() < 3) continue;
    any = true;
    const bool passed = (*v)[2] != 0.0;
    h << "<tr class=\"" << (passed ? "passed" : "FAILED") << "\"><td>" << row.gate << "</td><td>" << row.rule
      << "</td><td>" << svg::number_text((*v)[0]) << "</td><td>" << svg::number_text((*v)[1]) << "</td><td>"
      << (passed ? "PASS" : "FAIL") << "</td></tr>";
  }
  h << "</table>";
  std::string out = any ? h.str() : missing_figure("No gate of step 5 ran in this run.");
  if (std::filesystem::exists(dir / "predictor_validation" / "report.html")) {
    out += "<p>Full validation report with its plots: <a href=\"predictor_validation/report.html\">"
           "predictor_validation/report.html</a></p>";
  }
  return out;
}

// The pictures of one step, or a sentence saying why there are none; a damaged artifact says so.
std::string step_figures(const StepRecord& s, const std::filesystem::path& dir) {
  try {
    switch (s.number) {
      case 1: return physics_figures(dir);
      case 2: return oracle_figures(dir);
      case 3: return emulator_figures(s);
      case 4: return agreement_figures(s);
      case 5: return predictor_summary(s, dir);
      default: return "";
    }
  } catch (const std::exception& e) {
    return missing_figure(std::string("The pictures of this step cannot be drawn: ") + e.what());
  }
}

}  // namespace

void write_report_html(const SixStepReport& report, const std::string& config_yaml,
                       const std::filesystem::path& file) {
  const std::filesystem::path dir = file.parent_path().empty() ? std::filesystem::path(".") : file.parent_path();
  std::ostringstream h;
  h << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>varflow six-step report</title>\n"
       "<style>body{font-family:sans-serif;margin:2em;max-width:1150px;color:#222}table{border-collapse:collapse}"
       "td,th{border:1px solid #999;padding:4px 8px;text-align:left}.passed{background:#dfd}.FAILED{background:#fdd}"
       "pre{background:#f4f4f4;padding:8px;white-space:pre-wrap;font-size:11px}.grid{display:flex;flex-wrap:wrap;"
       "gap:6px}p.caption{font-size:12px;color:#555}h2{border-bottom:1px solid #ccc}</style></head><body>\n"
       "<h1>varflow six-step report</h1>\n<p>seed "
    << report.seed << ", config hash " << report.config_hash << ", all gates passed: "
    << (report.all_gates_passed() ? "yes" : "no") << "</p>\n<h2>Manifest</h2>\n"
    << "<table><tr><th>#</th><th>step</th><th>status</th><th>this run</th><th>artifact</th>"
       "<th>checksum</th><th>seconds</th><th>gate (statistic vs threshold)</th></tr>\n";
  for (const auto& s : report.steps) {
    h << "<tr class=\"" << to_string(s.status) << "\"><td>" << s.number << "</td><td>" << report::escape_html(s.name)
      << "</td><td>" << to_string(s.status) << "</td><td>"
      << (s.reused ? "&#8634; reused" : "&#9881; recomputed") << "</td><td>" << report::escape_html(s.artifact)
      << "</td><td><code>" << report::escape_html(s.checksum) << "</code></td><td>" << std::fixed
      << std::setprecision(2) << s.seconds << std::defaultfloat << "</td><td>" << report::escape_html(s.gate)
      << "</td></tr>\n";
  }
  h << "</table>\n<p class=\"caption\">&#8634; reused: the step's inputs (config keys and upstream checksums) had "
       "not changed since the run that computed it, and its artifact matched the recorded checksum. &#9881; "
       "recomputed: this run computed it.</p>\n";
  for (const auto& s : report.steps) {
    h << "<h2>Step " << s.number << ": " << report::escape_html(s.name) << "</h2>\n"
      << step_figures(s, dir) << "\n";
    if (!s.detail.empty()) h << "<pre>" << report::escape_html(s.detail) << "</pre>\n";
  }
  h << "<h2>Configuration</h2>\n<pre>" << report::escape_html(config_yaml) << "</pre>\n</body></html>\n";
  write_text_atomically(file, h.str());
}

}  // namespace varflow::cycle
