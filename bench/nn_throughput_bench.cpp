// Neural-network throughput against PyTorch (design/performance.md, "Neural-network throughput"):
// training pairs per second and per-event inference latency (posterior mean + 1000 draws for one
// observation) of three networks, with a PyTorch peer (bench/nn_torch_peer.py) that builds the same
// architectures (parameter counts printed by both sides and compared) and is run alternately with
// varflow, so that load on the shared cores affects both alike:
//   flow       linear-gaussian default: MLP encoder with a linear skip, 4 affine couplings with ActNorm
//   gaussian   linear-gaussian default: MLP encoder, full-covariance Gaussian head
//   predictor  the step-5 local predictor (PredictorStepOptions::default_setup(): periodic
//              convolutions to a per-point mean and log-sd, direct diagonal Gaussian head)
// A training step is what fit() does per batch: zero the gradients, the objective's loss and its
// gradient over the batch (AmortizedPosterior::loss, the likelihood without derivative labels and
// without the oracle gain), clip the gradient norm, one AdamW step. PyTorch does the same with
// torch.optim.AdamW (weight decay on the weight matrices only), float64, torch.set_num_threads equal
// to ours. Without a python3 that imports torch the PyTorch columns say so and the rest still runs.
// --precision float32 runs varflow's training steps with float32 products (nn/precision.h) and the
// peer in float32 throughout (torch's default dtype); the latencies stay float64 on our side.
//
//   varflow_nn_throughput_bench [--threads 1,2] [--repeats 3] [--batches 200] [--seed 7] [--clock wall|cpu]
//                               [--networks flow,gaussian,predictor] [--no-peer] [--digest N]
//                               [--precision float64|float32]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "peer_process.h"
#include "varflow/amortized/amortized_posterior.h"
#include "varflow/amortized/problems.h"
#include "varflow/core/hash.h"
#include "varflow/cycle/predictor_step.h"
#include "varflow/nn/optimizer.h"
#include "varflow/nn/precision.h"
#include "varflow/nn/trainer.h"
#include "varflow/version.h"

using namespace varflow;
using namespace varflow::amortized;

