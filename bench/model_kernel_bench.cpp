// Model kernel speed: ns per state variable per step for the forward step, the TL and the AD of
// each built-in model, at several sizes, one thread. For Lorenz-96 the same invocation also times
// the textbook Eigen RK4 (fresh vectors per stage, the implementation the fused kernels replaced)
// and a plain numpy RK4 (bench/model_kernel_numpy_peer.py, run when a python3 with numpy was found
// at configure time), and prints the ratios. Each number is the best of 5 timed runs of >= 50 ms of
// the calling thread's CPU time (CLOCK_THREAD_CPUTIME_ID; the peer uses time.thread_time), so that
// other processes sharing the cores inflate the numbers less than wall-clock time would; the runs of
// a model's forward, TL and AD alternate, so their ratios compare runs under like load.
//
// Usage: varflow_model_kernel_bench [min_ms_per_run]
#include <time.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "peer_process.h"
#include "varflow/core/random.h"
#include "varflow/model/linear_model.h"
#include "varflow/model/lorenz63.h"
#include "varflow/model/lorenz96.h"
#include "varflow/model/lorenz96_two_scale.h"
#include "varflow/nn/trainer.h"
#include "varflow/testing/reference_models.h"

namespace {

using namespace varflow;

double g_min_seconds = 0.05;

double now() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

// One timed run: ns per call of `op` divided by `n`, op repeated until >= g_min_seconds.
double ns_per_var_once(const std::function<void()>& op, Index n) {
  long long calls = 0;
  const double start = now();
  double elapsed = 0.0;
  do {
    for (int k = 0; k < 16; ++k) op();
    calls += 16;
    elapsed = now() - start;
  } while (elapsed < g_min_seconds);
  return elapsed / static_cast<double>(calls) / static_cast<double>(n) * 1e9;
}

// Best of 5 runs of ns_per_var_once, after 3 warm-up calls.
double ns_per_var(const std::function<void()>& op, Index n) {
  for (int w = 0; w < 3; ++w) op();
  double best = INFINITY;
  for (int r = 0; r < 5; ++r) best = std::min(best, ns_per_var_once(op, n));
  return best;
}

struct Timing {
  double forward, tangent, adjoint;
};

// Forward from a spun-up state (stepped in place), TL and AD about that state; the perturbations
// are reset every 16 calls so they stay finite (the copy is one pass over n, under 1% of a call).
// The runs of the three alternate (forward, TL, AD, five times; best of 5 each), so that a change of
// load on shared cores moves all three alike and their ratios less.
template <class Step, class Tangent, class Adjoint>
Timing time_model(Index n, const Vector& x0, Step step, Tangent tangent, Adjoint adjoint) {
  Rng rng(7);
  const Vector d0 = rng.normal_vector(n);
  Vector xf = x0, d = d0;
  const Vector x = x0;
  int calls = 0;
  const std::function<void()> ops[3] = {[&] { step(xf); },
                                        [&] {
                                          if (++calls % 16 == 0) d = d0;
                                          tangent(x, d);
                                        },
                                        [&] {
                                          if (++calls % 16 == 0) d = d0;
                                          adjoint(x, d);
                                        }};
  double best[3] = {INFINITY, INFINITY, INFINITY};
  for (const auto& op : ops) {
    for (int w = 0; w < 3; ++w) op();
  }
  for (int r = 0; r < 5; ++r) {
    for (int k = 0; k < 3; ++k) best[k] = std::min(best[k], ns_per_var_once(ops[k], n));
  }
  return {best[0], best[1], best[2]};
}

Timing time_model(const Model& m, const Vector& x0) {
  return time_model(
      m.state_size(), x0, [&](Vector& x) { m.step(x); }, [&](const Vector& x, Vector& d) { m.step_tangent(x, d); },
      [&](const Vector& x, Vector& a) { m.step_adjoint(x, a); });
}

Vector spun_up(const Model& m, Vector x, Index steps) {
  Rng rng(3);
  x += 0.01 * rng.normal_vector(x.size());
  for (Index k = 0; k < steps; ++k) m.step(x);
  return x;
}

// ns per variable per forward step of the numpy peer, by n; empty with a note when not run.
std::map<Index, double> numpy_peer(const std::vector<Index>& sizes, std::string& note) {
  std::map<Index, double> out;
  const std::string python = VARFLOW_NUMPY_PYTHON;
  if (python.empty()) {
    note = "numpy peer not run: no python3 with numpy at configure time";
    return out;
  }
  std::string command = python + " " + VARFLOW_SOURCE_DIR + "/bench/model_kernel_numpy_peer.py";
  for (Index n : sizes) {
    command += ' ';
    command += std::to_string(n);
  }
  std::istringstream lines(bench::command_output(command));
  for (std::string line; std::getline(lines, line);) {
    const double n = bench::field(line, "n"), ns = bench::field(line, "ns_per_var");
    if (std::isfinite(n) && std::isfinite(ns)) out[static_cast<Index>(n)] = ns;
  }
  if (out.size() != sizes.size()) {
    char text[96];
    std::snprintf(text, sizeof text, "numpy peer printed %zu of %zu sizes", out.size(), sizes.size());
    note = text;
  }
  return out;
}

void print_row(const std::string& model, Index n, const Timing& t) {
  std::printf("%-34s %8lld %9.2f %9.2f %9.2f %6.2f %6.2f\n", model.c_str(), static_cast<long long>(n), t.forward,
              t.tangent, t.adjoint, t.tangent / t.forward, t.adjoint / t.forward);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1) g_min_seconds = std::atof(argv[1]) / 1000.0;
  const std::vector<Index> sizes = {40, 4000, 400000};

