// Incremental and strong 4D-Var with the low-rank Laplace posterior on Lorenz-96 at growing n, with
// a numpy/scipy peer (bench/scale_numpy_peer.py) solving the same windows in the same invocation:
//   varflow_scale_bench [--n 40,1000,10000,100000] [--cycles 6] [--burn-in 2] [--rank 20] [--max-basis 60]
//                       [--no-peer]
// Each (n, method) runs in a child process, so that its peak resident memory is its own (the
// `base` column is what a child holds before it starts). Times are CPU seconds of the cycling
// alone (truth simulation excluded), so that a shared machine's load does not inflate them; the peer
// reports its process CPU time the same way. Not a test: it prints a table and exits 0.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "peer_process.h"
#include "varflow/experiment/twin_experiment.h"
#include "varflow/model/lorenz96.h"
#include "varflow/var/cost.h"

using namespace varflow;

namespace {

struct Settings {
  std::vector<Index> sizes{40, 1000, 10000, 100000};
  Index cycles = 6;
  Index burn_in = 2;
  Index rank = 20;
  Index max_basis = 0;  // 0: 3 rank
  std::uint64_t seed = 1;
  bool peer = true;
};

// What a child reports through its pipe (plain data).
struct ChildResult {
  int ok = 0;
  double analysis_rmse = 0, filter_rmse = 0, spread = 0;
  double cpu_ms_per_cycle = 0, wall_ms_per_cycle = 0;
  double tl_per_cycle = 0, ad_per_cycle = 0, outer_per_cycle = 0;
  long not_converged = 0;
  double tl_sweep_us = 0, ad_sweep_us = 0;  // one sweep over the window (CPU time)
  double peak_mb = 0;
  char message[256] = {};
};

double cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

double peak_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

// The experiment at state size n: varflow's default cycling (8-step windows, every variable observed
// every 4 steps, R = I, B = 0.4 I) with Gauss-Newton outer loops (as the peer) and the rank-k
// Lanczos posterior at the MAP for both methods.
TwinExperimentConfig config_at(Index n, VarMethod method, const Settings& s) {
  TwinExperimentConfig c = default_twin_experiment_config();
  c.model = std::make_shared<Lorenz96>(n, 8.0, 0.05);
  c.truth_start = Vector::Constant(n, 8.0);
  c.truth_start[std::min<Index>(19, n - 1)] += 0.01;
  c.cycles = s.cycles;
  c.burn_in = s.burn_in;
  c.seed = s.seed;
  c.method = method;
  c.incremental.hessian = OuterHessian::kGaussNewton;
  c.incremental.posterior = PosteriorMethod::kLowRank;
  c.incremental.posterior_lanczos_vectors = 0;
  c.incremental.low_rank.rank = s.rank;
  c.incremental.low_rank.max_basis = s.max_basis;
  c.strong.posterior = PosteriorMethod::kLowRank;
  c.strong.low_rank.rank = s.rank;
  c.strong.low_rank.max_basis = s.max_basis;
  return c;
}

void write_raw(const std::filesystem::path& path, const double* data, std::size_t count) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(count * sizeof(double)));
  if (!out) throw std::runtime_error("scale bench: cannot write " + path.string());
}

std::vector<double> read_raw(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return {};
  std::vector<double> v(static_cast<std::size_t>(in.tellg()) / sizeof(double));
  in.seekg(0);
  in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(double)));
  return v;
}

// CPU seconds of one TL and one AD sweep over cycle 0's window, at its background.
void sweep_cost(const TwinExperimentConfig& c, const TwinData& data, double* tl, double* ad) {
  const FourDVarCost cost(first_window(c, data));
  const Linearization lin = cost.linearize(data.initial_background);
  Rng rng(1);
  const Vector dz = rng.normal_vector(lin.control_size());
  const Vector dy = rng.normal_vector(lin.observation_size());
  const int repeats = static_cast<int>(std::clamp<Index>(4000000 / lin.control_size(), 3, 2000));
  double sink = 0.0;
  double t0 = cpu_seconds();
  for (int i = 0; i < repeats; ++i) sink += lin.tangent(dz)[0];
  double t1 = cpu_seconds();
  for (int i = 0; i < repeats; ++i) sink += lin.adjoint(dy)[0];
  double t2 = cpu_seconds();
  *tl = (t1 - t0) / repeats;
  *ad = (t2 - t1) / repeats;
  if (sink == 42.0) std::printf(" ");  // keep the sweeps
}

