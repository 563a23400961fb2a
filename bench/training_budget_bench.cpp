// Accuracy against the simulation budget: every head trained with its default settings on the
// linear-Gaussian problem (x ~ N(0, 0.1 I_10), y = x + N(0, 0.1 I); exact posterior N(y/2, 0.05 I))
// at several numbers of simulated pairs, then compared with the exact posterior at observations
// drawn from the joint.
//
//   varflow_training_budget_bench [--pairs 1000,10000,100000] [--heads flow,gaussian,score]
//                                 [--observations 10] [--draws 10000] [--seed 901] [--set key=value ...]
//
// --set applies a configuration key on top of every head's defaults (repeatable), e.g.
// --set score.backbone=none or --set score.sampler=heun.
// Columns (one row per head and budget):
//   mean err   rms over observations and components of (sample mean - y/2) / sqrt(0.05)
//   var/0.05   average posterior variance over the exact one
//   max |corr| largest absolute correlation between two components
//   epochs, best, stop: epochs run, the epoch whose weights were kept, and why training stopped
// The Gaussian head's moments are closed form; flow and score moments come from `draws` samples
// (Monte Carlo error 1/sqrt(draws) sd in the mean). Single-threaded unless OMP_NUM_THREADS says more.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <sstream>
#include <string>
#include <vector>

#include "varflow/amortized/amortized_posterior.h"
#include "varflow/validation/gaussian_accuracy.h"
#include "varflow/version.h"

using namespace varflow;
using namespace varflow::amortized;

namespace {

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> parts;
  std::stringstream in(text);
  for (std::string part; std::getline(in, part, ',');) parts.push_back(part);
  return parts;
}

[[noreturn]] void usage(const std::string& problem) {
  std::fprintf(stderr,
               "varflow_training_budget_bench: %s\nusage: varflow_training_budget_bench [--pairs 1000,10000,100000] "
               "[--heads flow,gaussian,score] [--observations 10] [--draws 10000] [--seed 901] [--set key=value ...]\n",
               problem.c_str());
  std::exit(2);
}

long long positive(const std::string& key, const std::string& text) {
  char* end = nullptr;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (end == text.c_str() || *end != '\0' || v < 1) usage(key + " = '" + text + "' must be a positive integer");
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<Index> budgets = {1000, 10000, 100000};
  std::vector<std::string> heads = {"flow", "gaussian", "score"};
  Index observations = 10, draws = 10000;
  std::uint64_t seed = 901;
  std::vector<std::pair<std::string, std::string>> overrides;
  for (int i = 1; i < argc; ++i) {
    const std::string key = argv[i];
    if (key == "--help" || key == "-h") usage("accuracy of every head against the number of simulated pairs");
    if (i + 1 >= argc) usage(key + " needs a value");
    const std::string value = argv[++i];
    if (key == "--pairs") {
      budgets.clear();
      for (const auto& p : split(value)) budgets.push_back(positive("--pairs", p));
    } else if (key == "--heads") {
      heads = split(value);
    } else if (key == "--observations") {
      observations = positive(key, value);
    } else if (key == "--draws") {
      draws = positive(key, value);
    } else if (key == "--set") {
      const auto eq = value.find('=');
      if (eq == std::string::npos || eq == 0) usage("--set = '" + value + "' must be key=value");
      overrides.emplace_back(value.substr(0, eq), value.substr(eq + 1));
    } else if (key == "--seed") {
      seed = static_cast<std::uint64_t>(positive(key, value));
    } else {
      usage("unknown option " + key);
    }
  }
  if (std::getenv("OMP_NUM_THREADS") == nullptr) nn::set_thread_count(1);
  std::printf("varflow %s training-budget benchmark: linear-gaussian, %d thread(s), seed %llu, %lld observations, "
              "%lld draws\n\n",
              VARFLOW_VERSION_STRING, nn::thread_count(), static_cast<unsigned long long>(seed),
              static_cast<long long>(observations), static_cast<long long>(draws));
  for (const auto& [k, v] : overrides) std::printf("--set %s = %s\n", k.c_str(), v.c_str());
  std::printf("| head     |  pairs | mean err | var/0.05 | max |corr| | epochs | best | steps | batch | train s | stop |\n");
  std::printf("|----------|-------:|---------:|---------:|-----------:|-------:|-----:|------:|------:|--------:|------|\n");
  const LinearGaussian problem;
  for (const auto& head_name : heads) {
    const HeadType head = head_from_string(head_name, "--heads");
    for (const Index pairs : budgets) {
      Rng rng(seed);
      AmortizedSetup setup = default_setup("linear-gaussian", head);
      for (const auto& [k, v] : overrides) {
        try {
          apply_entry(setup, k, v, "--set");
        } catch (const std::exception& e) {
          usage(e.what());
        }
      }
      AmortizedPosterior q(setup.network, problem.shape(), rng, problem.name());
      const auto start = std::chrono::steady_clock::now();
      const auto summary = q.train(problem, pairs, setup.training, rng, {}, setup.labels);
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (!summary.ok()) {
        std::printf("| %-8s | %6lld | training failed: %s |\n", head_name.c_str(), static_cast<long long>(pairs),
                    summary.message.c_str());
        continue;
      }
      Rng test_rng(seed + 1);
      const Matrix ys = problem.simulate(observations, test_rng).y;
      GaussianAccuracy m;
      for (Index k = 0; k < ys.cols(); ++k) {
        m.add(*q.posterior(ys.col(k), draws, test_rng), problem.posterior_mean(ys.col(k)),
              problem.posterior_variance(), draws, test_rng);
      }
      std::printf("| %-8s | %6lld | %8.3f | %8.3f | %10.3f | %6lld | %4lld | %5lld | %5lld | %7.1f | %s |\n",
                  head_name.c_str(), static_cast<long long>(pairs), m.mean_error(), m.variance_ratio(),
                  m.max_correlation(), static_cast<long long>(summary.epochs_run),
                  static_cast<long long>(summary.best_epoch), static_cast<long long>(summary.steps),
                  static_cast<long long>(summary.batch_size), seconds, summary.stop_reason().c_str());
      std::fflush(stdout);
    }
  }
  return 0;
}