  std::printf("Model kernels: ns per variable per step, one thread (thread CPU time, best of 5 runs of >= %.0f ms)\n",
              g_min_seconds * 1e3);
  std::printf("%-34s %8s %9s %9s %9s %6s %6s\n", "model", "n", "forward", "TL", "AD", "TL/fw", "AD/fw");
  std::vector<double> l96_forward;
  for (Index n : sizes) {
    const Lorenz96 m(n, 8.0, 0.05);
    const Timing t = time_model(m, spun_up(m, Vector::Constant(n, 8.0), 100));
    l96_forward.push_back(t.forward);
    print_row("lorenz96 (F=8, dt=0.05)", n, t);
  }
  {
    const Lorenz63 m;
    Vector x0(3);
    x0 << 1.0, 2.0, 20.0;
    print_row("lorenz63 (dt=0.01)", 3, time_model(m, spun_up(m, x0, 1000)));
  }
  for (auto [k, j] : {std::pair<Index, Index>{8, 32}, std::pair<Index, Index>{40, 100}}) {
    TwoScaleLorenz96Parameters p;
    p.k = k;
    p.j = j;
    const TwoScaleLorenz96 m(p);
    Vector x0 = Vector::Zero(m.state_size());
    x0.head(k).setConstant(p.forcing);
    x0(0) += 1.0;
    print_row("lorenz96_two_scale (K=" + std::to_string(k) + ", J=" + std::to_string(j) + ")", m.state_size(),
              time_model(m, spun_up(m, x0, 400)));
  }
  for (Index n : sizes) {
    const AdvectionDiffusion1D m(n, 1.0, 0.1, 0.5);
    Rng rng(5);
    print_row("advection_diffusion_1d (sparse)", n, time_model(m, rng.normal_vector(n)));
  }