// Runs in the child: the experiment, its files for the peer in `dir`, the result.
ChildResult run_child(Index n, VarMethod method, const Settings& s, const std::filesystem::path& dir) {
  ChildResult r;
  const TwinExperimentConfig c = config_at(n, method, s);
  const TwinData data = simulate_twin_data(c);
  write_raw(dir / "background.bin", data.initial_background.data(), static_cast<std::size_t>(n));
  write_raw(dir / "obs.bin", data.obs_values.data(), static_cast<std::size_t>(data.obs_values.size()));
  sweep_cost(c, data, &r.tl_sweep_us, &r.ad_sweep_us);
  r.tl_sweep_us *= 1e6;
  r.ad_sweep_us *= 1e6;
  const double start = cpu_seconds();
  const TwinExperimentResult res = run_twin_experiment(c, data);
  const double cpu = cpu_seconds() - start;
  std::vector<double> truth, analyses;
  for (const CycleRecord& rec : res.cycles) {
    const Vector& t = data.truth[static_cast<std::size_t>(rec.window_start)];
    truth.insert(truth.end(), t.data(), t.data() + n);
    analyses.insert(analyses.end(), rec.analysis.data(), rec.analysis.data() + n);
  }
  write_raw(dir / "truth.bin", truth.data(), truth.size());
  write_raw(dir / "analyses.bin", analyses.data(), analyses.size());
  double outer = 0.0;
  for (Index i = res.burn_in; i < static_cast<Index>(res.cycles.size()); ++i) {
    outer += res.cycles[static_cast<std::size_t>(i)].outer_iterations;
  }
  const double counted = static_cast<double>(c.cycles - c.burn_in);
  r.analysis_rmse = res.mean_analysis_rmse;
  r.filter_rmse = res.mean_filter_rmse;
  r.spread = res.mean_spread;
  r.cpu_ms_per_cycle = 1e3 * cpu / static_cast<double>(c.cycles);
  r.wall_ms_per_cycle = 1e3 * res.mean_seconds;
  r.tl_per_cycle = res.mean_tl_sweeps;
  r.ad_per_cycle = res.mean_ad_sweeps;
  r.outer_per_cycle = outer / counted;
  r.not_converged = static_cast<long>(res.cycles_not_converged);
  r.peak_mb = peak_mb();
  r.ok = 1;
  return r;
}

