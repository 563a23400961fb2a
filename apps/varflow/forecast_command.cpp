// `varflow forecast`: run a model from a perturbed rest state and print a summary.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>

#include "command.h"
#include "varflow/core/random.h"
#include "varflow/core/error.h"
#include "varflow/model/model_registry.h"
#include "varflow/model/trajectory.h"
#include "varflow/version.h"

namespace varflow::cli {

namespace {

struct ForecastOptions {
  std::string model = "lorenz96";
  std::map<std::string, double> given;  // model parameters set on the command line, by key
  varflow::Index steps = 1000;
  std::uint64_t seed = 1;
};

// The model of the registry with the parameters given on the command line (the others default);
// a parameter the model does not have, or a value against its rule, is bad input naming the flag.
varflow::ModelSpec model_spec(const ForecastOptions& o) {
  const varflow::ModelEntry& entry = varflow::find_model(o.model, "forecast");
  varflow::ModelSpec spec;
  spec.name = o.model;
  spec.parameters = varflow::ModelSpec::default_parameters(o.model);
  for (const auto& [key, value] : o.given) {
    const auto it = std::find_if(entry.options.begin(), entry.options.end(), [&](const auto& op) { return op.key == key; });
    if (it == entry.options.end()) {
      std::string keys;
      for (const auto& op : entry.options) keys += (keys.empty() ? "--" : ", --") + op.key;
      throw varflow::InvalidArgument(varflow::format_message("forecast: --", key, " is not a parameter of ", o.model,
                                                             " (its parameters: ", keys, ")"));
    }
    if (it->kind == varflow::io::NumericOption::Kind::kInteger && value != std::floor(value)) {
      throw varflow::InvalidArgument(varflow::format_message("forecast: --", key, " = ", value, " is not an integer"));
    }
    varflow::io::check_value(*it, value, "--" + key, "forecast");
    spec.parameters[key] = value;
  }
  return spec;
}

// Runs a forecast from a randomly perturbed rest state (ones when the model has none) and prints a summary.
int run_forecast(const ForecastOptions& o) {
  const varflow::ModelSpec spec = model_spec(o);
  const std::shared_ptr<const varflow::Model> model = spec.make();
  varflow::Vector x0 = spec.rest_state();
  if (x0.size() == 0) x0 = varflow::Vector::Ones(model->state_size());
  varflow::Rng rng(o.seed);
  std::printf("varflow %s forecast: %s, %lld steps, seed %llu\n", VARFLOW_VERSION_STRING, model->name().c_str(),
              static_cast<long long>(o.steps), static_cast<unsigned long long>(o.seed));
  x0 += 0.01 * rng.normal_vector(x0.size());
  const auto start = std::chrono::steady_clock::now();
  const auto traj = varflow::Trajectory::integrate(*model, x0, o.steps);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  // Time statistics over the second half of the run (after spin-up).
  double sum = 0.0, sum2 = 0.0, count = 0.0;
  for (varflow::Index k = o.steps / 2; k <= o.steps; ++k) {
    sum += traj.state(k).sum();
    sum2 += traj.state(k).squaredNorm();
    count += static_cast<double>(model->state_size());
  }
  const double mean = sum / count, sd = std::sqrt(std::max(0.0, sum2 / count - mean * mean));
  const auto& xf = traj.final_state();
  std::printf("  final state: min %.4f  max %.4f  rms %.4f\n", xf.minCoeff(), xf.maxCoeff(),
              xf.norm() / std::sqrt(static_cast<double>(xf.size())));
  std::printf("  second-half climatology: mean %.4f  standard deviation %.4f\n", mean, sd);
  std::printf("  %.3f ms for %lld steps (%.2f us per step)\n", 1e3 * seconds, static_cast<long long>(o.steps),
              1e6 * seconds / std::max<double>(1.0, static_cast<double>(o.steps)));
  return 0;
}

}  // namespace

void add_forecast_command(CLI::App& app, CommandList& commands) {
  auto o = std::make_shared<ForecastOptions>();
  auto* sub = app.add_subcommand("forecast", "Run a model forecast from a perturbed rest state and print a summary");
  sub->add_option("--model", o->model, "Model to run (the model registry):\n" + varflow::model_catalogue("  "))
      ->check(CLI::IsMember(varflow::model_names()))
      ->capture_default_str();
  // One flag per parameter key of any registered model, described per model, with its default.
  std::map<std::string, std::string> help;
  for (const auto& name : varflow::model_names()) {
    const auto& entry = varflow::find_model(name);
    for (const auto& op : entry.options) {
      help[op.key] += varflow::format_message(help[op.key].empty() ? "" : "; ", name, ": ", op.help, " (default ",
                                              op.default_value, ")");
    }
  }
  auto flags = std::make_shared<std::map<std::string, double>>();
  for (const auto& [key, text] : help) sub->add_option("--" + key, (*flags)[key], text);
  sub->add_option("--steps", o->steps, "Number of steps")->check(CLI::NonNegativeNumber)->capture_default_str();
  sub->add_option("--seed", o->seed, "Seed of the initial perturbation")->capture_default_str();
  commands.push_back({sub, [o, sub, flags] {
                        for (const auto& [key, value] : *flags) {
                          if (sub->count("--" + key) != 0) o->given[key] = value;
                        }
                        return run_forecast(*o);
                      }});
}

}  // namespace varflow::cli
