// Speed-up of N MPI ranks against one on the two distributed parts of varflow (design/parallel.md):
//   validate   validate_model on the lorenz96 problem: the held-out events (4D-Var oracle solve,
//              exact J at the first jacobian_cases events, fast posterior draws) and the SBC
//              simulations, with everything else validate_model does (oracle set-up, gates);
//   training   AmortizedPosterior::train for a fixed number of epochs (cosine schedule) on simulated
//              lorenz96 pairs (the simulation itself is not timed).
// Each part runs first on rank 0 alone (the serial communicator; the other ranks wait in a barrier),
// then on all ranks, from the same seed; the table gives both wall times, the speed-up and whether
// the results agree (validate: identical report numbers; training: the largest relative difference
// of the parameters, round-off of the gradient sums).
//
//   mpirun -np 2 -x OMP_NUM_THREADS=1 build/bin/varflow_parallel_bench [--events 20] [--sbc 200]
//          [--pairs 20000] [--epochs 3] [--head flow] [--seed 7]
// (as root add --allow-run-as-root). Without mpirun it runs both columns on one rank.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "varflow/amortized/amortized_posterior.h"
#include "varflow/core/communicator.h"
#include "varflow/nn/trainer.h"
#include "varflow/report/validation_report.h"
#include "varflow/version.h"

using namespace varflow;
using namespace varflow::amortized;

namespace {

[[noreturn]] void usage(const std::string& problem) {
  std::fprintf(stderr,
               "varflow_parallel_bench: %s\nusage: mpirun -np N varflow_parallel_bench [--events 20] [--sbc 200] "
               "[--pairs 20000] [--epochs 3] [--head flow|gaussian|score] [--seed 7]\n",
               problem.c_str());
  std::exit(2);
}

long long positive(const std::string& key, const char* text) {
  char* end = nullptr;
  const long long v = std::strtoll(text, &end, 10);
  if (end == text || *end != '\0' || v < 1) usage(key + " = '" + text + "' must be a positive integer");
  return v;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Times f(serial communicator, false) on rank 0 alone, then f(comm, true) on every rank.
template <typename F>
std::pair<double, double> one_then_all(const Communicator& comm, F&& f) {
  double one = 0.0;
  comm.barrier();
  if (comm.is_root()) {
    const auto t0 = std::chrono::steady_clock::now();
    f(serial_communicator(), false);
    one = seconds_since(t0);
  }
  comm.barrier();
  const auto t0 = std::chrono::steady_clock::now();
  f(comm, true);
  comm.barrier();
  return {one, seconds_since(t0)};
}

}  // namespace

int main(int argc, char** argv) {
  ProgramCommunicator job(argc, argv);
  const Communicator& comm = job.get();
  Index events = 20, sbc = 200, pairs = 20000, epochs = 3;
  std::string head = "flow";
  std::uint64_t seed = 7;
  for (int i = 1; i < argc; ++i) {
    const std::string key = argv[i];
    if (i + 1 >= argc) usage(key + " needs a value");
    const char* value = argv[++i];
    if (key == "--events") events = positive(key, value);
    else if (key == "--sbc") sbc = positive(key, value);
    else if (key == "--pairs") pairs = positive(key, value);
    else if (key == "--epochs") epochs = positive(key, value);
    else if (key == "--seed") seed = static_cast<std::uint64_t>(positive(key, value));
    else if (key == "--head") head = value;
    else usage("unknown option " + key);
  }
  if (sbc < 200) usage("--sbc must be at least 200");
  const HeadType head_type = head_from_string(head, "--head");
  AmortizedSetup setup = default_setup("lorenz96", head_type);
  const auto problem = find_problem("lorenz96").make(setup);
  const char* threads = std::getenv("OMP_NUM_THREADS");
  if (comm.is_root()) {
    std::printf("varflow %s parallel bench: %s; %s, OMP_NUM_THREADS=%s, seed %llu\n", VARFLOW_VERSION_STRING,
                problem->describe().c_str(), comm.describe().c_str(), threads ? threads : "(unset)",
                static_cast<unsigned long long>(seed));
  }

  // Training: the same pairs on every rank, a fixed budget of epochs.
  Rng data_rng(seed);
  const Dataset data = problem->simulate(pairs, data_rng);
  nn::TrainingOptions training = setup.training;
  training.schedule = nn::LearningRateSchedule::kCosine;
  training.epochs = epochs;
  Vector params_one, params_all;
  const auto [train_one, train_all] = one_then_all(comm, [&](const Communicator& c, bool all) {
    Rng rng(seed + 1);
    AmortizedPosterior q(setup.network, problem->shape(), rng, problem->name());
    q.train(data, training, rng, {}, {}, {}, c);
    (all ? params_all : params_one) = q.parameters().values();
  });
  double train_difference = 0.0;
  if (comm.is_root()) train_difference = (params_all - params_one).norm() / params_one.norm();

  // Validation of a model trained for one epoch (the cost of validation does not depend on how well
  // the model is trained).
  Rng rng(seed + 2);
  AmortizedPosterior q(setup.network, problem->shape(), rng, problem->name());
  nn::TrainingOptions brief = training;
  brief.epochs = 1;
  q.train(data, brief, rng);
  report::ValidationOptions options;
  options.events = events;
  options.gates.sbc.simulations = sbc;
  options.lorenz96 = setup.lorenz96;
  report::ValidationReport r_one, r_all;
  const auto [validate_one, validate_all] = one_then_all(comm, [&](const Communicator& c, bool all) {
    Rng v(seed + 3);
    (all ? r_all : r_one) = report::validate_model(q, options, v, {}, c);
  });
  // r_one exists on rank 0 only; the other ranks report through it.
  bool same = !comm.is_root() ||
              (r_one.decision.sbc.ranks == r_all.decision.sbc.ranks && r_one.events.size() == r_all.events.size());
  for (std::size_t e = 0; same && e < r_one.events.size(); ++e) {
    same = r_one.events[e].fast_mean == r_all.events[e].fast_mean &&
           r_one.events[e].oracle_mean == r_all.events[e].oracle_mean;
  }

  if (comm.is_root()) {
    const int n = comm.size();
    std::printf("\n%-44s %12s %12s %9s  %s\n", "part", "1 rank (s)", format_message(n, " ranks (s)").c_str(), "speed-up",
                "agreement");
    std::printf("%-44s %12.2f %12.2f %9.2f  %s\n",
                format_message("validate (", events, " events, ", sbc, " SBC simulations)").c_str(), validate_one,
                validate_all, validate_one / validate_all, same ? "identical report numbers" : "REPORTS DIFFER");
    std::printf("%-44s %12.2f %12.2f %9.2f  parameters differ by %.1e (relative)\n",
                format_message("training (", head, ", ", pairs, " pairs, ", epochs, " epochs)").c_str(), train_one,
                train_all, train_one / train_all, train_difference);
  }
  return same ? 0 : 1;
}