// Forks a child for run_child (or, with n = 0, an empty child: the baseline memory).
ChildResult in_child(Index n, VarMethod method, const Settings& s, const std::filesystem::path& dir) {
  int fd[2];
  if (pipe(fd) != 0) throw std::runtime_error("scale bench: pipe failed");
  std::fflush(stdout);
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("scale bench: fork failed");
  if (pid == 0) {
    close(fd[0]);
    ChildResult r;
    try {
      if (n > 0) {
        r = run_child(n, method, s, dir);
      } else {
        r.ok = 1;
        r.peak_mb = peak_mb();
      }
    } catch (const std::exception& e) {
      std::snprintf(r.message, sizeof r.message, "%s", e.what());
    }
    const ssize_t written = write(fd[1], &r, sizeof r);
    _exit(written == static_cast<ssize_t>(sizeof r) ? 0 : 1);
  }
  close(fd[1]);
  ChildResult r;
  const ssize_t got = read(fd[0], &r, sizeof r);
  close(fd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (got != static_cast<ssize_t>(sizeof r)) {
    r = ChildResult{};
    std::snprintf(r.message, sizeof r.message, "the child died (status %d)", status);
  }
  return r;
}


// Runs the peer on the child's files; returns its line (or why it did not run).
std::string run_peer(Index n, VarMethod method, const Settings& s, const std::filesystem::path& dir) {
  const std::string python = VARFLOW_NUMPY_PYTHON;
  if (python.empty()) return "peer not run: no python3 with numpy at configure time";
  const TwinExperimentConfig c = config_at(n, method, s);
  const bool strong = method == VarMethod::kStrong4DVar;
  char command[2048];
  std::snprintf(command, sizeof command,
                "OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 %s %s/bench/scale_numpy_peer.py %s %lld 8 0.05 %lld %lld "
                "%.17g %.17g %lld %lld %lld %.17g %d %.17g %s %s %s 2>&1",
                python.c_str(), VARFLOW_SOURCE_DIR, strong ? "strong" : "incremental", static_cast<long long>(n),
                static_cast<long long>(c.window_steps), static_cast<long long>(c.obs_every_steps), c.b_variance,
                c.obs_error_variance, static_cast<long long>(c.cycles), static_cast<long long>(c.burn_in),
                static_cast<long long>(s.rank),
                strong ? c.strong.gradient_tolerance : c.incremental.gradient_tolerance,
                c.incremental.max_outer_iterations, c.incremental.inner_tolerance,
                (dir / "background.bin").c_str(), (dir / "obs.bin").c_str(), (dir / "peer.bin").c_str());
  const std::string out = bench::command_output(command);
  return out.empty() ? "peer did not start or printed nothing" : out;
}

// The peer's smoother RMSE (analysis against the truth at each window start, cycles >= burn-in) and
// the largest difference between its analyses and varflow's.
void score_peer(Index n, const Settings& s, const std::filesystem::path& dir, double* rmse, double* max_diff) {
  const std::vector<double> truth = read_raw(dir / "truth.bin");
  const std::vector<double> ours = read_raw(dir / "analyses.bin");
  const std::vector<double> peer = read_raw(dir / "peer.bin");
  *rmse = *max_diff = std::nan("");
  if (peer.size() != truth.size() || ours.size() != truth.size()) return;
  double sum = 0.0, diff = 0.0;
  for (Index cycle = s.burn_in; cycle < s.cycles; ++cycle) {
    double sq = 0.0;
    for (Index i = 0; i < n; ++i) {
      const auto k = static_cast<std::size_t>(cycle * n + i);
      sq += (peer[k] - truth[k]) * (peer[k] - truth[k]);
      diff = std::max(diff, std::abs(peer[k] - ours[k]));
    }
    sum += std::sqrt(sq / static_cast<double>(n));
  }
  *rmse = sum / static_cast<double>(s.cycles - s.burn_in);
  *max_diff = diff;
}

}  // namespace

