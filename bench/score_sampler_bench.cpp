// Score-head samplers against the exact two-moons posterior (seed problem 000): one score head trained
// with the default settings, then sampled by each sampler at y = -1, 0 and 1. Columns: the sd of
// A x = x1 + x2 over the exact one (importance weighting of prior draws), and the share of draws
// nearer the upper moon against the exact share; cost in network evaluations per draw.
//
//   varflow_score_sampler_bench [--pairs 6000] [--draws 20000] [--steps 200] [--seed 1001]
//                               [--samplers sde,pc,ode,heun] [--set key=value ...]
// --set applies a configuration key on top of the default setup (repeatable), e.g.
// --set score.backbone=none.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "varflow/amortized/amortized_posterior.h"
#include "varflow/amortized/score_head.h"
#include "varflow/version.h"

using namespace varflow;
using namespace varflow::amortized;

namespace {

[[noreturn]] void usage(const std::string& problem) {
  std::fprintf(stderr,
               "varflow_score_sampler_bench: %s\nusage: varflow_score_sampler_bench [--pairs 6000] [--draws 20000] "
               "[--steps 200] [--seed 1001] [--samplers sde,pc,ode,heun] [--set key=value ...]\n",
               problem.c_str());
  std::exit(2);
}

long long positive(const std::string& key, const char* text) {
  char* end = nullptr;
  const long long v = std::strtoll(text, &end, 10);
  if (end == text || *end != '\0' || v < 1) usage(key + " = '" + text + "' must be a positive integer");
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  Index pairs = 6000, draws = 20000, steps = 200;
  std::uint64_t seed = 1001;
  std::vector<Sampler> samplers = {Sampler::kSde, Sampler::kPc, Sampler::kOde, Sampler::kHeun};
  std::vector<std::pair<std::string, std::string>> overrides;
  for (int i = 1; i < argc; ++i) {
    const std::string key = argv[i];
    if (key == "--help" || key == "-h") usage("score-head samplers against the exact two-moons posterior");
    if (i + 1 >= argc) usage(key + " needs a value");
    if (key == "--samplers") {
      samplers.clear();
      std::stringstream in(argv[++i]);
      try {
        for (std::string name; std::getline(in, name, ',');) samplers.push_back(sampler_from_string(name, "--samplers"));
      } catch (const std::exception& e) {
        usage(e.what());
      }
      continue;
    }
    if (key == "--set") {
      const std::string value = argv[++i];
      const auto eq = value.find('=');
      if (eq == std::string::npos || eq == 0) usage("--set = '" + value + "' must be key=value");
      overrides.emplace_back(value.substr(0, eq), value.substr(eq + 1));
      continue;
    }
    const long long v = positive(key, argv[++i]);
    if (key == "--pairs") pairs = v;
    else if (key == "--draws") draws = v;
    else if (key == "--steps") steps = v;
    else if (key == "--seed") seed = static_cast<std::uint64_t>(v);
    else usage("unknown option " + key);
  }
  if (std::getenv("OMP_NUM_THREADS") == nullptr) nn::set_thread_count(1);
  Rng rng(seed);
  const TwoMoons problem;
  AmortizedSetup setup = default_setup("two-moons", HeadType::kScore);
  for (const auto& [k, v] : overrides) {
    try {
      apply_entry(setup, k, v, "--set");
    } catch (const std::exception& e) {
      usage(e.what());
    }
  }
  AmortizedPosterior q(setup.network, problem.shape(), rng, problem.name());
  const auto summary = q.train(problem, pairs, setup.training, rng);
  std::printf("varflow %s score sampler benchmark: two-moons, %lld pairs, seed %llu, %lld draws, %lld steps\n"
              "training: %s\n\n",
              VARFLOW_VERSION_STRING, static_cast<long long>(pairs), static_cast<unsigned long long>(seed),
              static_cast<long long>(draws), static_cast<long long>(steps), summary.brief_report().c_str());
  if (!summary.ok()) return 1;
  Rng prior_rng(seed + 1);
  const Matrix prior = TwoMoons::sample_prior(1000000, prior_rng);
  std::printf("| sampler | evals/draw | sd/exact y=-1 | y=0 | y=1 | upper share y=-1 | y=0 | y=1 | ms per 1000 draws |\n");
  std::printf("|---------|-----------:|--------------:|----:|----:|-----------------:|----:|----:|------------------:|\n");
  std::printf("| exact   |            |         1.000 | 1.000 | 1.000 |");
  for (double y : {-1.0, 0.0, 1.0}) std::printf(" %.3f |", TwoMoons::exact_summary(y, prior).upper_share);
  std::printf("                   |\n");
  const Index corrector = setup.network.score.corrector_steps;
  for (const auto& [k, v] : overrides) std::printf("--set %s = %s\n", k.c_str(), v.c_str());
  for (const Sampler sampler : samplers) {
    q.set_sampler(sampler, steps);
    double sd_ratio[3], share[3];
    const auto t0 = std::chrono::steady_clock::now();
    int k = 0;
    for (double y : {-1.0, 0.0, 1.0}) {
      const TwoMoons::Summary got = TwoMoons::sample_summary(q.sample(Vector::Constant(1, y), draws, rng));
      sd_ratio[k] = got.sd / TwoMoons::exact_summary(y, prior).sd;
      share[k++] = got.upper_share;
    }
    const double ms = 1e3 * std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() /
                      (3.0 * static_cast<double>(draws) / 1000.0);
    const Index evals = ScoreHead::network_passes(sampler, steps, corrector, setup.network.score.denoise);
    std::printf("| %-7s | %10lld | %13.3f | %.3f | %.3f | %16.3f | %.3f | %.3f | %17.1f |\n", to_string(sampler).c_str(),
                static_cast<long long>(evals), sd_ratio[0], sd_ratio[1], sd_ratio[2], share[0], share[1], share[2], ms);
    std::fflush(stdout);
  }
  return 0;
}
