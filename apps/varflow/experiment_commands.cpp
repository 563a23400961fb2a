// `varflow config`, `varflow simulate` and `varflow assimilate`: cycling assimilation experiments
// from a YAML config (design/formats.md), with netCDF inputs and outputs.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include "command.h"
#include "varflow/core/error.h"
#include "varflow/experiment/twin_experiment.h"
#include "varflow/experiment/experiment_config.h"
#include "varflow/io/atomic_file.h"
#include "varflow/io/run_lock.h"
#include "varflow/core/hash.h"
#include "varflow/experiment/experiment_io.h"
#include "varflow/io/provenance.h"
#include "varflow/version.h"

namespace varflow::cli {

namespace {

// A cycle's or the run's spread, "-" when there is none (posterior: none).
std::string spread_text(double spread) {
  if (!std::isfinite(spread)) return "-";
  char text[32];
  std::snprintf(text, sizeof text, "%.4f", spread);
  return text;
}

void print_header(const char* what, const ExperimentConfig& c, const std::string& config_path) {
  const TwinExperimentConfig& e = c.experiment;
  std::printf("varflow %s %s: %s, method %s, %lld cycles, windows of %lld steps every %lld (assimilate %s), seed %llu\n",
              VARFLOW_VERSION_STRING, what, e.model->name().c_str(), to_string(e.method).c_str(),
              static_cast<long long>(e.cycles), static_cast<long long>(e.window_steps),
              static_cast<long long>(e.shift()), to_string(e.assimilate).c_str(), static_cast<unsigned long long>(e.seed));
  std::printf("  config: %s (hash %s)\n", config_path.empty() ? "built-in default" : config_path.c_str(),
              config_hash(c.text).c_str());
  std::fflush(stdout);
}

// Progress on stderr, one line per cycle (every 10th on a long run), with the time left.
class Progress {
 public:
  explicit Progress(bool quiet) : quiet_(quiet), start_(std::chrono::steady_clock::now()) {}
  void operator()(Index i, Index n, const CycleRecord& r) const {
    if (quiet_) return;
    const Index every = n > 20 ? 10 : 1;
    if ((i + 1) % every != 0 && i + 1 != n && i != 0) return;
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const double left = elapsed / static_cast<double>(i + 1) * static_cast<double>(n - i - 1);
    std::fprintf(stderr,
                 "  cycle %4lld/%lld  filter RMSE %.4f  forecast RMSE %.4f  smoother RMSE %.4f  spread %s"
                 "  chi2/m %.3f  iterations %d  %s  (%.1f s elapsed, %.1f s left)\n",
                 static_cast<long long>(i + 1), static_cast<long long>(n), r.filter_rmse, r.forecast_rmse,
                 r.analysis_rmse, spread_text(r.spread).c_str(), r.innovations.chi2_per_obs, r.iterations,
                 to_string(r.termination).c_str(), elapsed, left);
  }

