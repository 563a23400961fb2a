#include "varflow/cycle/six_step.h"

#include <algorithm>

#include <charconv>
#include <functional>
#include <cmath>
#include <fstream>
#include <iomanip>
#include <limits>
#include <optional>
#include <ostream>
#include <sstream>

#include "varflow/io/config_reader.h"
#include "artifacts.h"
#include "varflow/core/communicator.h"
#include "varflow/core/enum_text.h"
#include "varflow/core/error.h"
#include "varflow/core/hash.h"
#include "varflow/core/limits.h"
#include "varflow/core/random.h"
#include "varflow/core/stopwatch.h"
#include "varflow/amortized/amortized_posterior.h"
#include "varflow/amortized/problems.h"
#include "varflow/validation/analysis_comparison.h"
#include "varflow/validation/emulator_gate.h"
#include "varflow/validation/limit_text.h"
#include "varflow/emulator/stencil_emulator.h"
#include "varflow/experiment/experiment_config.h"
#include "varflow/nn/parameters.h"
#include "varflow/version.h"

namespace varflow::cycle {

double SixStepConfig::obs_sd() const { return std::sqrt(obs_error_variance); }
double SixStepConfig::background_sd() const { return std::sqrt(background_variance); }

bool SixStepConfig::has_predictor_problem() const {
  const auto names = amortized::problem_names();
  return std::find(names.begin(), names.end(), model.name) != names.end();
}

void SixStepConfig::validate() const {
  model.make();  // checks the model's parameters by their rules
  const Index n = resolved_size();
  check_at_least("six-step config", "emulator.step_multiple", step_multiple, 1);
  if (step_multiple > 1 && n == state_size()) {
    throw InvalidArgument(format_message("six-step config: emulator.step_multiple = ", step_multiple,
                                         " needs a multi-scale model.name (", model.name,
                                         " has no unresolved variables); use 1"));
  }
  if (2 * radius + 1 > n) {
    throw InvalidArgument(format_message("six-step config: emulator.radius = ", radius, " gives a stencil of ",
                                         2 * radius + 1, " points, more than the ", n, " resolved variables of ",
                                         model.name));
  }
  check_at_least("six-step config", "emulator.train_pairs", train_pairs, 10);
  check_at_least("six-step config", "emulator.stride", stride, 1);
  check_at_least("six-step config", "emulator.held_out", held_out, 1);
  check_at_least("six-step config", "emulator.epochs", epochs, 1);
  check_at_least("six-step config", "emulator.hidden", hidden, 1);
  check_at_least("six-step config", "emulator.radius", radius, 0);
  check_at_least("six-step config", "emulator.layers", layers, 0);
  check_at_least("six-step config", "oracle.windows", windows, 1);
  check_at_least("six-step config", "cycling.window_steps", window_steps, 1);
  check_at_least("six-step config", "observations.every_steps", obs_every_steps, 1);
  check_at_least("six-step config", "observations.stride", obs_stride, 1);
  if (obs_every_steps > window_steps) {
    throw InvalidArgument(format_message("six-step config: observations.every_steps = ", obs_every_steps,
                                         " must not exceed cycling.window_steps = ", window_steps));
  }
  if (obs_stride > n) {
    throw InvalidArgument(format_message("six-step config: observations.stride = ", obs_stride,
                                         " must not exceed the ", n, " resolved variables of ", model.name));
  }
  if (windows > held_out) {
    throw InvalidArgument(format_message("six-step config: oracle.windows = ", windows,
                                         " must not exceed emulator.held_out = ", held_out,
                                         " (window truths are held-out states)"));
  }
  check_at_least("six-step config", "threads", threads, 1);
  for (auto [name, v] : {std::pair{"emulator.train_pairs", train_pairs}, std::pair{"emulator.stride", stride},
                         std::pair{"emulator.held_out", held_out}, std::pair{"emulator.epochs", epochs},
                         std::pair{"emulator.hidden", hidden}, std::pair{"emulator.layers", layers},
                         std::pair{"emulator.step_multiple", step_multiple}, std::pair{"oracle.windows", windows},
                         std::pair{"cycling.window_steps", window_steps},
                         std::pair{"observations.every_steps", obs_every_steps}, std::pair{"threads", threads}}) {
    limits::check_at_most("six-step config", name, v, limits::kMaxCount);
  }
  // What the run holds at once: the training and held-out pairs (two full states each), the
  // oracle's windows (states and an n x n covariance each) and the emulator's weights.
  const double full = static_cast<double>(state_size()), resolved = static_cast<double>(n);
  const double width = static_cast<double>(hidden), stencil = static_cast<double>(2 * radius + 1);
  const double bytes = 16.0 * full * static_cast<double>(train_pairs + held_out) +
                       8.0 * static_cast<double>(windows) * (resolved * resolved + 8.0 * resolved) +
                       8.0 * 4.0 * (stencil * width + width * width * static_cast<double>(layers) + width);
  limits::check_memory("six-step config",
                       format_message("the run (", train_pairs, " training pairs of ", state_size(), " values, ",
                                      windows, " oracle windows, hidden width ", hidden, ")"),
                       bytes);
  for (auto [name, v] : {std::pair{"emulator.learning_rate", learning_rate},
                         std::pair{"observations.error_variance", obs_error_variance},
                         std::pair{"background.variance", background_variance},
                         std::pair{"background.fast_variance", fast_background_variance}}) {
    if (!(v > 0.0) || !std::isfinite(v)) {
      throw InvalidArgument(format_message("six-step config: ", name, " = ", v, " must be positive"));
    }
  }
  if (has_predictor_problem()) predictor_options().validate();
  if (on_gate_failure != "stop" && on_gate_failure != "fallback" && on_gate_failure != "evaluate") {
    throw InvalidArgument(format_message("six-step config: on_gate_failure = '", on_gate_failure,
                                         "' is not one of: stop, fallback, evaluate"));
  }
}

namespace {

Index parse_index(const std::string& key, const std::string& text) {
  std::size_t used = 0;
  long long v = 0;
  try {
    v = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || text.empty()) {
    throw InvalidArgument(format_message("six-step config: predictor.", key, " = '", text, "' is not an integer"));
  }
  return static_cast<Index>(v);
}

}  // namespace

PredictorStepOptions SixStepConfig::predictor_options() const {
  PredictorStepOptions o;
  auto& p = o.problem;
  p.model = model;
  p.window = window_steps;
  p.obs_every = obs_every_steps;
  p.obs_stride = obs_stride;
  p.obs_noise = obs_sd();
  p.missing = 0.0;
  p.prior_sd = background_sd();
  for (const auto& [key, value] : predictor) {
    if (amortized::is_problem_key(key) || amortized::is_renamed_key(key)) {
      throw InvalidArgument(format_message("six-step config: predictor.", key,
                                           " cannot be set: the problem follows the cycle's sections (model, cycling.window_steps, "
                                           "observations, background)"));
    }
    if (key == "validation.events") {
      o.validation.events = parse_index(key, value);
    } else if (key == "validation.posterior_draws") {
      o.validation.posterior_draws = parse_index(key, value);
    } else if (key == "validation.jacobian_cases") {
      o.validation.jacobian_cases = parse_index(key, value);
    } else if (key == "validation.sbc_simulations") {
      o.validation.gates.sbc.simulations = parse_index(key, value);
    } else if (key == "validation.oracle_jacobian") {
      o.validation.window_jacobian =
          report::oracle_jacobian_from_string(value, "predictor.validation.oracle_jacobian");
    } else if (key.rfind("validation.", 0) == 0) {
      throw InvalidArgument(format_message("six-step config: unknown key 'predictor.", key,
                                           "' (validation keys: events, posterior_draws, jacobian_cases, "
                                           "sbc_simulations, oracle_jacobian)"));
    } else {
      amortized::apply_entry(o.setup, key, value, "six-step config: predictor");
    }
  }
  o.setup.window_problem = p;
  o.validation.window_problem = p;
  return o;
}

SixStepConfig SixStepConfig::from_yaml(const std::string& text, const std::string& source_name) {
  io::ConfigReader r = io::ConfigReader::parse(text, source_name);
  // The flat keys of earlier versions, refused naming their place in the shared sections.
  const std::vector<std::tuple<std::string, std::string, std::string>> renamed = {
      {"n", "model.n", ""}, {"forcing", "model.forcing", ""}, {"dt", "model.dt", ""},
      {"obs_every", "observations.every_steps", ""}, {"obs_stride", "observations.stride", ""},
      {"obs_noise", "observations.error_variance", "a variance: the square of obs_noise"},
      {"background_sd", "background.variance", "a variance: the square of background_sd"},
      {"window_steps", "cycling.window_steps", ""}, {"windows", "oracle.windows", ""},
      {"train_pairs", "emulator.train_pairs", ""}, {"stride", "emulator.stride", ""},
      {"held_out", "emulator.held_out", ""}, {"epochs", "emulator.epochs", ""}, {"hidden", "emulator.hidden", ""},
      {"radius", "emulator.radius", ""}, {"layers", "emulator.layers", ""},
      {"learning_rate", "emulator.learning_rate", ""}, {"emulator_file", "emulator.file", ""}};
  for (const auto& [old_key, new_key, note] : renamed) r.refuse_renamed(old_key, new_key, note);

  // Lower bounds are checked by validate() with their reasons; count() checks the upper limit.
  constexpr long long kNoMinimum = std::numeric_limits<long long>::min();
  SixStepConfig c;
  io::ConfigReader m = r.section("model");
  c.model = ModelSpec::read(m, c.model);
  m.finish();
  io::ConfigReader o = r.section("observations");
  c.obs_every_steps = o.count("every_steps", c.obs_every_steps, kNoMinimum);
  c.obs_stride = o.count("stride", c.obs_stride, kNoMinimum);
  c.obs_error_variance = o.real("error_variance", c.obs_error_variance);
  o.finish();
  io::ConfigReader b = r.section("background");
  c.background_variance = b.real("variance", c.background_variance);
  c.fast_background_variance = b.real("fast_variance", c.fast_background_variance);
  b.finish();
  io::ConfigReader cy = r.section("cycling");
  c.window_steps = cy.count("window_steps", c.window_steps, kNoMinimum);
  cy.finish();
  io::ConfigReader orc = r.section("oracle");
  c.windows = orc.count("windows", c.windows, kNoMinimum);
  orc.finish();
  io::ConfigReader e = r.section("emulator");
  c.train_pairs = e.count("train_pairs", c.train_pairs, kNoMinimum);
  c.step_multiple = e.count("step_multiple", c.step_multiple, kNoMinimum);
  c.stride = e.count("stride", c.stride, kNoMinimum);
  c.held_out = e.count("held_out", c.held_out, kNoMinimum);
  c.epochs = e.count("epochs", c.epochs, kNoMinimum);
  c.hidden = e.count("hidden", c.hidden, kNoMinimum);
  c.radius = e.count("radius", c.radius, kNoMinimum);
  c.layers = e.count("layers", c.layers, kNoMinimum);
  c.learning_rate = e.real("learning_rate", c.learning_rate);
  c.emulator_file = e.text("file", c.emulator_file);
  e.finish();
  for (const auto& [key, value] : r.flattened("predictor")) c.predictor[key] = value;
  c.threads = r.count("threads", c.threads, kNoMinimum);
  c.on_gate_failure = r.choice("on_gate_failure", c.on_gate_failure, {"stop", "fallback", "evaluate"});
  r.finish();
  c.validate();
  return c;
}

std::string SixStepConfig::to_yaml() const {
  std::ostringstream os;
  os << "model:\n" << model.yaml(2)
     << "observations:\n  every_steps: " << obs_every_steps << "\n  stride: " << obs_stride
     << "\n  error_variance: " << io::shortest_text(obs_error_variance) << "\nbackground:\n  variance: "
     << io::shortest_text(background_variance) << "\n  fast_variance: " << io::shortest_text(fast_background_variance)
     << "\ncycling:\n  window_steps: " << window_steps
     << "\noracle:\n  windows: " << windows << "\nemulator:\n  step_multiple: " << step_multiple
     << "\n  train_pairs: " << train_pairs
     << "\n  stride: " << stride << "\n  held_out: " << held_out << "\n  epochs: " << epochs
     << "\n  hidden: " << hidden << "\n  radius: " << radius << "\n  layers: " << layers
     << "\n  learning_rate: " << io::shortest_text(learning_rate) << "\n  file: \"" << emulator_file << "\""
     << "\nthreads: " << threads << "\non_gate_failure: " << on_gate_failure << "\n";
  if (!predictor.empty()) {
    os << "predictor:\n";
    for (const auto& [key, value] : predictor) os << "  " << key << ": \"" << value << "\"\n";
  }
  return os.str();
}

namespace {
constexpr EnumNames<StepStatus, 4> kStepStatusNames{{{StepStatus::kPassed, "passed"},
                                                     {StepStatus::kFailed, "FAILED"},
                                                     {StepStatus::kRan, "ran"},
                                                     {StepStatus::kSkipped, "skipped"}}};
}  // namespace

std::string to_string(StepStatus s) { return std::string(to_text(kStepStatusNames, s)); }

StepStatus step_status_from_string(const std::string& text) { return from_text(kStepStatusNames, "step status", text); }

bool SixStepReport::all_gates_passed() const {
  for (const auto& s : steps) {
    if (s.status == StepStatus::kFailed || s.status == StepStatus::kSkipped) return false;
  }
  return true;
}

std::vector<int> SixStepReport::steps_run() const {
  std::vector<int> out;
  for (const auto& s : steps) {
    if (!s.reused) out.push_back(s.number);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string SixStepReport::table() const {
  std::ostringstream os;
  os << std::left << std::setw(3) << "#" << std::setw(22) << "step" << std::setw(17) << "status" << std::setw(8)
     << "run" << std::setw(10) << "seconds" << "gate\n";
  for (const auto& s : steps) {
    std::ostringstream t;
    t << std::fixed << std::setprecision(2) << s.seconds;
    os << std::left << std::setw(3) << s.number << std::setw(22) << s.name << std::setw(17) << to_string(s.status)
       << std::setw(8) << (s.reused ? "reused" : "ran") << std::setw(10) << t.str() << s.gate << "\n";
  }
  return os.str();
}


namespace {

// The random stream of one step: a run that recomputes only some steps draws what a complete run
// would (splitmix64 of the seed and the step number).
Rng step_rng(std::uint64_t seed, int step) {
  std::uint64_t z = seed + 0x9E3779B97F4A7C15ULL * static_cast<std::uint64_t>(step + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return Rng(z ^ (z >> 31));
}

// Fingerprint of a step's inputs: FNV-1a 64 of "key=value;" text. It starts with the varflow
// version and instruction set: results of another version or build are recomputed, not reused.
class Fingerprint {
 public:
  Fingerprint() { add("varflow", VARFLOW_VERSION_STRING).add("arch", VARFLOW_BUILD_ARCH); }
  template <typename T>
  Fingerprint& add(const char* key, const T& value) {
    std::ostringstream os;
    os << std::setprecision(17) << key << "=" << value << ";";
    text_ += os.str();
    return *this;
  }
  std::string hex() const { return hex64(fnv1a(text_)); }

 private:
  std::string text_;
};

// Everything the steps hand to each other within one run.
class Cycle {
 public:
  Cycle(const SixStepConfig& config, std::uint64_t seed, std::filesystem::path dir, std::ostream& log,
        PreviousRun previous, const Communicator& comm)
      : c_(config), seed_(seed), dir_(std::move(dir)), log_(log), prev_(std::move(previous)),
        physics_(config.model.make()), comm_(comm) {}

  // Runs the five steps; `finished(steps)` is called after each with the records so far (the
  // caller records them in the manifest, so a killed run keeps every finished step).
  std::vector<StepRecord> run(const std::function<void(const std::vector<StepRecord>&)>& finished) {
    // A given emulator is checked before anything is computed or written.
    if (!c_.emulator_file.empty()) given_emulator_ = load_emulator_file();
    std::vector<StepRecord> steps;
    steps.push_back(step1());
    finished(steps);
    steps.push_back(step2(steps[0]));
    finished(steps);
    steps.push_back(step3(steps[0]));
    finished(steps);
    steps.push_back(step4(steps[1], steps[2]));
    finished(steps);
    steps.push_back(step5(steps[2], steps[3]));
    finished(steps);
    return steps;
  }

 private:
  // The previous run's record of step `number`, marked reused, when its input fingerprint is
  // `inputs` and its artifact (if it has one) still holds the recorded output: `content_checksum()`
  // loads the artifact (the caller keeps what later steps need) and returns its content checksum.
  // Otherwise nullopt, with the reason in the log. On several ranks a step is reused only when every
  // rank can reuse it (each checks the artifact itself), so that all ranks take the same path; the
  // root writes a step's artifact only after this agreement, when no rank reads it any more.
  template <typename ContentChecksum>
  std::optional<StepRecord> reusable(int number, const std::string& inputs, ContentChecksum&& content_checksum) {
    std::optional<StepRecord> mine = reusable_here(number, inputs, content_checksum);
    double refusals = mine ? 0.0 : 1.0;
    comm_.allreduce_sum(&refusals, 1);
    if (refusals == 0.0) return mine;
    if (mine) log_ << "step " << number << ": recomputed (another rank cannot reuse it)\n";
    return std::nullopt;
  }

  template <typename ContentChecksum>
  std::optional<StepRecord> reusable_here(int number, const std::string& inputs, ContentChecksum& content_checksum) {
    const auto it = prev_.steps.find(number);
    if (it == prev_.steps.end()) return std::nullopt;
    const StepRecord& p = it->second;
    if (p.inputs != inputs) {
      log_ << "step " << number << ": inputs changed since the previous run\n";
      return std::nullopt;
    }
    if (!p.artifact.empty()) {
      try {
        if (content_checksum() != p.checksum) {
          log_ << "step " << number << ": " << p.artifact << " does not hold the recorded output\n";
          return std::nullopt;
        }
      } catch (const InvalidArgument& e) {
        log_ << "step " << number << ": " << e.what() << "\n";
        return std::nullopt;
      }
    }
    log_ << "step " << number << ": reused (inputs unchanged"
         << (p.artifact.empty() ? "" : ", " + p.artifact + " verified") << ")\n";
    StepRecord out = p;
    out.reused = true;
    return out;
  }

  StepRecord step1() {
    const std::string inputs = Fingerprint()
                                   .add("model", c_.model.yaml(0))
                                   .add("step_multiple", c_.step_multiple)
                                   .add("train_pairs", c_.train_pairs).add("stride", c_.stride)
                                   .add("held_out", c_.held_out).add("seed", seed_).hex();
    const auto file = dir_ / "physics.nc";
    if (auto r = reusable(1, inputs, [&] {
          data_ = load_physics(file);
          return data_.checksum();
        })) {
      return *r;
    }
    const Stopwatch clock;
    log_ << "step 1: physics trajectories (" << c_.train_pairs << " training pairs, " << c_.held_out
         << " held-out states)\n";
    Rng rng = step_rng(seed_, 1);
    Vector x0 = c_.model.rest_state();
    if (x0.size() == 0) x0 = Vector::Ones(c_.state_size());
    const Index m = c_.step_multiple;
    data_.train = emulator::simulate_pairs(*physics_, x0, c_.train_pairs, 1000, c_.stride, rng, m);
    data_.held_out = emulator::simulate_pairs(*physics_, x0, c_.held_out, 1000, c_.stride + 2 * m, rng, m);
    on_root([&] { save_physics(data_, file); });
    return {1, "physics forward", StepStatus::kRan, "-", "", "physics.nc", data_.checksum(), inputs, clock.seconds(), false, {}};
  }

  StepRecord step2(const StepRecord& s1) {
    const std::string inputs = Fingerprint()
                                   .add("step1", s1.checksum).add("windows", c_.windows)
                                   .add("window_steps", c_.window_steps).add("obs_every", c_.obs_every_steps)
                                   .add("obs_stride", c_.obs_stride).add("obs_error_variance", c_.obs_error_variance)
                                   .add("background_variance", c_.background_variance)
                                   .add("fast_background_variance", c_.fast_background_variance)
                                   .add("seed", seed_).hex();
    const auto file = dir_ / "oracle.nc";
    if (auto r = reusable(2, inputs, [&] {
          oracle_ = load_oracle(file);
          return oracle_.checksum();
        })) {
      return *r;
    }
    const Stopwatch clock;
    log_ << "step 2: 4D-Var oracle on " << c_.windows << " held-out windows\n";
    // Window truths: held-out states spread evenly along their trajectory.
    const Matrix& held = data_.held_out.states;
    Matrix truths(c_.state_size(), c_.windows);
    for (Index w = 0; w < c_.windows; ++w) truths.col(w) = held.col(w * (held.cols() / c_.windows));
    WindowOptions wo;
    wo.steps = c_.window_steps;
    wo.obs_every = c_.obs_every_steps;
    wo.obs_stride = c_.obs_stride;
    wo.obs_sd = c_.obs_sd();
    wo.background_sd = c_.background_sd();
    if (c_.resolved_size() < c_.state_size()) {
      wo.resolved = c_.resolved_size();
      wo.step_multiple = c_.step_multiple;
      wo.fast_background_sd = std::sqrt(c_.fast_background_variance);
    }
    Rng rng = step_rng(seed_, 2);
    oracle_.windows = make_held_out_windows(*physics_, truths, wo, rng);
    oracle_.analyses = solve_oracle(oracle_.windows, physics_);
    on_root([&] { save_oracle(oracle_, file); });
    const auto& a = oracle_.analyses;
    StepRecord r{2, "4D-Var oracle", a.converged_count() == c_.windows ? StepStatus::kPassed : StepStatus::kFailed,
                 "", "", "oracle.nc", oracle_.checksum(), inputs, clock.seconds(), false, {}};
    std::ostringstream g;
    g << std::setprecision(3) << a.converged_count() << "/" << c_.windows << " windows converged (all required); RMSE "
      << a.mean_rmse << " (background sd " << c_.background_sd() << ")";
    r.gate = g.str();
    r.detail = format_message("strong-constraint 4D-Var (Ceres) with the physics, dense Laplace posterior; ",
                              c_.windows, " windows of ", c_.window_steps, " steps (x ", c_.step_multiple,
                              " physics steps), every ", c_.obs_stride,
                              "-th point observed at steps 0, ", c_.obs_every_steps, ", ..; obs sd ", c_.obs_sd(),
                              ", background sd ", c_.background_sd(), "; solves ", a.seconds, " s");
    log_ << "  " << r.gate << "\n";
    return r;
  }

  // The emulator of emulator_file; InvalidArgument naming the key when it does not fit the physics.
  std::shared_ptr<emulator::StencilEmulator> load_emulator_file() const {
    std::shared_ptr<emulator::StencilEmulator> emu;
    try {
      emu = emulator::StencilEmulator::load(c_.emulator_file);
    } catch (const InvalidArgument& e) {
      throw InvalidArgument(format_message("six-step config: emulator.file = '", c_.emulator_file, "': ", e.what()));
    }
    const auto& ec = emu->config();
    if (ec.grid != c_.resolved_size() || ec.dt != c_.emulator_dt()) {
      throw InvalidArgument(format_message("six-step config: emulator.file = '", c_.emulator_file,
                                           "' emulates n = ", ec.grid, ", dt = ", ec.dt, "; the cycle needs n = ",
                                           c_.resolved_size(), ", dt = ", c_.emulator_dt()));
    }
    return emu;
  }

  StepRecord step3(const StepRecord& s1) {
    // One thread whatever config.threads says: the emulator's 1009-weight network on batches of 32
    // states spends less time in each product than an OpenMP fork/join costs (training measured ~8x
    // slower on 2 threads than on 1), so step 3's results do not depend on the thread count.
    const nn::ScopedThreadCount serial(1);
    const std::shared_ptr<emulator::StencilEmulator> given = given_emulator_;
    Fingerprint f;
    f.add("step1", s1.checksum).add("seed", seed_);
    if (given) {
      f.add("emulator_file", given->checksum());
    } else {
      f.add("radius", c_.radius).add("hidden", c_.hidden).add("layers", c_.layers).add("epochs", c_.epochs)
          .add("learning_rate", c_.learning_rate);
    }
    // A multi-scale physics adds the forecast-skill check over the window's leads.
    if (c_.resolved_size() < c_.state_size()) f.add("skill_leads", c_.window_steps);
    const std::string inputs = f.hex();
    const auto file = dir_ / "emulator.nc";
    std::shared_ptr<const emulator::StencilEmulator> loaded;
    if (auto r = reusable(3, inputs, [&] {
          loaded = emulator::StencilEmulator::load(file);
          return loaded->checksum();
        })) {
      emulator_ = loaded;
      emulator_gated_ = r->gate.rfind("training failed", 0) != 0;
      emulator_promoted_ = r->status == StepStatus::kPassed;
      return *r;
    }
    const Stopwatch clock;
    Rng rng = step_rng(seed_, 3);
    StepRecord r{3, "emulator", StepStatus::kFailed, "", "", "emulator.nc", "", inputs, 0.0, false, {}};
    std::shared_ptr<emulator::StencilEmulator> emu = given;
    bool trained = true;
    if (given) {
      log_ << "step 3: gating the emulator of " << c_.emulator_file << " (" << given->parameters().size()
           << " weights)\n";
      r.detail = format_message("emulator loaded from '", c_.emulator_file, "' (checksum ", given->checksum(), ")\n");
    } else {
      emulator::StencilEmulatorConfig ec;
      ec.grid = c_.resolved_size();
      ec.radius = c_.radius;
      ec.hidden = c_.hidden;
      ec.layers = c_.layers;
      ec.dt = c_.emulator_dt();
      ec.physics = c_.model.name;
      emu = std::make_shared<emulator::StencilEmulator>(ec);
      emu->initialize(rng);
      const nn::TrainingOptions to = emulator::fixed_budget_training(c_.epochs, c_.learning_rate);
      log_ << "step 3: training the emulator (" << emu->parameters().size() << " weights, " << c_.epochs
           << " epochs)\n";
      const auto summary = emulator::train_emulator(*emu, emulator::leading_rows(data_.train, c_.resolved_size()), to,
                                                    rng, nn::log_every_tenth(log_, "  "));
      r.detail = summary.brief_report() + "\n";
      r.figures["train_loss"] = summary.train_loss;
      r.figures["validation_loss"] = summary.validation_loss;
      if (!summary.ok()) {
        trained = false;
        r.gate = "training failed: " + summary.message;
      }
    }
    if (trained) {
      EmulatorGateOptions go;
      go.step_multiple = c_.step_multiple;
      const auto gate = emulator_gate(*emu, *physics_, data_.held_out.states, rng, go);
      bool passed = gate.passed();
      std::ostringstream g;
      g << std::setprecision(3) << limit_text("forward error", gate.forward_error, Limit::kBelow, gate.forward_tolerance)
        << "; "
        << limit_text("Jacobian norm diff", gate.max_jacobian_difference, Limit::kBelow, gate.operator_norm_tolerance)
        << "; TL/AD " << (gate.adjoint_passed ? "pass" : "FAIL");
      r.detail += gate.report();
      r.figures["forward_errors"] = gate.forward_errors;
      r.figures["forward_tolerance"] = {gate.forward_tolerance};
      emulator_gated_ = true;
      // Forecast error against lead over the window from the held-out states (the picture of
      // report.html). A closure of a multi-scale physics must beat the truncated model (the coupling
      // dropped) at every lead: evidence that it learned the coupling; a single-scale emulator has no
      // such baseline (it is its own, unused).
      const Index leads = std::max<Index>(c_.window_steps, 1);
      const auto truncated = c_.resolved_size() < c_.state_size() ? c_.model.truncated() : nullptr;
      const ForecastSkill skill =
          truncated ? forecast_skill(*emu, *truncated, c_.step_multiple, *physics_, c_.step_multiple, c_.dt(),
                                     data_.held_out.states, leads)
                    : forecast_skill(*emu, *emu, 1, *physics_, c_.step_multiple, c_.dt(), data_.held_out.states, leads);
      r.figures["lead_time"] = skill.lead_time;
      r.figures["forecast_rmse"] = skill.model_rmse;
      r.figures["climatology_rmse"] = {skill.climatology_rmse};
      if (truncated) {
        const bool better = skill.model_better();
        r.figures["truncated_rmse"] = skill.baseline_rmse;
        passed = passed && better;
        g << "; skill over " << leads << " leads: RMSE " << skill.model_rmse.back() << " vs truncated "
          << skill.baseline_rmse.back() << " at lead " << skill.lead_time.back() << " ("
          << (better ? "better at every lead" : "NOT better at every lead") << ")";
        r.detail += "forecast skill against the physics' resolved variables (held-out states):\n" + skill.table();
      }
      r.status = passed ? StepStatus::kPassed : StepStatus::kFailed;
      if (!passed) g << "; to try: more training (emulator.epochs, emulator.train_pairs) or capacity (emulator.hidden)";
      r.gate = g.str();
    }
    on_root([&] { emu->save(file); });
    r.checksum = emu->checksum();
    r.seconds = clock.seconds();
    emulator_ = emu;
    emulator_promoted_ = r.status == StepStatus::kPassed;
    log_ << "  " << r.gate << "\n";
    return r;
  }

  // The model a later step uses: the emulator while every gate it went through passed (step 3, and
  // step 4 when `s4` is given), the physics on fallback, none when the cycle stops. With `evaluate`,
  // step 4 measures an emulator that step 3 refused (nothing is promoted: step 5 stops). `identity`
  // names it for the fingerprints; `note` starts the gate line of a step that does not use a
  // promoted emulator.
  std::shared_ptr<const Model> promoted_model(const StepRecord& s3, const StepRecord* s4, std::string* identity,
                                              std::string* note) const {
    if (emulator_promoted_ && (!s4 || s4->status == StepStatus::kPassed)) {
      *identity = "emulator " + s3.checksum;
      return emulator_;
    }
    const std::string why = emulator_promoted_ ? "step 4 not promoted" : "step 3 not promoted";
    if (c_.on_gate_failure == "evaluate" && !s4 && emulator_gated_) {
      *identity = format_message("emulator ", s3.checksum, " evaluated (", why, ")");
      *note = "evaluated, not promoted (" + why + "): ";
      return emulator_;
    }
    if (c_.on_gate_failure == "fallback") {
      *identity = format_message("physics ", physics_->name(), " (fallback: emulator ",
                                 s3.checksum, ", ", why, ")");
      *note = "fallback: " + why + ", the physics model is used; ";
      return physics_;
    }
    *identity = format_message("stopped (emulator ", s3.checksum, ", ", why, ")");
    *note = "stopped: " + why;
    return nullptr;
  }

  StepRecord step4(const StepRecord& s2, const StepRecord& s3) {
    std::string identity, note;
    const auto model = promoted_model(s3, nullptr, &identity, &note);
    const std::string inputs = Fingerprint().add("step2", s2.checksum).add("model", identity).hex();
    if (auto r = reusable(4, inputs, [] { return std::string(); })) return *r;  // no artifact
    StepRecord r{4, "emulator analyses", StepStatus::kSkipped, note, "", "", "", inputs, 0.0, false, {}};
    if (!model) {
      log_ << "step 4: " << note << "\n";
      return r;
    }
    const Stopwatch clock;
    log_ << "step 4: " << c_.windows << " windows with " << model->name() << " against the oracle\n";
    const auto cmp = compare_with_oracle(oracle_.windows, oracle_.analyses, physics_, model);

    r.status = cmp.passed() ? StepStatus::kPassed : StepStatus::kFailed;
    std::ostringstream g;
    g << std::setprecision(3);
    if (cmp.agreement.events == 0) {
      g << "no window to compare";
    } else {
      const auto& a = cmp.agreement;
      g << limit_text("max |d| (oracle sigma)", std::abs(a.worst_difference.value), Limit::kAtMost,
                      a.options.tolerance_sigma)
        << "; " << band_text("spread", a.min_spread.value, a.max_spread.value, a.options.min_spread_ratio,
                             a.options.max_spread_ratio);
    }
    g << "; speed-up " << cmp.speedup() << " (physics "
      << cmp.physics_seconds / static_cast<double>(cmp.windows) << " s/window, " << cmp.physics_steps << " steps of "
      << cmp.physics_size << " variables; model " << cmp.emulator_seconds / static_cast<double>(cmp.windows)
      << " s/window, " << cmp.model_steps << " steps of " << cmp.model_size << ")";
    if (cmp.failed_solves > 0) g << "; " << cmp.failed_solves << " windows without a converged solve";
    r.gate += g.str();
    r.detail = cmp.report();
    {
      // d of every component of every window, with its window (the picture of report.html).
      const Matrix& d = cmp.agreement.standardized_difference;  // components x windows
      auto& values = r.figures["standardized_difference"];
      auto& window = r.figures["window"];
      for (Index w = 0; w < d.cols(); ++w)
        for (Index i = 0; i < d.rows(); ++i) {
          values.push_back(d(i, w));
          window.push_back(static_cast<double>(w));
        }
      r.figures["tolerance_sigma"] = {cmp.agreement.options.tolerance_sigma};
    }
    r.seconds = clock.seconds();
    log_ << "  " << r.gate << "\n";
    return r;
  }

  StepRecord step5(const StepRecord& s3, const StepRecord& s4) {
    std::string identity, note;
    const auto model = promoted_model(s3, &s4, &identity, &note);
    Fingerprint f;
    f.add("model", identity).add("physics", c_.model.yaml(0))
        .add("window_steps", c_.window_steps).add("obs_every", c_.obs_every_steps).add("obs_stride", c_.obs_stride)
        .add("obs_error_variance", c_.obs_error_variance).add("background_variance", c_.background_variance).add("threads", c_.threads)
        .add("seed", seed_);
    // Training on several ranks equals one rank's up to the order of the sums (design/parallel.md):
    // another number of ranks is another input, as the thread count is.
    if (comm_.size() > 1) f.add("ranks", comm_.size());
    for (const auto& [key, value] : c_.predictor) f.add(key.c_str(), value);
    const std::string inputs = f.hex();
    const auto file = dir_ / "predictor.nc";
    if (auto r = reusable(5, inputs, [&] { return amortized::AmortizedPosterior::load(file).checksum(); })) return *r;
    StepRecord r{5, "amortized predictor", StepStatus::kSkipped, note, "", "", "", inputs, 0.0, false, {}};
    if (!model) {
      log_ << "step 5: " << note << "\n";
      return r;
    }
    if (!c_.has_predictor_problem()) {
      std::string names;
      for (const auto& n : amortized::problem_names()) names += (names.empty() ? "" : ", ") + n;
      r.gate = format_message("not available: step 5 trains the amortized problem of the physics, and none is "
                              "registered for model.name = '", c_.model.name, "' (problems: ", names, ")");
      log_ << "step 5: " << r.gate << "\n";
      return r;
    }
    const Stopwatch clock;
    Rng rng = step_rng(seed_, 5);
    log_ << "step 5: amortized predictor trained on pairs from " << model->name() << "\n";
    const PredictorStepResult result = run_predictor_step(model, c_.predictor_options(), rng, file, log_, comm_);
    r.status = result.promoted() ? StepStatus::kPassed : StepStatus::kFailed;
    r.gate += result.gate_line();
    r.detail = format_message("pairs from ", model->name(), ": simulated in ", result.simulate_seconds,
                              " s, trained in ", result.train_seconds, " s, validated in ", result.validate_seconds,
                              " s\n", result.training_message, "\n");
    if (result.validated) {
      r.detail += result.validation.decision.report();
      r.artifact = "predictor.nc";
      r.checksum = result.model_checksum;
      on_root([&] { report::write_report(result.validation, dir_ / "predictor_validation"); });
      // The gate summary of report.html: each gate's statistic and its limit.
      const PromotionDecision& d = result.validation.decision;
      double probe = 0.0, probe_limit = 0.0;
      for (const auto& j : d.adjoint_calibration.jacobians) {
        probe = std::max(probe, std::isfinite(j.max_probe_error) ? j.max_probe_error : INFINITY);
        probe_limit = j.probe_tolerance;
      }
      r.figures["agreement_max_abs_d"] = {std::abs(d.agreement.worst_difference.value),
                                          d.agreement.options.tolerance_sigma, d.agreement.passed() ? 1.0 : 0.0};
      r.figures["adjoint_max_probe_error"] = {probe, probe_limit, d.adjoint_calibration.passed() ? 1.0 : 0.0};
      r.figures["sbc_min_p_value"] = {d.sbc.min_p_value, d.sbc.chi_square_threshold, d.sbc.passed() ? 1.0 : 0.0};
      r.detail += "\nfull validation report: predictor_validation/report.html\n";
    }
    r.seconds = clock.seconds();
    return r;
  }

  // Runs a write of the step on the root only; its failure is every rank's.
  void on_root(const std::function<void()>& write) const { run_on_root(comm_, write); }

  const SixStepConfig& c_;
  std::uint64_t seed_;
  std::filesystem::path dir_;
  std::ostream& log_;
  PreviousRun prev_;
  std::shared_ptr<const Model> physics_;
  PhysicsData data_;
  OracleData oracle_;
  std::shared_ptr<emulator::StencilEmulator> given_emulator_;  // from emulator_file, if set
  std::shared_ptr<const emulator::StencilEmulator> emulator_;
  bool emulator_promoted_ = false;
  bool emulator_gated_ = false;  // the emulator was trained (or loaded) and went through step 3's gate
  const Communicator& comm_;
};

}  // namespace

SixStepReport run_six_step(const SixStepConfig& config, std::uint64_t seed, const std::filesystem::path& dir,
                           std::ostream& root_log, const SixStepRunOptions& run, const Communicator& comm) {
  config.validate();
  std::ostream discard(nullptr);  // the other ranks' progress goes nowhere
  std::ostream& log = comm.is_root() ? root_log : discard;
  // config.threads serves step 5 (data-parallel replicas, labels, validation); step 3 trains on one
  // thread (below). The previous setting is restored on return.
  const nn::ScopedThreadCount threads(static_cast<int>(config.threads));
  run_on_root(comm, [&] { std::filesystem::create_directories(dir); });
  SixStepReport rep;
  rep.seed = seed;
  const std::string yaml = config.to_yaml();
  rep.config_hash = varflow::config_hash(yaml);
  PreviousRun previous;
  if (run.fresh) {
    previous.why = "--fresh";
  } else {
    previous = read_manifest(dir / "manifest.json");
  }
  if (!previous.why.empty()) log << "every step runs: " << previous.why << "\n";
  // Each step is recorded in the manifest as soon as it finishes (complete: false until the end):
  // a run killed after step k recomputes only the steps after k.
  const auto record = [&](const std::vector<StepRecord>& done) {
    SixStepReport partial = rep;
    partial.steps = done;
    if (done.size() < 5) run_on_root(comm, [&] { write_manifest(partial, yaml, dir / "manifest.json", false); });
    const int number = done.back().number;
    if (run.stop_after_step == number) {
      throw Error(format_message("six-step: stopped after step ", number, " (stop_after_step)"));
    }
  };
  rep.steps = Cycle(config, seed, dir, log, std::move(previous), comm).run(record);
  // Step 6: the manifest and the report of this run.
  run_on_root(comm, [&] {
    write_manifest(rep, yaml, dir / "manifest.json", true);
    write_report_html(rep, yaml, dir / "report.html");
  });
  return rep;
}

}  // namespace varflow::cycle