int main(int argc, char** argv) {
  Settings s;
  CLI::App app{"Incremental and strong 4D-Var with the rank-k Lanczos (Laplace) posterior on Lorenz-96 "
               "(F = 8, dt = 0.05, 8-step windows, every variable observed every 4 steps, R = I, B = 0.4 I) "
               "at growing state size n, beside a numpy/scipy peer solving the same windows."};
  app.add_option("--n", s.sizes, "state sizes, comma separated")->delimiter(',')->check(CLI::Range(8, 10000000));
  app.add_option("--cycles", s.cycles, "cycles per run")->check(CLI::Range(2, 100000));
  app.add_option("--burn-in", s.burn_in, "cycles left out of the means")->check(CLI::Range(0, 100000));
  app.add_option("--rank", s.rank, "Lanczos eigenpairs k of the low-rank posterior")->check(CLI::Range(1, 10000));
  app.add_option("--max-basis", s.max_basis,
                 "thick-restart Lanczos basis (at least rank + 2; default 3 rank; 'none': no restart)")
      ->transform(CLI::Transformer(std::map<std::string, Index>{{"none", -1}}).description(""));
  app.add_option("--seed", s.seed, "seed of the truth, observations and first background");
  bool no_peer = false;
  app.add_flag("--no-peer", no_peer, "skip the numpy/scipy peer");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // --help exits 0; a bad option is a user error
  }
  if (s.burn_in >= s.cycles) {
    std::fprintf(stderr, "varflow_scale_bench: --burn-in = %lld must be below --cycles = %lld\n",
                 static_cast<long long>(s.burn_in), static_cast<long long>(s.cycles));
    return 2;
  }
  s.peer = !no_peer;
  if (s.max_basis == 0) s.max_basis = 3 * s.rank;
  if (s.max_basis < 0) s.max_basis = 0;
  if (s.max_basis != 0 && s.max_basis < s.rank + 2) {
    std::fprintf(stderr, "varflow_scale_bench: --max-basis = %lld must be at least --rank + 2 = %lld\n",
                 static_cast<long long>(s.max_basis), static_cast<long long>(s.rank + 2));
    return 2;
  }
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("varflow_scale_bench." + std::to_string(getpid()));
  std::filesystem::create_directories(dir);

  const ChildResult base = in_child(0, VarMethod::kStrong4DVar, s, dir);
  std::printf("Lorenz-96 F = 8, dt = 0.05; 8-step windows, every variable observed every 4 steps, R = I, B = 0.4 I;\n"
              "%lld cycles (means over the last %lld), Gauss-Newton outer loops, rank-%lld Lanczos posterior (%s), seed %llu.\n"
              "ms/cycle is CPU time; sweep = one TL (AD) sweep over the window; ns/var = per variable per model step;\n"
              "peak = the child's peak resident memory (an empty child: %.1f MB); B/var = (peak - empty) / n.\n\n",
              static_cast<long long>(s.cycles), static_cast<long long>(s.cycles - s.burn_in),
              static_cast<long long>(s.rank),
              s.max_basis > 0 ? ("thick restart, " + std::to_string(s.max_basis) + " vectors").c_str() : "no restart",
              static_cast<unsigned long long>(s.seed), base.peak_mb);
  std::printf("%8s %-12s %-8s %8s %8s %7s %11s %7s %7s %6s %9s %7s %7s %9s %8s %9s %9s\n", "n", "method", "code",
              "smoother", "filter", "spread", "ms/cycle", "TL", "AD", "outer", "TL us", "TL ns/v", "AD ns/v", "peak MB",
              "B/var", "vs peer", "max|dxa|");
  for (Index n : s.sizes) {
    for (VarMethod m : {VarMethod::kIncremental4DVar, VarMethod::kStrong4DVar}) {
      const ChildResult r = in_child(n, m, s, dir);
      const std::string method = m == VarMethod::kStrong4DVar ? "strong" : "incremental";
      if (!r.ok) {
        std::printf("%8lld %-12s varflow failed: %s\n", static_cast<long long>(n), method.c_str(), r.message);
        continue;
      }
      const double steps = 8.0;
      std::printf("%8lld %-12s %-8s %8.4f %8.4f %7.4f %11.2f %7.1f %7.1f %6.2f %9.1f %7.2f %7.2f %9.1f %8.0f\n",
                  static_cast<long long>(n), method.c_str(), "varflow", r.analysis_rmse, r.filter_rmse, r.spread,
                  r.cpu_ms_per_cycle, r.tl_per_cycle, r.ad_per_cycle, r.outer_per_cycle, r.tl_sweep_us,
                  1e3 * r.tl_sweep_us / (steps * static_cast<double>(n)),
                  1e3 * r.ad_sweep_us / (steps * static_cast<double>(n)), r.peak_mb,
                  (r.peak_mb - base.peak_mb) * 1048576.0 / static_cast<double>(n));
      if (r.not_converged > 0) std::printf("%8s %ld cycles did not converge\n", "", r.not_converged);
      if (!s.peer) continue;
      const std::string line = run_peer(n, m, s, dir);
      if (line.rfind("scale_peer ", 0) != 0) {
        std::printf("%8s %-12s %s\n", "", "", line.c_str());
        continue;
      }
      double rmse = 0.0, diff = 0.0;
      score_peer(n, s, dir, &rmse, &diff);
      const double peer_ms = bench::field(line, "ms_per_cycle");
      std::printf("%8lld %-12s %-8s %8.4f %8s %7.4f %11.2f %7.1f %7.1f %6s %9s %7s %7s %9.1f %8s %8.1fx %9.2e\n",
                  static_cast<long long>(n), method.c_str(), "numpy", rmse, "", bench::field(line, "spread"), peer_ms,
                  bench::field(line, "tl_per_cycle"), bench::field(line, "ad_per_cycle"), "", "", "", "", bench::field(line, "peak_mb"), "",
                  peer_ms / r.cpu_ms_per_cycle, diff);
    }
  }
  std::filesystem::remove_all(dir);
  return 0;
}