 private:
  bool quiet_;
  std::chrono::steady_clock::time_point start_;
};

struct ExperimentOptions {
  std::string config;
  std::string out;
  std::string obs;
  std::string background;
  long long seed = -1;
  bool quiet = false;
  Index checkpoint_every = 1;  // cycles; 0: no checkpoints (assimilate)
  bool resume = false;
};

void add_common(CLI::App* sub, ExperimentOptions& o) {
  sub->add_option("--config", o.config, "YAML experiment config (default: the built-in one; see `varflow config --print-default`)")
      ->check(CLI::ExistingFile);
  sub->add_option("--seed", o.seed, "Override cycling.seed of the config")->check(CLI::NonNegativeNumber);
}

// What a checkpoint of assimilate depends on: the program, the config text, the seed and the data.
std::string data_fingerprint(const ExperimentConfig& c, const TwinData& d) {
  std::uint64_t h = fnv1a(c.text);
  h = fnv1a(d.obs_values.data(), sizeof(double) * static_cast<std::size_t>(d.obs_values.size()), h);
  h = fnv1a(d.obs_mask.data(), sizeof(bool) * static_cast<std::size_t>(d.obs_mask.size()), h);
  h = fnv1a(d.obs_steps.data(), sizeof(Index) * d.obs_steps.size(), h);
  h = fnv1a(d.observed_variables.data(), sizeof(Index) * d.observed_variables.size(), h);
  h = fnv1a(d.obs_error_variance, h);
  h = fnv1a(d.initial_background, h);
  for (const Vector& x : d.truth) h = fnv1a(x, h);
  // The amortized analysis's model file: a checkpoint of a run with another model does not resume.
  const std::string& model = c.experiment.amortized.model;
  if (!model.empty() && std::filesystem::exists(model)) {
    const std::uint64_t m = fnv1a_file(model);
    h = fnv1a(&m, sizeof m, h);
  }
  return format_message("varflow ", VARFLOW_VERSION_STRING, "\nseed ", c.experiment.seed, "\nconfig and data ",
                        hex64(h), "\n");
}

int run_simulate(const ExperimentOptions& o) {
  ExperimentConfig c = load_experiment_config(o.config);
  if (o.seed >= 0) c.experiment.seed = static_cast<std::uint64_t>(o.seed);
  print_header("simulate", c, o.config);
  set_run_config(c.text, c.experiment.seed);
  { AtomicOutput probe(o.out); }
  const RunLock lock(o.out, RunLock::Kind::kFile);  // one run per output file
  const TwinData d = simulate_twin_data(c.experiment);
  write_twin_data(o.out, d, c);
  std::printf("  wrote %s: truth over %zu steps, %zu observation times of %zu variables\n", o.out.c_str(),
              d.truth.size(), d.obs_steps.size(), d.observed_variables.size());
  return 0;
}

int run_assimilate(const ExperimentOptions& o) {
  ExperimentConfig c = load_experiment_config(o.config);
  if (o.seed >= 0) c.experiment.seed = static_cast<std::uint64_t>(o.seed);
  print_header("assimilate", c, o.config);
  set_run_config(c.text, c.experiment.seed);
  // Check the output path before the run, so a long run does not end in a bad path, and take the
  // output's lock (one run per output file) before any work.
  { AtomicOutput probe(o.out); }
  const RunLock lock(o.out, RunLock::Kind::kFile);
  const TwinExperimentConfig& e = c.experiment;
  const Index n = e.model->state_size();
  TwinData data;
  if (!o.obs.empty()) {
    data = read_twin_data(o.obs, n, e.total_steps(), c.non_finite_observations);
    std::printf("  observations from %s (%zu times, %zu variables%s)\n", o.obs.c_str(), data.obs_steps.size(),
                data.observed_variables.size(), data.truth.empty() ? ", no truth: RMSEs are NaN" : "");
  } else {
    data = simulate_twin_data(e);
  }
  if (!o.background.empty()) {
    data.initial_background = read_background(o.background, n);
    std::printf("  first background from %s\n", o.background.c_str());
  }
  if (data.initial_background.size() == 0) {
    throw InvalidArgument(format_message("--obs ", o.obs, " has no initial_background: give --background FILE"));
  }
  // Checkpoints go to <out>.checkpoint (removed once the analysis file is written); the
  // fingerprint ties one to the config, seed and data that wrote it.
  const std::filesystem::path checkpoint_file = o.out + ".checkpoint";
  const std::string fingerprint = data_fingerprint(c, data);
  TwinState resumed;
  TwinCheckpointing checkpointing;
  checkpointing.every = o.checkpoint_every;
  checkpointing.save = [&](const TwinState& st) { save_twin_state(checkpoint_file, st, fingerprint); };
  if (o.resume) {
    if (std::filesystem::exists(checkpoint_file)) {
      resumed = load_twin_state(checkpoint_file, fingerprint);
      checkpointing.resume = &resumed;
      std::printf("  resuming from %s after cycle %lld\n", checkpoint_file.string().c_str(),
                  static_cast<long long>(resumed.cycles_done));
    } else {
      std::printf("  no checkpoint %s: starting at cycle 1\n", checkpoint_file.string().c_str());
    }
    std::fflush(stdout);
  }
  const Progress progress(o.quiet);
  const TwinExperimentResult r = run_twin_experiment(
      e, data, [&progress](Index i, Index n_cycles, const CycleRecord& rec) { progress(i, n_cycles, rec); },
      checkpointing);
  write_analysis(o.out, r, c);
  std::error_code ignored;
  std::filesystem::remove(checkpoint_file, ignored);  // the analysis file supersedes it
  const Index scored = static_cast<Index>(r.cycles.size()) - r.burn_in;
  const std::string spread = r.spread_cycles == 0 ? std::string("- (no posterior)")
                             : r.spread_cycles < scored
                                 ? format_message(spread_text(r.mean_spread), " (over the ", r.spread_cycles, " of ",
                                                  scored, " cycles with a posterior)")
                                 : spread_text(r.mean_spread);
  std::printf("  after burn-in (%lld cycles), time means: filter RMSE %.4f (at the newest assimilated observation),"
              " forecast RMSE %.4f, smoother RMSE %.4f (window start), background RMSE %.4f, spread %s"
              " (observation error %.4f)\n",
              static_cast<long long>(r.burn_in), r.mean_filter_rmse, r.mean_forecast_rmse, r.mean_analysis_rmse,
              r.mean_background_rmse, spread.c_str(), r.obs_error_std);
  const InnovationStatistics& s = r.mean_innovations;
  std::printf("  innovations: O-B mean %.4f rms %.4f, O-A mean %.4f rms %.4f, chi2/m = 2 J(analysis)/m %.3f"
              " (expectation 1 for correct B and R)\n",
              s.omb_mean, s.omb_rms, s.oma_mean, s.oma_rms, s.chi2_per_obs);
  std::printf("  per cycle: %.1f iterations, %.1f TL and %.1f AD sweeps, %.2f ms; %lld of %zu cycles not converged\n",
              r.mean_iterations, r.mean_tl_sweeps, r.mean_ad_sweeps, 1e3 * r.mean_seconds,
              static_cast<long long>(r.cycles_not_converged), r.cycles.size());
  if (!e.amortized.model.empty()) {
    // Why the other cycles fell back (the reason's first word: layout, non-finite, chi2).
    std::map<std::string, Index> reasons;
    for (const CycleRecord& rec : r.cycles) {
      if (!rec.amortized) ++reasons[rec.fallback_reason.substr(0, rec.fallback_reason.find_first_of(": "))];
    }
    std::string why;
    for (const auto& [reason, count] : reasons) why += format_message(why.empty() ? "" : ", ", reason, " ", count);
    std::printf("  amortized analysis (%s): %lld of %zu cycles; fell back to %s in %lld (%s); %s\n",
                e.amortized.model.c_str(), static_cast<long long>(r.cycles_amortized), r.cycles.size(),
                to_string(e.method).c_str(), static_cast<long long>(r.cycles.size()) - r.cycles_amortized,
                why.empty() ? "none" : why.c_str(),
                e.amortized.validation.empty()
                    ? "its gates not checked (no amortized.validation)"
                    : format_message("every gate passed (", e.amortized.validation, ")").c_str());
  }
  std::printf("  wrote %s\n", o.out.c_str());
  if (r.cycles_failed > 0) {
    // The run is not a success when a cycle's solver failed (a non-finite cost or trajectory, a
    // non-SPD Krylov matrix): its analysis is the last good iterate, not an estimate.
    std::fprintf(stderr,
                 "varflow assimilate: %lld of %zu cycles failed numerically (termination numerical_failure in %s); "
                 "check the model and observation settings\n",
                 static_cast<long long>(r.cycles_failed), r.cycles.size(), o.out.c_str());
    return 1;
  }
  return 0;
}

}  // namespace

void add_experiment_commands(CLI::App& app, CommandList& commands) {
  auto* config = app.add_subcommand("config", "Print the built-in experiment config as YAML, ready to edit");
  // The flag's storage lives as long as the runner (CLI11 writes it after this function returns).
  auto print_default = std::make_shared<bool>(false);
  config->add_flag("--print-default", *print_default, "Print the default config")->required();
  commands.push_back({config, [print_default] {
                        std::cout << default_experiment_yaml();
                        return 0;
                      }});

  auto so = std::make_shared<ExperimentOptions>();
  auto* simulate = app.add_subcommand("simulate", "Simulate a truth trajectory and observations of it (netCDF)");
  add_common(simulate, *so);
  simulate->add_option("--out", so->out, "Output netCDF file (truth_obs.nc format)")->required();
  commands.push_back({simulate, [so] { return run_simulate(*so); }});

  auto ao = std::make_shared<ExperimentOptions>();
  auto* assimilate = app.add_subcommand(
      "assimilate",
      "Run a cycling assimilation experiment (one window with cycling.cycles: 1). With no config: Lorenz-96, N=40, "
      "F=8, dt=0.05, every variable observed every 4 steps with R=I, incremental 4D-Var, 100 cycles");
  add_common(assimilate, *ao);
  assimilate->add_option("--obs", ao->obs, "Read observations (and truth) from this netCDF file instead of simulating")
      ->check(CLI::ExistingFile);
  assimilate->add_option("--background", ao->background, "Read the first background from this netCDF file")
      ->check(CLI::ExistingFile);
  assimilate->add_option("--out", ao->out, "Output netCDF file (analysis.nc format)")->required();
  assimilate->add_flag("--quiet", ao->quiet, "No per-cycle progress lines");
  assimilate->add_option("--checkpoint-every", ao->checkpoint_every,
                         "Write the run's state (records, next background) to <out>.checkpoint every N cycles; 0: "
                         "never. Removed when the analysis file is written")
      ->capture_default_str()
      ->check(CLI::Range(0, 100000000));
  assimilate->add_flag("--resume", ao->resume,
                       "Continue from <out>.checkpoint (same config, seed and inputs: the result equals an "
                       "uninterrupted run's); without a checkpoint, start at cycle 1");
  commands.push_back({assimilate, [ao] { return run_assimilate(*ao); }});
}

ExperimentConfig load_experiment_config(const std::string& path) {
  if (path.empty()) {
    ExperimentConfig c = default_experiment_config();
    c.text = default_experiment_yaml();
    return c;
  }
  std::ifstream in(path);
  if (!in) throw InvalidArgument(format_message("--config ", path, ": cannot open the file"));
  std::stringstream text;
  text << in.rdbuf();
  return parse_experiment_config(text.str(), path);
}

}  // namespace varflow::cli
