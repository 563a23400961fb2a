// `varflow validate`: run the validation gates for a trained amortized model against the oracle of
// its problem and write DIR/report.json and DIR/report.html (design/report.md). Exit status 0 when
// every gate passes, 1 when one fails, 2 on bad input.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <memory>

#include "command.h"
#include "varflow/amortized/amortized_posterior.h"
#include "varflow/core/error.h"
#include "varflow/report/validation_report.h"
#include "varflow/io/provenance.h"
#include "varflow/version.h"

namespace varflow::cli {

namespace {

struct ValidateCommandOptions {
  std::string model;
  std::string config;
  std::uint64_t seed = 1;
  std::string out;
  varflow::Index events = 20;
  varflow::Index sbc_simulations = 200;
  std::string oracle_jacobian = "exact";
};

int run_validate(const ValidateCommandOptions& o) {
  using namespace varflow::amortized;
  if (std::filesystem::exists(o.out) && !std::filesystem::is_directory(o.out)) {
    throw varflow::InvalidArgument("--out = '" + o.out + "' exists and is not a directory");
  }
  varflow::report::ValidationOptions options;
  options.events = o.events;
  options.jacobian_cases = std::min<varflow::Index>(options.jacobian_cases, o.events);
  options.gates.sbc.simulations = o.sbc_simulations;
  options.window_jacobian = varflow::report::oracle_jacobian_from_string(o.oracle_jacobian, "--oracle-jacobian");
  std::fprintf(stderr, "varflow %s validate: loading %s\n", VARFLOW_VERSION_STRING, o.model.c_str());
  AmortizedPosterior q = AmortizedPosterior::load(o.model);
  // The problem the model was trained on: its definition stored in the model file; a --config may
  // repeat it but not contradict it. Files without a stored definition take the config's (or the
  // defaults).
  AmortizedSetup stored;
  apply_definition(stored, q.problem_definition(), "--model " + o.model);
  if (!o.config.empty()) {
    AmortizedSetup setup;
    load_setup_yaml(o.config, setup);
    if (q.problem_definition().empty()) {
      stored.window_problem = setup.window_problem;
    } else {
      for (const auto& [key, value] : read_setup_entries(o.config)) {
        if (!is_problem_key(key)) continue;
        // A model option of another model than the stored one has no stored value.
        const auto value_in = [&key](const AmortizedSetup& s) {
          try {
            return entry_value(s, key);
          } catch (const varflow::InvalidArgument&) {
            return std::string("(not an option of model ") + s.window_problem.model.name + ")";
          }
        };
        const std::string mine = value_in(setup), theirs = value_in(stored);
        if (mine != theirs) {
          throw varflow::InvalidArgument("--config " + o.config + ": " + key + " = " + mine +
                                         " contradicts the model file, which was trained with " + key + " = " + theirs);
        }
      }
    }
  }
  options.window_problem = stored.window_problem;
  {
    // The run's settings for report.json: the options, then the --config text.
    std::string text = varflow::format_message("model: ", o.model, "\nseed: ", o.seed, "\nevents: ", o.events,
                                               "\nsbc_simulations: ", o.sbc_simulations, "\noracle_jacobian: ",
                                               o.oracle_jacobian, "\n");
    if (!o.config.empty()) {
      std::ifstream in(o.config);
      std::stringstream file;
      file << in.rdbuf();
      text += "# --config " + o.config + "\n" + file.str();
    }
    varflow::set_run_config(text, o.seed);
  }
  std::printf("varflow %s validate: model %s, problem %s, head %s, seed %llu\n", VARFLOW_VERSION_STRING,
              o.model.c_str(), q.problem().c_str(), to_string(q.config().head).c_str(),
              static_cast<unsigned long long>(o.seed));
  std::fflush(stdout);
  varflow::Rng rng(o.seed);
  // Under mpirun the events and SBC simulations are split over the ranks (design/parallel.md); every
  // rank gets the whole report and rank 0 writes it.
  const auto& comm = communicator();
  if (comm.size() > 1) std::printf("distributed over %s\n", comm.describe().c_str());
  varflow::report::ValidationReport r =
      varflow::report::validate_model(q, options, rng, [](const std::string& line) {
        std::fprintf(stderr, "validate: %s\n", line.c_str());
        std::fflush(stderr);
      }, comm);
  r.model_path = o.model;
  varflow::run_on_root(comm, [&] { varflow::report::write_report(r, o.out); });
  const auto& d = r.decision;
  for (const varflow::Gate g : {varflow::Gate::kPosteriorAgreement, varflow::Gate::kAdjointCalibration,
                                varflow::Gate::kSimulationBasedCalibration}) {
    std::printf("%-30s %s\n", varflow::to_string(g).c_str(), d.passed(g) ? "passed" : "FAILED");
  }
  std::printf("%s; wrote %s/report.json and %s/report.html (%.1f s)\n",
              r.passed() ? "all gates passed" : "validation FAILED", o.out.c_str(), o.out.c_str(), r.seconds);
  return r.passed() ? 0 : 1;
}

}  // namespace

void add_validate_command(CLI::App& app, CommandList& commands) {
  auto o = std::make_shared<ValidateCommandOptions>();
  auto* sub = app.add_subcommand(
      "validate", "Run the validation gates for a trained model against its problem's oracle; write a report");
  sub->add_option("--model", o->model, "Model file written by varflow train")->required()->check(CLI::ExistingFile);
  sub->add_option("--config", o->config,
                  "The YAML file the model was trained with: only needed for model files that do not record their "
                  "problem (older files); a config that contradicts the recorded problem is an error")
      ->check(CLI::ExistingFile);
  sub->add_option("--seed", o->seed, "Seed of held-out events, probes and SBC simulations")->capture_default_str();
  sub->add_option("--out", o->out, "Directory for report.json and report.html (created if missing)")->required();
  sub->add_option("--events", o->events, "Held-out events for posterior agreement")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  sub->add_option("--sbc-simulations", o->sbc_simulations, "SBC simulations (at least 200 for a decision)")
      ->check(CLI::Range(200, 10000000))
      ->capture_default_str();
  sub->add_option("--oracle-jacobian", o->oracle_jacobian,
                  "lorenz96: the oracle's J, gauss-newton (ObservationSensitivity), map-differences (central "
                  "differences of the 4D-Var MAP) or exact (the derivative of the MAP by the full-Hessian sensitivity; "
                  "gauss-newton omits second-derivative terms and is 5-20% off at obs_noise 1)")
      ->check(CLI::IsMember({"gauss-newton", "map-differences", "exact"}))
      ->capture_default_str();
  commands.push_back({sub, [o] { return run_validate(*o); }});
}

}  // namespace varflow::cli
