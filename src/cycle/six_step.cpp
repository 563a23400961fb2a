#include "varflow/cycle/six_step.h"

#include <algorithm>
#include <omp.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <iomanip>
#include <ostream>
#include <sstream>

#include "../io/config_reader.h"
#include "varflow/core/error.h"
#include "varflow/core/random.h"
#include "varflow/emulator/analysis_comparison.h"
#include "varflow/emulator/emulator_gate.h"
#include "varflow/emulator/stencil_emulator.h"
#include "varflow/io/experiment_config.h"
#include "varflow/model/lorenz96.h"
#include "varflow/nn/parameters.h"

namespace varflow::cycle {

void SixStepConfig::validate() const {
  check_at_least("six-step config", "n", n, 4);
  check_at_least("six-step config", "train_pairs", train_pairs, 10);
  check_at_least("six-step config", "stride", stride, 1);
  check_at_least("six-step config", "held_out", held_out, 1);
  check_at_least("six-step config", "epochs", epochs, 1);
  check_at_least("six-step config", "hidden", hidden, 1);
  check_at_least("six-step config", "radius", radius, 0);
  check_at_least("six-step config", "layers", layers, 0);
  check_at_least("six-step config", "windows", windows, 1);
  check_at_least("six-step config", "window_steps", window_steps, 2);
  check_at_least("six-step config", "threads", threads, 1);
  for (auto [name, v] : {std::pair{"dt", dt}, std::pair{"learning_rate", learning_rate}}) {
    if (!(v > 0.0) || !std::isfinite(v)) {
      throw InvalidArgument(format_message("six-step config: ", name, " = ", v, " must be positive"));
    }
  }
  if (!std::isfinite(forcing)) throw InvalidArgument(format_message("six-step config: forcing = ", forcing, " must be finite"));
  if (on_gate_failure != "stop" && on_gate_failure != "fallback") {
    throw InvalidArgument(format_message("six-step config: on_gate_failure = '", on_gate_failure,
                                         "' is not one of: stop, fallback"));
  }
}

SixStepConfig SixStepConfig::from_yaml(const std::string& text, const std::string& source_name) {
  io::ConfigReader r = io::ConfigReader::parse(text, source_name);
  SixStepConfig c;
  c.n = r.integer("n", c.n);
  c.forcing = r.real("forcing", c.forcing);
  c.dt = r.real("dt", c.dt);
  c.train_pairs = r.integer("train_pairs", c.train_pairs);
  c.stride = r.integer("stride", c.stride);
  c.held_out = r.integer("held_out", c.held_out);
  c.epochs = r.integer("epochs", c.epochs);
  c.hidden = r.integer("hidden", c.hidden);
  c.radius = r.integer("radius", c.radius);
  c.layers = r.integer("layers", c.layers);
  c.learning_rate = r.real("learning_rate", c.learning_rate);
  c.windows = r.integer("windows", c.windows);
  c.window_steps = r.integer("window_steps", c.window_steps);
  c.threads = r.integer("threads", c.threads);
  c.on_gate_failure = r.choice("on_gate_failure", c.on_gate_failure, {"stop", "fallback"});
  r.finish();
  c.validate();
  return c;
}

std::string SixStepConfig::to_yaml() const {
  std::ostringstream os;
  os << std::setprecision(17);
  os << "n: " << n << "\nforcing: " << forcing << "\ndt: " << dt << "\ntrain_pairs: " << train_pairs
     << "\nstride: " << stride << "\nheld_out: " << held_out << "\nepochs: " << epochs << "\nhidden: " << hidden
     << "\nradius: " << radius << "\nlayers: " << layers << "\nlearning_rate: " << learning_rate
     << "\nwindows: " << windows << "\nwindow_steps: " << window_steps << "\nthreads: " << threads << "\non_gate_failure: " << on_gate_failure
     << "\n";
  return os.str();
}

std::string to_string(StepStatus s) {
  switch (s) {
    case StepStatus::kPassed: return "passed";
    case StepStatus::kFailed: return "FAILED";
    case StepStatus::kRan: return "ran";
    case StepStatus::kSkipped: return "skipped";
    case StepStatus::kNotImplemented: return "not implemented";
  }
  return "?";
}

bool SixStepReport::all_gates_passed() const {
  for (const auto& s : steps) {
    if (s.status == StepStatus::kFailed || s.status == StepStatus::kSkipped) return false;
  }
  return true;
}

std::string SixStepReport::table() const {
  std::ostringstream os;
  os << std::left << std::setw(3) << "#" << std::setw(26) << "step" << std::setw(17) << "status" << std::setw(10)
     << "seconds" << "gate\n";
  for (const auto& s : steps) {
    std::ostringstream t;
    t << std::fixed << std::setprecision(2) << s.seconds;
    os << std::left << std::setw(3) << s.number << std::setw(26) << s.name << std::setw(17) << to_string(s.status)
       << std::setw(10) << t.str() << s.gate << "\n";
  }
  return os.str();
}

namespace {

std::string json_escape(const std::string& s) {
  std::string o;
  for (char ch : s) {
    switch (ch) {
      case '"': o += "\\\""; break;
      case '\\': o += "\\\\"; break;
      case '\n': o += "\\n"; break;
      default:
        if (static_cast<unsigned char>(ch) < 0x20) {
          o += ' ';
        } else {
          o += ch;
        }
    }
  }
  return o;
}

std::string html_escape(const std::string& s) {
  std::string o;
  for (char ch : s) {
    switch (ch) {
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '&': o += "&amp;"; break;
      case '"': o += "&quot;"; break;
      default: o += ch;
    }
  }
  return o;
}

void write_text(const std::filesystem::path& file, const std::string& text) {
  const auto tmp = file.string() + ".tmp";
  {
    std::ofstream out(tmp);
    if (!out) throw InvalidArgument(format_message("six-step: cannot write '", tmp, "'"));
    out << text;
  }
  std::filesystem::rename(tmp, file);
}

double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

SixStepReport run_six_step(const SixStepConfig& config, std::uint64_t seed, const std::filesystem::path& dir,
                           std::ostream& log) {
  config.validate();
  // The emulator's network is small: OpenMP regions per batch cost more than they save (training
  // measured ~8x slower on 2 threads than on 1), so the cycle runs on config.threads threads and
  // restores the previous setting on return.
  const int previous_threads = omp_get_max_threads();
  struct RestoreThreads {
    int n;
    ~RestoreThreads() { omp_set_num_threads(n); }
  } restore{previous_threads};
  omp_set_num_threads(static_cast<int>(config.threads));
  std::filesystem::create_directories(dir);
  SixStepReport rep;
  rep.seed = seed;
  const std::string yaml = config.to_yaml();
  rep.config_hash = varflow::config_hash(yaml);
  Rng rng(seed);
  using clock = std::chrono::steady_clock;
  const auto physics = std::make_shared<Lorenz96>(config.n, config.forcing, config.dt);
  const Vector x0 = Vector::Constant(config.n, config.forcing);

  // Step 1: physics forward.
  auto t0 = clock::now();
  log << "step 1: physics trajectories (" << config.train_pairs << " training pairs, " << config.held_out
      << " held-out states)\n";
  const auto pairs = emulator::simulate_pairs(*physics, x0, config.train_pairs, 1000, config.stride, rng);
  const auto held = emulator::simulate_pairs(*physics, x0, config.held_out, 1000, config.stride + 2, rng);
  StepRecord s1{1, "physics forward", StepStatus::kRan, "-", "", "",
                nn::hex64(nn::fnv1a(Vector(pairs.states.reshaped()), nn::fnv1a(Vector(held.states.reshaped())))),
                since(t0)};
  rep.steps.push_back(s1);

  // Step 3: emulator.
  t0 = clock::now();
  emulator::StencilEmulatorConfig ec;
  ec.grid = config.n;
  ec.radius = config.radius;
  ec.hidden = config.hidden;
  ec.layers = config.layers;
  ec.dt = config.dt;
  auto emu = std::make_shared<emulator::StencilEmulator>(ec);
  emu->initialize(rng);
  nn::TrainingOptions to;
  to.epochs = config.epochs;
  to.batch_size = 32;
  to.learning_rate = config.learning_rate;
  to.weight_decay = 0.0;
  to.patience = 0;
  log << "step 3: training the emulator (" << emu->parameters().size() << " weights, " << config.epochs
      << " epochs)\n";
  const auto summary = emulator::train_emulator(*emu, pairs, to, rng);
  StepRecord s3{3, "emulator", StepStatus::kFailed, "", "", "emulator.nc", "", 0.0};
  bool emulator_promoted = false;
  if (!summary.ok()) {
    s3.gate = "training failed: " + summary.message;
  } else {
    const auto gate = emulator::emulator_gate(*emu, *physics, held.states, rng);
    emulator_promoted = gate.passed();
    s3.status = emulator_promoted ? StepStatus::kPassed : StepStatus::kFailed;
    std::ostringstream g;
    g << std::setprecision(3) << "forward error " << gate.forward_error << " (must be < " << gate.forward_tolerance
      << "); Jacobian norm diff " << gate.max_jacobian_difference << " (< " << gate.operator_norm_tolerance << ")"
      << "; TL/AD " << (gate.adjoint_passed ? "pass" : "FAIL");
    s3.gate = g.str();
    s3.detail = summary.brief_report() + "\n" + gate.report();
  }
  emu->save(dir / "emulator.nc");
  s3.checksum = emu->checksum();
  s3.seconds = since(t0);
  log << "  " << s3.gate << "\n";

  // Steps 2 and 4: the oracle and the emulator-based analyses on the same windows.
  t0 = clock::now();
  StepRecord s2{2, "4D-Var oracle", StepStatus::kRan, "", "", "", "", 0.0};
  StepRecord s4{4, "emulator analyses", StepStatus::kSkipped, "", "", "", "", 0.0};
  std::shared_ptr<const Model> model4 = emu;
  if (!emulator_promoted) {
    if (config.on_gate_failure == "fallback") {
      model4 = physics;
      s4.gate = "fallback: step 3 not promoted, the physics model is used; ";
    } else {
      model4 = nullptr;
      s4.gate = "stopped: step 3 not promoted";
    }
  }
  if (model4) {
    emulator::AnalysisComparisonOptions co;
    co.windows = config.windows;
    co.steps = config.window_steps;
    co.obs_every = 2;
    log << "steps 2 and 4: " << config.windows << " windows, physics and " << model4->name() << "\n";
    const auto cmp = emulator::compare_analyses(physics, model4, co, rng);
    s2.seconds = cmp.physics_seconds;
    s2.gate = format_message("oracle RMSE ", cmp.mean_physics_rmse, " (", cmp.windows - cmp.failed_solves, "/",
                             cmp.windows, " converged)");
    s4.status = cmp.passed() ? StepStatus::kPassed : StepStatus::kFailed;
    std::ostringstream g;
    g << std::setprecision(3) << "max |d| " << std::abs(cmp.agreement.worst_difference.value) << " (<= "
      << cmp.agreement.options.tolerance_sigma << " sigma); spread " << cmp.agreement.min_spread.value << ".."
      << cmp.agreement.max_spread.value << " (in [" << cmp.agreement.options.min_spread_ratio << ", "
      << cmp.agreement.options.max_spread_ratio << "]); speed-up " << cmp.speedup();
    s4.gate += g.str();
    s4.detail = cmp.report();
    s4.seconds = cmp.emulator_seconds;
  } else {
    s2.status = StepStatus::kSkipped;
    s2.gate = "stopped: step 3 not promoted";
  }
  log << "  " << s4.gate << "\n";
  rep.steps.push_back(s2);
  rep.steps.push_back(s3);
  rep.steps.push_back(s4);
  rep.steps.push_back({5, "amortized predictor", StepStatus::kNotImplemented,
                       "not implemented in this version (see design/cycle.md)", "", "", "", 0.0});
  std::sort(rep.steps.begin(), rep.steps.end(), [](const StepRecord& a, const StepRecord& b) { return a.number < b.number; });

  // Step 6: manifest and report.
  t0 = clock::now();
  std::ostringstream m;
  m << "{\n  \"config_hash\": \"" << rep.config_hash << "\",\n  \"seed\": " << seed << ",\n  \"config\": \""
    << json_escape(yaml) << "\",\n  \"steps\": [\n";
  for (std::size_t i = 0; i < rep.steps.size(); ++i) {
    const auto& s = rep.steps[i];
    m << "    {\"step\": " << s.number << ", \"name\": \"" << json_escape(s.name) << "\", \"status\": \""
      << to_string(s.status) << "\", \"gate\": \"" << json_escape(s.gate) << "\", \"artifact\": \""
      << json_escape(s.artifact) << "\", \"checksum\": \"" << s.checksum << "\", \"seconds\": " << s.seconds << "}"
      << (i + 1 < rep.steps.size() ? "," : "") << "\n";
  }
  m << "  ],\n  \"all_gates_passed\": " << (rep.all_gates_passed() ? "true" : "false") << "\n}\n";
  write_text(dir / "manifest.json", m.str());
  std::ostringstream h;
  h << "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>varflow six-step report</title>\n"
       "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #999;"
       "padding:4px 8px;text-align:left}.passed{background:#dfd}.FAILED{background:#fdd}pre{background:#f4f4f4;"
       "padding:8px}</style></head><body>\n<h1>varflow six-step report</h1>\n<p>seed "
    << seed << ", config hash " << rep.config_hash << ", all gates passed: "
    << (rep.all_gates_passed() ? "yes" : "no") << "</p>\n<table><tr><th>#</th><th>step</th><th>status</th>"
       "<th>seconds</th><th>gate (statistic vs threshold)</th></tr>\n";
  for (const auto& s : rep.steps) {
    h << "<tr class=\"" << to_string(s.status) << "\"><td>" << s.number << "</td><td>" << html_escape(s.name)
      << "</td><td>" << to_string(s.status) << "</td><td>" << std::fixed << std::setprecision(2) << s.seconds
      << "</td><td>" << html_escape(s.gate) << "</td></tr>\n";
  }
  h << "</table>\n";
  for (const auto& s : rep.steps) {
    if (!s.detail.empty()) h << "<h2>Step " << s.number << ": " << html_escape(s.name) << "</h2>\n<pre>"
                             << html_escape(s.detail) << "</pre>\n";
  }
  h << "<h2>Configuration</h2>\n<pre>" << html_escape(yaml) << "</pre>\n</body></html>\n";
  write_text(dir / "report.html", h.str());
  (void)since(t0);
  return rep;
}

}  // namespace varflow::cycle
