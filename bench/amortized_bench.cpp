// Amortized posterior benchmark: training throughput (simulated pairs per second, forward + backward
// + optimizer step) and per-observation latency of the posterior mean and of 1000 draws, for the
// default configuration of each built-in problem and head.
//
//   varflow_amortized_bench [epochs]        (default 2 training epochs per case; OMP_NUM_THREADS applies)
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "varflow/amortized/amortized_posterior.h"
#include "varflow/version.h"

using namespace varflow;
using namespace varflow::amortized;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

struct Case {
  std::string problem;
  HeadType head;
};

}  // namespace

int main(int argc, char** argv) {
  const Index epochs = argc > 1 ? std::atol(argv[1]) : 2;
  if (epochs < 1) {
    std::fprintf(stderr, "varflow_amortized_bench: epochs = %s must be a positive integer\n", argv[1]);
    return 2;
  }
  const std::vector<Case> cases = {
      {"two-moons", HeadType::kFlow},          {"two-moons", HeadType::kScore},
      {"two-moons", HeadType::kGaussian},      {"linear-gaussian", HeadType::kFlow},
      {"linear-gaussian", HeadType::kScore},   {"linear-gaussian", HeadType::kGaussian},
      {"lorenz96", HeadType::kFlow},           {"lorenz96", HeadType::kScore},
      {"lorenz96", HeadType::kGaussian},
  };
  std::printf("varflow %s amortized benchmark: %d threads, %lld training epochs per case, default configurations\n\n",
              VARFLOW_VERSION_STRING, nn::thread_count(), static_cast<long long>(epochs));
  std::printf("| problem         | head     | parameters | train pairs/s | mean (ms) | 1000 draws (ms) |\n");
  std::printf("|-----------------|----------|-----------:|--------------:|----------:|----------------:|\n");
  for (const Case& c : cases) {
    Rng rng(2024);
    const AmortizedSetup setup = [&] {
      AmortizedSetup s = default_setup(c.problem, c.head);
      s.training.epochs = epochs;
      s.training.patience = 0;
      return s;
    }();
    const auto problem = make_problem(c.problem, setup.window_problem);
    AmortizedPosterior q(setup.network, problem->shape(), rng, problem->name());
    const Dataset data = problem->simulate(std::min<Index>(setup.pairs, 8192), rng);
    const auto summary = q.train(data, setup.training, rng);
    const Vector y = problem->simulate(1, rng).y.col(0);
    q.mean(y);  // warm-up (allocations, replicas)
    const int mean_reps = c.head == HeadType::kScore ? 3 : 20;
    auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < mean_reps; ++r) q.mean(y);
    const double mean_ms = 1e3 * seconds_since(t0) / mean_reps;
    q.sample(y, 1000, rng);
    const int sample_reps = c.head == HeadType::kScore ? 2 : 10;
    t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < sample_reps; ++r) q.sample(y, 1000, rng);
    const double sample_ms = 1e3 * seconds_since(t0) / sample_reps;
    std::printf("| %-15s | %-8s | %10lld | %13.0f | %9.3f | %15.2f |\n", c.problem.c_str(), to_string(c.head).c_str(),
                static_cast<long long>(q.parameter_count()), summary.pairs_per_second, mean_ms, sample_ms);
    std::fflush(stdout);
  }
  std::printf("\nmean: flow and score heads average the sampling map over the configuration's mean_samples fixed\n"
              "base draws (score heads integrate the probability-flow ODE for each); the Gaussian head's mean is one\n"
              "network evaluation. Throughput: training pairs per second of the epochs (forward, backward, AdamW).\n");
  return 0;
}
