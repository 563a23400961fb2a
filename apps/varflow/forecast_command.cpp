// `varflow forecast`: run a model from a perturbed rest state and print a summary.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>

#include "command.h"
#include "varflow/core/random.h"
#include "varflow/model/lorenz63.h"
#include "varflow/model/lorenz96.h"
#include "varflow/model/trajectory.h"
#include "varflow/version.h"

namespace varflow::cli {

namespace {

struct ForecastOptions {
  std::string model = "lorenz96";
  varflow::Index n = 40;
  double forcing = 8.0;
  double dt = 0.05;
  varflow::Index steps = 1000;
  std::uint64_t seed = 1;
};

// Runs a forecast from a randomly perturbed rest state and prints a summary.
int run_forecast(const ForecastOptions& o) {
  std::unique_ptr<varflow::Model> model;
  varflow::Vector x0;
  if (o.model == "lorenz96") {
    model = std::make_unique<varflow::Lorenz96>(o.n, o.forcing, o.dt);
    x0 = varflow::Vector::Constant(o.n, o.forcing);
  } else {
    model = std::make_unique<varflow::Lorenz63>(o.dt);
    x0 = varflow::Vector::Constant(3, 1.0);
  }
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
  sub->add_option("--model", o->model, "Model to run")
      ->check(CLI::IsMember({"lorenz96", "lorenz63"}))
      ->capture_default_str();
  sub->add_option("--n", o->n, "Lorenz-96: number of variables (>= 4)")->capture_default_str();
  sub->add_option("--forcing", o->forcing, "Lorenz-96: forcing F")->capture_default_str();
  sub->add_option("--dt", o->dt, "Time step in model time units (default 0.05 = 6 h for Lorenz-96, 0.01 for Lorenz-63)");
  sub->add_option("--steps", o->steps, "Number of steps")->check(CLI::NonNegativeNumber)->capture_default_str();
  sub->add_option("--seed", o->seed, "Seed of the initial perturbation")->capture_default_str();
  commands.push_back({sub, [o, sub] {
                        if (o->model == "lorenz63" && sub->count("--dt") == 0) o->dt = 0.01;
                        return run_forecast(*o);
                      }});
}

}  // namespace varflow::cli