  std::printf("\nLorenz-96 forward step against the textbook Eigen RK4 and a numpy RK4 (same invocation)\n");
  std::string note;
  const std::map<Index, double> numpy = numpy_peer(sizes, note);
  std::printf("%8s %9s %9s %9s %9s %9s %11s %12s\n", "n", "kernel", "textbook", "tb TL", "tb AD", "numpy",
              "textbook/k", "numpy/kernel");
  for (std::size_t s = 0; s < sizes.size(); ++s) {
    const Index n = sizes[s];
    // The textbook RK4 with Eigen expressions and fresh vectors (the pre-kernel code).
    const testing::ReferenceRk4<testing::L96Tendency> tb{{n, 8.0}, 0.05};
    const Lorenz96 m(n, 8.0, 0.05);
    const Timing t = time_model(
        n, spun_up(m, Vector::Constant(n, 8.0), 100), [&](Vector& x) { tb.step(x); },
        [&](const Vector& x, Vector& d) { tb.tangent(x, d); }, [&](const Vector& x, Vector& a) { tb.adjoint(x, a); });
    const auto it = numpy.find(n);
    const double np_ns = it == numpy.end() ? NAN : it->second;
    std::printf("%8lld %9.2f %9.2f %9.2f %9.2f %9.2f %11.1f %12.1f\n", static_cast<long long>(n), l96_forward[s],
                t.forward, t.tangent, t.adjoint, np_ns, t.forward / l96_forward[s], np_ns / l96_forward[s]);
  }
  if (!note.empty()) std::printf("%s\n", note.c_str());

  std::printf("\nBatched stepping: ns per variable per step, m states of Lorenz-96 (n = 40)\n");
  std::printf("%8s %12s %14s %8s\n", "m", "step_batch", "column loop", "ratio");
  for (Index cols : {16, 1000}) {
    const Lorenz96 m(40, 8.0, 0.05);
    Rng rng(9);
    Matrix states(40, cols);
    for (Index c = 0; c < cols; ++c) states.col(c) = spun_up(m, Vector::Constant(40, 8.0) + rng.normal_vector(40), 50);
    Matrix a = states;
    const double batch = ns_per_var([&] { m.step_batch(a); }, 40 * cols);
    Matrix b = states;
    Vector x(40);
    const double loop = ns_per_var([&] {
      for (Index c = 0; c < cols; ++c) {
        x = b.col(c);
        m.step(x);
        b.col(c) = x;
      }
    }, 40 * cols);
    std::printf("%8lld %12.2f %14.2f %8.2f\n", static_cast<long long>(cols), batch, loop, loop / batch);
  }

  // Threads: wall time, as CPU time would add the threads up; the two thread counts alternate.
  std::printf("\nBatched stepping on 1 and 2 OpenMP threads: ns per variable per step, wall time (best of 5)\n");
  std::printf("%8s %8s %12s %12s %9s\n", "n", "m", "1 thread", "2 threads", "speed-up");
  for (const auto& [n, cols] : {std::pair<Index, Index>{40, 10000}, {4000, 100}}) {
    const Lorenz96 m(n, 8.0, 0.05);
    Rng rng(10);
    Matrix states(n, cols);
    for (Index c = 0; c < cols; ++c) states.col(c) = spun_up(m, Vector::Constant(n, 8.0) + rng.normal_vector(n), 20);
    double best[2] = {INFINITY, INFINITY};
    for (int round = 0; round < 5; ++round) {
      for (int threads : {1, 2}) {
        const nn::ScopedThreadCount scoped(threads);
        Matrix a = states;
        m.step_batch(a);  // wakes the threads
        const auto start = std::chrono::steady_clock::now();
        int calls = 0;
        double seconds = 0.0;
        do {
          m.step_batch(a);
          ++calls;
          seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        } while (seconds < g_min_seconds);
        best[threads - 1] = std::min(best[threads - 1], 1e9 * seconds / (static_cast<double>(calls) * n * cols));
      }
    }
    std::printf("%8lld %8lld %12.2f %12.2f %9.2f\n", static_cast<long long>(n), static_cast<long long>(cols), best[0],
                best[1], best[0] / best[1]);
  }
  return 0;
}
