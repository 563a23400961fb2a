// Speed-up of N MPI ranks against one on the two distributed parts of varflow (design/parallel.md):
//   validate   validate_model on the lorenz96 problem: the held-out events (4D-Var oracle solve,
//              exact J at the first jacobian_cases events, fast posterior draws) and the SBC
//              simulations, with everything else validate_model does (oracle set-up, gates);
//   training   AmortizedPosterior::train for a fixed number of epochs (cosine schedule) on simulated
//              lorenz96 pairs (the simulation itself is not timed);
//   labels     oracle labels (Simulator::label) of the gaussian-prior lorenz96 problem on the six-step
//              cycle's observation network: one 4D-Var MAP and the exact J on 2 directions per
//              pair, for `labels` pairs.
// Each part runs first on rank 0 alone (the serial communicator; the other ranks wait in a barrier),
// then on all ranks, from the same seed; the table gives both wall times and their ratio (the
// speed-up), the CPU time of rank 0 alone against that of the busiest rank (the division of the work,
// which other load on the machine does not change as much as it changes wall time), and whether
// the results agree (validate: identical report numbers, the event moments, SBC ranks and every
// probe error and operator-norm estimate of the Jacobian cases bit for bit, whose power iterations it
// prints; training: the largest relative difference of the parameters, round-off of the gradient sums).
//
//   mpirun -np 2 -x OMP_NUM_THREADS=1 build/bin/varflow_parallel_bench [--events 20] [--sbc 200]
//          [--pairs 20000] [--epochs 3] [--head flow] [--labels 200] [--jacobian-cases 3] [--seed 7]
// (as root add --allow-run-as-root). Without mpirun it runs both columns on one rank.
#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <string>
#include <vector>

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
               "[--pairs 20000] [--epochs 3] [--head flow|gaussian|score] [--labels 200] [--jacobian-cases 3] "
               "[--seed 7]\n",
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

double cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

struct Timing {
  double one = 0.0, all = 0.0;          // wall seconds: rank 0 alone, all ranks
  double cpu_one = 0.0, cpu_busiest = 0.0;  // CPU seconds: rank 0 alone, the busiest rank of all
};

// Times f(serial communicator, false) on rank 0 alone, then f(comm, true) on every rank.
template <typename F>
Timing one_then_all(const Communicator& comm, F&& f) {
  Timing t;
  comm.barrier();
  if (comm.is_root()) {
    const auto t0 = std::chrono::steady_clock::now();
    const double c0 = cpu_seconds();
    f(serial_communicator(), false);
    t.one = seconds_since(t0);
    t.cpu_one = cpu_seconds() - c0;
  }
  comm.barrier();
  const auto t0 = std::chrono::steady_clock::now();
  const double c0 = cpu_seconds();
  f(comm, true);
  const double mine = cpu_seconds() - c0;
  comm.barrier();
  t.all = seconds_since(t0);
  // The busiest rank's CPU time (the others' includes their wait in the last collective).
  std::vector<std::string> all = comm.allgather(std::to_string(mine));
  for (const auto& text : all) t.cpu_busiest = std::max(t.cpu_busiest, std::stod(text));
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  ProgramCommunicator job(argc, argv);
  const Communicator& comm = job.get();
  Index events = 20, sbc = 200, pairs = 20000, epochs = 3, labelled = 200, jacobian_cases = 3;
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
    else if (key == "--labels") labelled = positive(key, value);
    else if (key == "--jacobian-cases") jacobian_cases = positive(key, value);
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
  const Timing train = one_then_all(comm, [&](const Communicator& c, bool all) {
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
  options.jacobian_cases = std::min(jacobian_cases, events);
  options.gates.sbc.simulations = sbc;
  options.window_problem = setup.window_problem;
  report::ValidationReport r_one, r_all;
  const Timing validate = one_then_all(comm, [&](const Communicator& c, bool all) {
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
  // The Jacobian cases: probe errors and operator-norm estimates bit for bit.
  const auto& cases_one = r_one.decision.adjoint_calibration.jacobians;
  const auto& cases_all = r_all.decision.adjoint_calibration.jacobians;
  same = same && (!comm.is_root() || cases_one.size() == cases_all.size());
  std::string iterations;
  for (std::size_t k = 0; same && comm.is_root() && k < cases_one.size(); ++k) {
    const auto &a = cases_one[k], &b = cases_all[k];
    same = a.probe_errors == b.probe_errors && a.difference_norm.norm == b.difference_norm.norm &&
           a.difference_norm.iterations == b.difference_norm.iterations && a.oracle_norm.norm == b.oracle_norm.norm &&
           a.relative_operator_norm_difference == b.relative_operator_norm_difference;
    iterations += format_message(k == 0 ? "" : ", ", a.difference_norm.iterations);
  }

  // Oracle labels of the gaussian-prior problem (the labels' prior) on the six-step cycle's
  // observation network (window 4, every point observed at steps 0, 2, 4), 2 probes per pair.
  AmortizedSetup labelled_setup = setup;
  labelled_setup.window_problem.prior = WindowPrior::kGaussian;
  labelled_setup.window_problem.window = 4;
  labelled_setup.window_problem.obs_every = 2;
  labelled_setup.window_problem.obs_stride = 1;
  labelled_setup.window_problem.missing = 0.0;
  const auto labelled_problem = find_problem("lorenz96").make(labelled_setup);
  Rng label_data_rng(seed + 4);
  const Dataset unlabelled = labelled_problem->simulate(labelled, label_data_rng);
  Dataset labels_one = unlabelled, labels_all = unlabelled;
  const Timing labels = one_then_all(comm, [&](const Communicator& c, bool all) {
    Rng l(seed + 5);
    labelled_problem->label(all ? labels_all : labels_one, labelled, 2, l, c);
  });
  const bool same_labels = !comm.is_root() || (labels_one.labels.dx == labels_all.labels.dx &&
                                               labels_one.labels.mean == labels_all.labels.mean);
  const bool same_report = same;
  same = same && same_labels;

  if (comm.is_root()) {
    const int n = comm.size();
    std::printf("\n%-44s %10s %10s %8s %10s %10s %8s  %s\n", "part", "1 rank s", format_message(n, " ranks s").c_str(),
                "speed-up", "CPU 1 s", "CPU max s", "ratio", "agreement");
    auto row = [](const std::string& part, const Timing& t, const std::string& agreement) {
      std::printf("%-44s %10.2f %10.2f %8.2f %10.2f %10.2f %8.2f  %s\n", part.c_str(), t.one, t.all, t.one / t.all,
                  t.cpu_one, t.cpu_busiest, t.cpu_one / t.cpu_busiest, agreement.c_str());
    };
    row(format_message("validate (", events, " events, ", options.jacobian_cases, " probed, ", sbc, " SBC)"), validate,
        same_report ? "identical report numbers" : "REPORTS DIFFER");
    std::printf("  Jacobian cases: %s power iterations on J_fast - J_oracle; %lld blocks of the mean's base draws\n",
                iterations.c_str(), static_cast<long long>(q.mean_draw_blocks()));
    row(format_message("training (", head, ", ", pairs, " pairs, ", epochs, " epochs)"), train,
        format_message("parameters differ by ", train_difference, " (relative)"));
    row(format_message("labels (", labelled, " pairs: 4D-Var MAP + exact J on 2 probes)"), labels,
        same_labels ? "identical labels" : "LABELS DIFFER");
    double load[1] = {0.0};
    if (getloadavg(load, 1) == 1) std::printf("load average (1 min) at the end: %.2f on this machine\n", load[0]);
  }
  return same ? 0 : 1;
}
