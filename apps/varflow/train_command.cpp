// `varflow train`: simulate pairs from a registered problem (or read pairs simulated elsewhere,
// --pairs FILE.nc), train an amortized posterior, write the model (netCDF, design/formats.md) and its
// loss curves (<out>.loss.csv).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include "command.h"
#include "varflow/amortized/amortized_posterior.h"
#include "varflow/amortized/head_registry.h"
#include "varflow/amortized/pairs_file.h"
#include "varflow/core/error.h"
#include "varflow/core/hash.h"
#include "varflow/core/limits.h"
#include "varflow/io/atomic_file.h"
#include "varflow/io/options.h"
#include "varflow/io/run_lock.h"
#include "varflow/nn/trainer.h"
#include "varflow/io/provenance.h"
#include "varflow/version.h"

namespace varflow::cli {

namespace {

// Refuses (InvalidArgument) a setup whose pairs and network would not fit in memory, before any
// allocation: the pairs (state and observation, with their splits and normalised copies) and the
// dense weights with their AdamW moments and gradients.
void check_training_memory(const amortized::AmortizedSetup& setup, const amortized::ProblemShape& shape) {
  const double values = static_cast<double>(shape.state_size + shape.obs_size);
  const double pairs = 3.0 * 8.0 * values * static_cast<double>(setup.pairs);
  const double width = static_cast<double>(setup.network.encoder.width);
  const double context = static_cast<double>(setup.network.encoder.context);
  const double dense = values * width + width * width * static_cast<double>(setup.network.encoder.depth) +
                       width * context + context * static_cast<double>(shape.state_size);
  varflow::limits::check_memory(
      "train", varflow::format_message(setup.pairs, " pairs of ", shape.state_size, " + ", shape.obs_size,
                                       " values and a network of width ", setup.network.encoder.width),
      pairs + 4.0 * 8.0 * dense);
}

struct TrainOptions {
  std::string problem;
  std::string head;
  std::string pairs;                  // a count, a pairs file, or empty (the problem's count)
  varflow::Index pairs_count = 0;     // from `pairs` when it is a count
  std::string pairs_file;             // from `pairs` when it is a file
  varflow::Index epochs = 0;
  std::uint64_t seed = 1;
  std::string config;
  std::string out;
  int threads = 0;  // 0: OMP_NUM_THREADS or all cores
  bool quiet = false;
  bool print_default = false;
  varflow::Index checkpoint_every = 1;  // epochs; 0: no checkpoints
  bool resume = false;
};

void write_loss_csv(const std::filesystem::path& path, const varflow::nn::TrainingSummary& s) {
  std::ostringstream f;
  f << "epoch,train_loss,validation_loss,learning_rate\n";
  f.precision(10);
  for (std::size_t e = 0; e < s.train_loss.size(); ++e) {
    f << e + 1 << ',' << s.train_loss[e] << ',' << s.validation_loss[e] << ',' << s.learning_rate[e] << '\n';
  }
  std::ofstream out(path, std::ios::binary);
  out << f.str();
  out.flush();
  if (!out) throw varflow::Error(varflow::format_message("could not write ", path.string()));
}

// --pairs is a count of pairs to simulate or a netCDF file of pairs: digits only make a count.
void resolve_pairs_option(TrainOptions& o) {
  if (o.pairs.empty()) return;
  if (o.pairs.find_first_not_of("0123456789") == std::string::npos) {
    o.pairs_count = std::stoll(o.pairs.substr(0, 12));
    if (o.pairs.size() > 12 || o.pairs_count < 2 || o.pairs_count > 100000000) {
      throw varflow::InvalidArgument("--pairs = " + o.pairs + ": a count of pairs must be in [2, 100000000]");
    }
  } else {
    if (!std::filesystem::is_regular_file(o.pairs)) {
      throw varflow::InvalidArgument("--pairs = '" + o.pairs + "' is neither a count nor an existing pairs file");
    }
    o.pairs_file = o.pairs;
  }
}

int run_train(TrainOptions& o) {
  resolve_pairs_option(o);
  if (o.threads > 0) varflow::nn::set_thread_count(o.threads);
  using namespace varflow::amortized;
  const HeadType head = head_from_string(o.head, "--head");
  AmortizedSetup setup = default_setup(o.problem, head);
  if (!o.config.empty()) load_setup_yaml(o.config, setup);
  setup.network.head = head;  // --head wins over a config file
  if (o.pairs_count > 0) setup.pairs = o.pairs_count;
  if (o.epochs > 0) setup.training.epochs = o.epochs;
  setup.training.validate();
  setup.labels.validate();
  if (o.print_default) {
    std::printf("# varflow train --problem %s --head %s: the settings (defaults, with --config applied)\n",
                o.problem.c_str(), o.head.c_str());
    std::fputs(varflow::io::nested_yaml(setup_entries(setup)).c_str(), stdout);
    return 0;
  }
  if (o.out.empty()) throw varflow::InvalidArgument("train: --out is required (the model file to write)");
  // Under mpirun every rank trains (data parallel, design/parallel.md) and rank 0 alone locks and writes.
  const auto& comm = communicator();
  std::unique_ptr<varflow::RunLock> lock;
  varflow::run_on_root(comm, [&] {
    { varflow::AtomicOutput check(o.out); }  // fail now, not after training, if --out cannot be written
    // One run per output: a second train (or any command) on the same --out is refused.
    lock = std::make_unique<varflow::RunLock>(o.out, varflow::RunLock::Kind::kFile);
  });

  const std::string pairs_source =
      o.pairs_file.empty() ? std::string()
                           : varflow::format_message(" --pairs ", o.pairs_file, " (checksum ",
                                                     varflow::hex64(varflow::fnv1a_file(o.pairs_file)), ")");
  varflow::set_run_config(varflow::format_message("# varflow train --problem ", o.problem, " --head ", o.head,
                                                 pairs_source, "\n", varflow::io::nested_yaml(setup_entries(setup))),
                          o.seed);
  varflow::Rng rng(o.seed);
  const auto problem = find_problem(o.problem, "--problem").make(setup);
  // Pairs from a file: read and checked against the problem before anything else is allocated.
  Dataset data;
  if (!o.pairs_file.empty()) {
    data = read_pairs_file(o.pairs_file, problem->shape(), problem->name());
    setup.pairs = data.size();
  }
  check_training_memory(setup, problem->shape());
  // Before simulating and labelling: labels can cost minutes of 4D-Var solves.
  varflow::amortized::check_labels_supported(setup.network, setup.labels, problem->shape().state_size);
  AmortizedPosterior q(setup.network, problem->shape(), rng, problem->name());
  q.set_problem_definition(problem->definition());  // so that `varflow validate` needs no config
  const auto& t = setup.training;
  const std::string length =
      t.schedule == varflow::nn::LearningRateSchedule::kCosine
          ? varflow::format_message(t.epochs, " epochs (cosine schedule)")
          : varflow::format_message("until ", t.patience, " epochs pass without improvement (at least ", t.min_steps,
                                    " steps, at most ", t.epochs, " epochs)");
  std::printf("varflow %s train: %s, head %s, %lld pairs, %s, seed %llu, %d threads\n", VARFLOW_VERSION_STRING,
              problem->describe().c_str(), o.head.c_str(), static_cast<long long>(setup.pairs), length.c_str(),
              static_cast<unsigned long long>(o.seed), varflow::nn::thread_count());
  if (comm.size() > 1) std::printf("data-parallel over %s\n", comm.describe().c_str());
  if (!o.quiet) std::printf("%s\n", q.describe().c_str());
  if (o.pairs_file.empty()) {
    const auto t0 = std::chrono::steady_clock::now();
    data = problem->simulate(setup.pairs, rng);
    std::printf("simulated %lld pairs in %.2f s\n", static_cast<long long>(data.size()),
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  } else {
    std::printf("read %lld pairs from %s (checked against problem %s)\n", static_cast<long long>(data.size()),
                o.pairs_file.c_str(), problem->name().c_str());
  }
  // The pairs' oracle information: labels, variance labels, the oracle gain (each when asked).
  varflow::amortized::add_oracle_information(
      *problem, data, setup.labels, setup.network.linear_gain == varflow::amortized::LinearGain::kOracle, rng, comm,
      &std::cout, "", [&](const std::string& stage) {
        if (!comm.is_root() || o.quiet) return varflow::ItemProgress{};  // --quiet: no progress lines
        const std::string what = comm.size() > 1 ? "pairs of rank 0" : "pairs";
        return varflow::log_items_every_tenth(std::cout, stage == "labels" ? "labelled " : "variance labels: ", what);
      });
  // Checkpoints go to <out>.checkpoint (removed once the model is written). Everything before
  // training (the pairs, their labels, the initial weights) is recomputed from the seed on --resume;
  // the fingerprint ties a checkpoint to the settings that wrote it.
  const std::filesystem::path checkpoint_file = o.out + ".checkpoint";
  const std::string fingerprint = varflow::format_message(
      "varflow ", VARFLOW_VERSION_STRING, "\nproblem ", o.problem, "\nhead ", o.head, "\nseed ", o.seed, "\nthreads ",
      varflow::nn::thread_count(), comm.size() > 1 ? varflow::format_message("\nranks ", comm.size()) : std::string(),
      "\npairs ", setup.pairs, pairs_source, "\n", varflow::io::nested_yaml(setup_entries(setup)));
  varflow::nn::TrainerState resumed;
  varflow::nn::Checkpointing checkpointing;
  checkpointing.every = o.checkpoint_every;
  checkpointing.save = [&](const varflow::nn::TrainerState& st) {
    varflow::run_on_root(comm, [&] { varflow::nn::save_trainer_state(checkpoint_file, st, fingerprint); });
  };
  if (o.resume) {
    if (std::filesystem::exists(checkpoint_file)) {
      resumed = varflow::nn::load_trainer_state(checkpoint_file, fingerprint);
      checkpointing.resume = &resumed;
      std::printf("resuming from %s after epoch %lld\n", checkpoint_file.string().c_str(),
                  static_cast<long long>(resumed.epoch));
    } else {
      std::printf("no checkpoint %s: training from epoch 1\n", checkpoint_file.string().c_str());
    }
  }
  std::fflush(stdout);
  const auto summary = q.train(data, setup.training, rng, [&](const varflow::nn::EpochReport& r) {
    if (o.quiet && r.epoch != r.epochs) return;
    // Cosine schedule: the time left; plateau rule: training ends after `patience` epochs without
    // improvement (E is then the most epochs, not the expected number).
    const std::string outlook =
        r.seconds_left >= 0.0 ? varflow::format_message("~", static_cast<long long>(r.seconds_left + 0.5), " s left")
                              : varflow::format_message(r.since_best, "/", r.patience, " epochs without improvement");
    std::printf("epoch %4lld/%lld  train %10.5f  validation %10.5f%s  lr %.2e  %6.1f s, %s\n",
                static_cast<long long>(r.epoch), static_cast<long long>(r.epochs), r.train_loss, r.validation_loss,
                r.improved ? "*" : " ", r.learning_rate, r.seconds_elapsed, outlook.c_str());
    std::fflush(stdout);
  }, setup.labels, checkpointing, comm);
  std::printf("%s\n", summary.brief_report().c_str());
  if (summary.ok()) {
    std::printf("training stopped: %s\n", summary.stop_reason().c_str());
    if (summary.restored_earlier_epoch()) {  // recorded in the model file (weights_epoch)
      std::printf("restored the weights of epoch %lld (best validation loss %.6g), not those of the last epoch %lld\n",
                  static_cast<long long>(summary.weights_epoch), summary.best_validation_loss,
                  static_cast<long long>(summary.epochs_run));
    }
  }
  if (!summary.ok()) {
    // Never replace a good model with a failed one: nothing is written, an existing --out stays.
    std::fprintf(stderr, "varflow train: training failed: %s; %s was not written (try a smaller "
                 "training.learning_rate)\n", summary.message.c_str(), o.out.c_str());
    return 1;
  }
  // The model and its loss curves are committed together: a kill leaves both old or both new.
  const std::string csv = o.out + ".loss.csv";
  varflow::run_on_root(comm, [&] {
    varflow::AtomicOutput model_out(o.out), csv_out(csv);
    q.save(model_out.temporary_path());
    write_loss_csv(csv_out.temporary_path(), summary);
    varflow::AtomicOutput::commit_together({&model_out, &csv_out});
    std::error_code ignored;
    std::filesystem::remove(checkpoint_file, ignored);  // the model supersedes it
  });
  std::printf("wrote %s and %s\n", o.out.c_str(), csv.c_str());
  return 0;
}

}  // namespace

void add_train_command(CLI::App& app, CommandList& commands) {
  auto o = std::make_shared<TrainOptions>();
  auto* sub = app.add_subcommand("train", "Train an amortized posterior on pairs simulated from a registered problem, or read from a file");
  std::string problems;
  for (const auto& name : amortized::problem_names()) problems += "\n  " + name + ": " + amortized::find_problem(name).summary;
  sub->add_option("--problem", o->problem, "Inverse problem to simulate (the problem registry):" + problems)
      ->required()
      ->check(CLI::IsMember(amortized::problem_names()));
  sub->add_option("--head", o->head, "Posterior head")
      ->required()
      ->check(CLI::IsMember(varflow::amortized::head_names()));
  sub->add_option("--pairs", o->pairs,
                  "Pairs (x, y) to train on: a count to simulate from the problem (default: the problem's), or a "
                  "netCDF file of pairs simulated elsewhere (x(pair, state), y(pair, observation), optional "
                  "mask; design/formats.md). File pairs must have the shape of --problem, whose oracle "
                  "`varflow validate` then uses");
  sub->add_option("--epochs", o->epochs, "The most training epochs (default: the problem's); with the cosine schedule (training.schedule), the "
                  "number of epochs")->check(CLI::Range(1, 1000000));
  sub->add_option("--seed", o->seed, "Seed of simulation, initialisation and batches")->capture_default_str();
  sub->add_option("--config", o->config, "YAML file of network, training and problem settings (design/amortized.md)")
      ->check(CLI::ExistingFile);
  sub->add_option("--out", o->out, "Model file to write (netCDF); loss curves go to <out>.loss.csv (required to train)");
  sub->add_flag("--print-default", o->print_default,
                "Print the settings of --problem and --head (with --config applied) as a config and exit");
  sub->add_flag("--quiet", o->quiet, "Only the first and last lines");
  sub->add_option("--checkpoint-every", o->checkpoint_every,
                  "Write the training state (weights, optimizer, random generator, epoch) to <out>.checkpoint every "
                  "N epochs; 0: never. Removed when the model is written")
      ->capture_default_str()
      ->check(CLI::Range(0, 1000000));
  sub->add_flag("--resume", o->resume,
                "Continue from <out>.checkpoint (same settings, seed and threads: the result is bit-identical to an "
                "uninterrupted run); without a checkpoint, train from epoch 1");
  sub->add_option("--threads", o->threads, "OpenMP threads (default: OMP_NUM_THREADS, else all cores)")
      ->check(CLI::Range(1, 4096));
  commands.push_back({sub, [o] { return run_train(*o); }});
}

}  // namespace varflow::cli