namespace {

// The clock of every timing: wall time (default), or the process's CPU time (--clock cpu: all its
// threads; robust against other processes on shared cores for one-thread runs, but not a measure of
// the speed-up from more threads, whose waiting it counts as work).
bool use_cpu_clock = false;
double clock_seconds() {
  if (use_cpu_clock) {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
double seconds_since(double t0) { return clock_seconds() - t0; }

// The products' precision of the timed training steps (--precision).
nn::ProductPrecision training_precision = nn::ProductPrecision::kFloat64;

double median(std::vector<double> v) {
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

constexpr Index kChunk = 20;  // training steps per timed chunk

struct Network {
  std::string name;
  std::string problem;
  AmortizedSetup setup;
  Index batch = 0;
};

std::vector<Network> networks() {
  std::vector<Network> out;
  {
    Network n{"flow", "linear-gaussian", default_setup("linear-gaussian", HeadType::kFlow), 0};
    out.push_back(n);
  }
  {
    Network n{"gaussian", "linear-gaussian", default_setup("linear-gaussian", HeadType::kGaussian), 0};
    out.push_back(n);
  }
  {
    Network n{"predictor", "lorenz96", cycle::PredictorStepOptions::default_setup(), 0};
    n.setup.window_problem = cycle::PredictorStepOptions::default_problem();
    n.setup.network.linear_gain = LinearGain::kNone;  // a constant shift of x: no network work
    // ... and without the gain's input channel (a fixed linear map of the input, which needs the
    // gain): one input channel fewer in the first convolution than the step's network.
    n.setup.network.encoder.gain_channel = false;
    out.push_back(n);
  }
  for (Network& n : out) {
    n.setup.labels.pairs = 0;  // the likelihood alone (derivative labels add probe columns)
    const Index b = n.setup.training.batch_size;
    n.batch = b > 0 ? b : nn::batch_size_for(n.setup.pairs);
  }
  return out;
}

// The architecture for the peer, as key=value words.
std::string peer_spec(const Network& n, const ProblemShape& shape) {
  const AmortizedConfig& c = n.setup.network;
  std::ostringstream os;
  os << "d=" << shape.state_size << " obs=" << shape.obs_size << " slots=" << shape.obs_slots
     << " grid=" << shape.obs_grid << " encoder=" << to_string(c.encoder.type) << " context=" << c.encoder.context
     << " enc_width=" << c.encoder.width << " enc_depth=" << c.encoder.depth
     << " enc_skip=" << (c.encoder.linear_skip ? 1 : 0) << " channels=" << c.encoder.channels
     << " conv_layers=" << c.encoder.conv_layers << " kernel=" << c.encoder.kernel
     << " act=" << nn::to_string(c.encoder.activation) << " head=" << to_string(c.head);
  if (c.head == HeadType::kFlow) {
    os << " layers=" << c.flow.layers << " coupling=" << to_string(c.flow.coupling) << " clamp=" << c.flow.affine_clamp
       << " actnorm=" << (c.flow.actnorm ? 1 : 0) << " head_width=" << c.flow.width << " head_depth=" << c.flow.depth
       << " head_act=" << nn::to_string(c.flow.activation) << " mean_samples=" << c.mean_samples;
  } else {
    os << " covariance=" << to_string(c.gaussian.covariance) << " head_width=" << c.gaussian.width
       << " head_depth=" << c.gaussian.depth << " head_act=" << nn::to_string(c.gaussian.activation)
       << " head_skip=" << (c.gaussian.linear_skip ? 1 : 0);
  }
  os << " weight_decay=" << n.setup.training.weight_decay << " clip=" << n.setup.training.clip_norm
     << " lr=" << n.setup.training.learning_rate;
  return os.str();
}

struct Measurement {
  double pairs_per_second = std::nan("");
  double mean_ms = std::nan("");
  double draws_ms = std::nan("");
  double params = std::nan("");
};

// One network prepared for timing: trained for one short epoch (normalisation and ActNorm from the
// data), a pool of batches, and an optimizer as fit() builds it.
class VarflowCase {
 public:
  VarflowCase(const Network& n, std::uint64_t seed)
      : net_(n), rng_(seed), problem_(make_problem(n.problem, n.setup.window_problem)),
        q_(n.setup.network, problem_->shape(), rng_, problem_->name()) {
    const Index pool = 8;
    const Dataset data = problem_->simulate(std::max<Index>(pool * n.batch, 2048), rng_);
    nn::TrainingOptions warm = n.setup.training;
    warm.epochs = 1;
    warm.patience = 0;
    q_.train(data, warm, rng_);
    for (Index k = 0; k < pool; ++k) {
      Dataset b;
      b.x = data.x.middleCols(k * n.batch, n.batch);
      b.y = data.y.middleCols(k * n.batch, n.batch);
      batches_.push_back(std::move(b));
    }
    y_ = problem_->simulate(1, rng_).y.col(0);
    auto& params = q_.parameters();
    adam_ = std::make_unique<nn::AdamW>(params.size(), nn::AdamWOptions{0.9, 0.999, 1e-8, n.setup.training.weight_decay},
                                        params.decay_mask());
  }
  const ProblemShape shape() const { return problem_->shape(); }
  Index parameters() const { return q_.parameter_count(); }

  double step(Index k) {
    const nn::ScopedProductPrecision precision(training_precision);
    auto& params = q_.parameters();
    params.zero_gradients();
    const double loss = q_.loss(batches_[static_cast<std::size_t>(k % static_cast<Index>(batches_.size()))], rng_, true);
    nn::clip_gradient_norm(params.gradients(), net_.setup.training.clip_norm);
    adam_->step(params.values(), params.gradients(), 1e-4);
    return loss;
  }

  // The bits after `steps` training steps: a hash of the parameters, of the posterior mean and of 1000
  // draws for the held-out observation, and the last loss (for checking that a change to the engine
  // leaves the results unchanged).
  std::string digest(Index steps) {
    double loss = 0.0;
    for (Index k = 0; k < steps; ++k) loss = step(k);
    const Vector mean = q_.mean(y_);
    const Matrix draws = q_.sample(y_, 1000, rng_);
    const Vector flat = Eigen::Map<const Vector>(draws.data(), draws.size());
    char text[160];
    std::snprintf(text, sizeof text, "parameters %s mean %s draws %s last loss %.17g",
                  hex64(fnv1a(Vector(q_.parameters().values()))).c_str(), hex64(fnv1a(mean)).c_str(),
                  hex64(fnv1a(flat)).c_str(), loss);
    return text;
  }

  Measurement measure(Index batches) {
    Measurement m;
    m.params = static_cast<double>(parameters());
    for (Index k = 0; k < 3; ++k) step(k);  // warm-up: replicas, caches
    // The steps in chunks of kChunk; the rate of the fastest chunk (the least disturbed by other work
    // on shared cores; the peer measures the same way).
    double best = 0.0;
    for (Index k = 0; k < batches; k += kChunk) {
      const Index steps = std::min(kChunk, batches - k);
      const double t0 = clock_seconds();
      for (Index j = k; j < k + steps; ++j) step(j);
      best = std::max(best, static_cast<double>(steps * net_.batch) / seconds_since(t0));
    }
    m.pairs_per_second = best;
    m.mean_ms = latency([&] { q_.mean(y_); });
    m.draws_ms = latency([&] { q_.sample(y_, 1000, rng_); });
    return m;
  }

 private:
  template <typename F>
  static double latency(F&& f) {
    // The fastest of repeated calls over at least 0.3 s (and 5 calls), as the peer.
    f();
    f();
    Index reps = 0;
    double fastest = 1e300;
    const double start = clock_seconds();
    do {
      const double t0 = clock_seconds();
      f();
      fastest = std::min(fastest, seconds_since(t0));
      ++reps;
    } while (seconds_since(start) < 0.3 || reps < 5);
    return 1e3 * fastest;
  }
  Network net_;
  Rng rng_;
  std::unique_ptr<Simulator> problem_;
  AmortizedPosterior q_;
  std::vector<Dataset> batches_;
  Vector y_;
  std::unique_ptr<nn::AdamW> adam_;
};

Measurement run_peer(const std::string& python, const Network& n, const std::string& spec, int threads,
                     Index batches, std::uint64_t seed, std::string& torch_version, std::string& error) {
  const std::string command = python + " " + VARFLOW_SOURCE_DIR "/bench/nn_torch_peer.py --network " + n.name +
                              " --threads " + std::to_string(threads) + " --batch " + std::to_string(n.batch) +
                              " --batches " + std::to_string(batches) + " --seed " + std::to_string(seed) +
                              (use_cpu_clock ? " --clock cpu" : "") + " --dtype " +
                              nn::to_string(training_precision) + " " + spec +
                              " 2>&1";
  const std::string out = bench::command_output(command);
  Measurement m;
  std::istringstream lines(out);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("torch=missing", 0) == 0) {
      error = "torch is not importable by " + python + " (" + line + ")";
      return m;
    }
    if (line.rfind("result ", 0) != 0) continue;
    m.pairs_per_second = bench::field(line, "pairs_per_s");
    m.mean_ms = bench::field(line, "mean_ms");
    m.draws_ms = bench::field(line, "draws_ms");
    m.params = bench::field(line, "params");
    const auto at = line.find("torch=");
    if (at != std::string::npos) torch_version = line.substr(at + 6, line.find(' ', at) - at - 6);
  }
  if (std::isnan(m.pairs_per_second)) error = "the PyTorch peer printed no result: " + out.substr(0, 400);
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> threads{1, 2};
  int repeats = 3;
  Index batches = 200;
  std::uint64_t seed = 7;
  bool no_peer = false;
  std::string python = VARFLOW_TORCH_PYTHON;
  std::vector<std::string> only;
  CLI::App app{"Training pairs/s and per-event latency of the flow, Gaussian and local-conv predictor networks, "
               "varflow against PyTorch on the same architectures, batch and thread count"};
  app.add_option("--threads", threads, "thread counts, comma separated (the first is the speed-up's reference)")
      ->delimiter(',')
      ->check(CLI::Range(1, 256));
  app.add_option("--repeats", repeats, "alternated varflow/PyTorch runs per network and thread count (medians)")
      ->check(CLI::Range(1, 1000));
  app.add_option("--batches", batches, "timed training steps per run")->check(CLI::Range(1, 10000000));
  app.add_option("--seed", seed, "seed of the data and initial weights");
  app.add_option("--networks", only, "flow, gaussian, predictor (default: all), comma separated")
      ->delimiter(',')
      ->check(CLI::IsMember({"flow", "gaussian", "predictor"}));
  app.add_option("--python", python, "python3 that imports torch (default: found by CMake)");
  app.add_flag("--no-peer", no_peer, "skip the PyTorch peer");
  std::string clock = "wall";
  app.add_option("--clock", clock, "wall: elapsed time; cpu: the process's CPU time (both sides)")
      ->check(CLI::IsMember({"wall", "cpu"}));
  std::string precision = "float64";
  app.add_option("--precision", precision,
                 "products of the training steps: float64, or float32 (varflow's mixed precision; the peer in float32)")
      ->check(CLI::IsMember({"float64", "float32"}));
  Index digest_steps = 0;
  app.add_option("--digest", digest_steps,
                 "only print, per network and thread count, hashes of the parameters, mean and draws after this many "
                 "training steps (to check that results are unchanged)")
      ->check(CLI::Range(1, 1000000));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // --help exits 0; a bad option is a user error
  }

  use_cpu_clock = clock == "cpu";
  training_precision = nn::product_precision_from_string(precision, "--precision");
  if (digest_steps > 0) {
    for (const Network& n : networks()) {
      if (!only.empty() && std::find(only.begin(), only.end(), n.name) == only.end()) continue;
      for (int t : threads) {
        const nn::ScopedThreadCount scope(t);
        VarflowCase c(n, seed);
        std::printf("%-9s threads %d: %s\n", n.name.c_str(), t, c.digest(digest_steps).c_str());
      }
    }
    return 0;
  }

  std::printf("varflow %s nn throughput benchmark: threads %s, %d alternated runs of %lld training steps, seed %llu, "
              "%s clock\n",
              VARFLOW_VERSION_STRING,
              [&] {
                std::string s;
                for (int t : threads) s += (s.empty() ? "" : ",") + std::to_string(t);
                return s;
              }()
                  .c_str(),
              repeats, static_cast<long long>(batches), static_cast<unsigned long long>(seed), use_cpu_clock ? "CPU" : "wall");
  std::string torch_version = "-", peer_error = no_peer ? "skipped (--no-peer)" : "";
  if (!no_peer && python.empty()) peer_error = "no python3 that imports torch was found at configure time";

  struct Row {
    std::string network;
    int threads;
    Index params, batch;
    std::vector<double> ours_pps, peer_pps, ours_lat, peer_lat, ours_mean, ours_draws, peer_mean, peer_draws;
    double peer_params = std::nan("");
  };
  std::vector<Row> rows;
  for (const Network& n : networks()) {
    if (!only.empty() && std::find(only.begin(), only.end(), n.name) == only.end()) continue;
    std::vector<Row*> mine;
    for (int t : threads) rows.push_back(Row{n.name, t, 0, n.batch, {}, {}, {}, {}, {}, {}, {}, {}});
    for (std::size_t i = 0; i < threads.size(); ++i) mine.push_back(&rows[rows.size() - threads.size() + i]);
    std::string spec;
    for (int r = 0; r < repeats; ++r) {
      for (std::size_t i = 0; i < threads.size(); ++i) {
        Row& row = *mine[i];
        {
          const nn::ScopedThreadCount scope(threads[i]);
          VarflowCase c(n, seed);
          if (spec.empty()) spec = peer_spec(n, c.shape());
          const Measurement m = c.measure(batches);
          row.params = c.parameters();
          row.ours_pps.push_back(m.pairs_per_second);
          row.ours_mean.push_back(m.mean_ms);
          row.ours_draws.push_back(m.draws_ms);
          row.ours_lat.push_back(m.mean_ms + m.draws_ms);
        }
        if (peer_error.empty()) {
          const Measurement m = run_peer(python, n, spec, threads[i], batches, seed, torch_version, peer_error);
          if (peer_error.empty()) {
            row.peer_params = m.params;
            row.peer_pps.push_back(m.pairs_per_second);
            row.peer_mean.push_back(m.mean_ms);
            row.peer_draws.push_back(m.draws_ms);
            row.peer_lat.push_back(m.mean_ms + m.draws_ms);
          }
        }
        std::fflush(stdout);
      }
    }
  }

  std::printf("Training products: %s\nPyTorch peer: %s\n\n", nn::to_string(training_precision).c_str(),
              peer_error.empty()
                  ? ("torch " + torch_version + ", " + nn::to_string(training_precision) + ", same thread count").c_str()
                  : peer_error.c_str());
  std::printf("| network   | threads | parameters (ours/torch) | batch | train pairs/s varflow | torch   | ratio | "
              "speed-up | mean + 1000 draws ms varflow (mean, draws) | torch (mean, draws) | ratio |\n");
  std::printf("|-----------|--------:|------------------------:|------:|----------------------:|--------:|------:|"
              "---------:|-------------------------------------------:|--------------------:|------:|\n");
  std::map<std::string, double> reference;  // network -> median pairs/s at the first thread count
  for (const Row& row : rows) {
    const double ours = median(row.ours_pps), peer = median(row.peer_pps);
    if (!reference.count(row.network)) reference[row.network] = ours;
    const double lat = median(row.ours_lat), plat = median(row.peer_lat);
    char peer_params[32], peer_pps[32], ratio[32], peer_lat[64], lat_ratio[32];
    std::snprintf(peer_params, sizeof peer_params, "%s", std::isnan(row.peer_params) ? "-" : std::to_string(static_cast<long long>(row.peer_params)).c_str());
    std::snprintf(peer_pps, sizeof peer_pps, std::isnan(peer) ? "-" : "%.0f", peer);
    std::snprintf(ratio, sizeof ratio, std::isnan(peer) ? "-" : "%.2f", ours / peer);
    if (std::isnan(plat)) {
      std::snprintf(peer_lat, sizeof peer_lat, "-");
      std::snprintf(lat_ratio, sizeof lat_ratio, "-");
    } else {
      std::snprintf(peer_lat, sizeof peer_lat, "%.3f (%.3f, %.3f)", plat, median(row.peer_mean), median(row.peer_draws));
      std::snprintf(lat_ratio, sizeof lat_ratio, "%.2f", plat / lat);
    }
    std::printf("| %-9s | %7d | %11lld / %-9s | %5lld | %21.0f | %7s | %5s | %7.2fx | %20.3f (%.3f, %.3f) | %19s | %5s |\n",
                row.network.c_str(), row.threads, static_cast<long long>(row.params), peer_params,
                static_cast<long long>(row.batch), ours, peer_pps, ratio, ours / reference[row.network], lat,
                median(row.ours_mean), median(row.ours_draws), peer_lat, lat_ratio);
    if (!std::isnan(row.peer_params) && static_cast<Index>(row.peer_params) != row.params) {
      std::printf("WARNING: %s: the PyTorch network has %lld parameters, ours %lld\n", row.network.c_str(),
                  static_cast<long long>(row.peer_params), static_cast<long long>(row.params));
    }
  }
  std::printf("\nMedians of the alternated runs; in each run the fastest chunk of 20 training steps and the fastest\n"
              "call of the latencies. Training: pairs per second of zero-grad, loss and gradient over the\n"
              "batch, gradient-norm clip and AdamW step (likelihood loss). ratio = varflow / torch (> 1: varflow\n"
              "faster); speed-up: varflow pairs/s against its first thread count. Latency: one observation, the\n"
              "posterior mean (flow: average of the sampling map over mean_samples fixed draws; Gaussian: one network\n"
              "evaluation) plus 1000 draws; its ratio = torch / varflow (> 1: varflow faster).\n");
  return 0;
}
