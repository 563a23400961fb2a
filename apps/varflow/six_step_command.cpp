// varflow six-step: the six-step cycle on Lorenz-96 (design/cycle.md).
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>

#include "command.h"
#include "varflow/core/error.h"
#include "varflow/cycle/six_step.h"
#include "varflow/io/provenance.h"
#include "varflow/io/run_lock.h"

namespace varflow::cli {

namespace {
struct SixStepOptions {
  std::string config;
  std::uint64_t seed = 20261122;
  std::string out;
  bool fresh = false;
  bool print_config = false;
};

int run_six_step_command(const SixStepOptions& o) {
  cycle::SixStepConfig c;
  if (!o.config.empty()) {
    std::ifstream in(o.config);
    if (!in) throw InvalidArgument(format_message("--config = '", o.config, "' cannot be read"));
    std::stringstream text;
    text << in.rdbuf();
    c = cycle::SixStepConfig::from_yaml(text.str(), o.config);
  }
  c.validate();
  if (o.print_config) {
    std::cout << c.to_yaml();
    return 0;
  }
  if (o.out.empty()) throw InvalidArgument("six-step: --out is required (the directory of the run)");
  if (std::filesystem::exists(o.out) && !std::filesystem::is_directory(o.out)) {
    throw InvalidArgument("--out = '" + o.out + "' exists and is not a directory");
  }
  // Under mpirun every rank runs the cycle and rank 0 alone writes (design/parallel.md): it creates
  // the directory and holds the run lock.
  const auto& comm = communicator();
  std::optional<RunLock> lock;
  varflow::run_on_root(comm, [&] {
    std::error_code ec;
    std::filesystem::create_directories(o.out, ec);
    if (ec) throw InvalidArgument("--out = '" + o.out + "' cannot be created: " + ec.message());
    lock.emplace(o.out, RunLock::Kind::kDirectory);  // one run per output directory
  });
  std::cout << "varflow six-step: " << c.threads << " thread(s), seed " << o.seed << ", output " << o.out << "\n";
  if (comm.size() > 1) std::cout << "step 5 distributed over " << comm.describe() << "\n";
  varflow::set_run_config(c.to_yaml(), o.seed);
  cycle::SixStepRunOptions run;
  run.fresh = o.fresh;
  const auto rep = cycle::run_six_step(c, o.seed, o.out, std::cout, run, comm);
  const auto ran = rep.steps_run();
  std::cout << "\n" << rep.table() << "\nsteps computed by this run: " << ran.size() << " of " << rep.steps.size()
            << "\nwrote " << o.out << "/manifest.json and " << o.out << "/report.html\n";
  return rep.all_gates_passed() ? 0 : 1;
}
}  // namespace

void add_six_step_command(CLI::App& app, CommandList& commands) {
  auto o = std::make_shared<SixStepOptions>();
  auto* sub = app.add_subcommand(
      "six-step",
      "Run the six-step cycle on a registered model (default lorenz96; model.name: lorenz96_two_scale for the "
      "two-scale model with a closure emulator of its slow variables): (1) physics forward, (2) 4D-Var oracle on held-out windows, "
      "(3) neural emulator and its gate, (4) emulator-based analyses against the oracle, (5) amortized predictor "
      "and its three gates, (6) manifest and report. Prints a table of steps, gates and timings; writes "
      "physics.nc, oracle.nc, emulator.nc, predictor.nc, manifest.json and report.html to --out. Run again in "
      "the same --out after changing the config, and only the steps whose inputs changed (and those downstream "
      "of them) are recomputed; the others are reused from the manifest. "
      "Under mpirun, step 5 (labels, training, validation) is split over the ranks and rank 0 writes "
      "(design/parallel.md). Exit 0 when every gate passed, 1 when a gate failed or a step was skipped, 2 on bad "
      "input.");
  sub->add_option("--config", o->config,
                  "YAML config in the sections shared with `assimilate`: model (name and the model's options, "
                  "e.g. lorenz96: n, forcing, dt), observations (every_steps, stride, error_variance), background "
                  "(variance, fast_variance), cycling (window_steps); and oracle (windows), emulator (step_multiple, "
                  "train_pairs, stride, held_out, epochs, hidden, "
                  "radius, layers, learning_rate, file), predictor (the keys of `varflow train` configs plus "
                  "validation.*), threads, on_gate_failure: stop | fallback. Absent keys keep their defaults; see "
                  "design/cycle.md and --print-default");
  sub->add_option("--seed", o->seed, "Seed of every random draw")->capture_default_str();
  sub->add_option("--out", o->out, "Output directory (a previous run's manifest there enables re-use)");
  sub->add_flag("--print-default,--print-config", o->print_config,
                "Print the configuration (the defaults, with --config applied) as YAML and exit");
  sub->add_flag("--fresh", o->fresh, "Ignore the previous run in --out and compute every step");
  // The cycle is not distributed: under mpirun rank 0 runs it (and alone writes --out), the others wait.
  commands.push_back({sub, [o] { return run_six_step_command(*o); }});
}

}  // namespace varflow::cli
