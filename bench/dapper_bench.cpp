// DAPPER's Lorenz-96 Var4D rows (lags 1, 2, 4) and its Var3D row, from the shipped configs in
// validation/dapper/, beside the published figures and a numpy peer of the same cycling
// (bench/dapper_numpy_peer.py, run from here when a python3 with numpy was found at configure time):
//   varflow_dapper_bench [cycles]     (default: each config's own cycles; burn-in scaled to match)
// Not a test: it prints a table and exits 0 (the RMSE check is tests/experiment/dapper_nightly_test.cpp).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "peer_process.h"
#include "varflow/experiment/experiment_config.h"
#include "varflow/experiment/twin_experiment.h"

using namespace varflow;

namespace {

struct Row {
  const char* file;
  const char* label;
  double published;  // DAPPER's time-mean rmse.a
};

constexpr Row kRows[] = {{"var4d-lag1.yaml", "Var4D Lag=1 xB=0.2", 0.46},
                         {"var4d-lag2.yaml", "Var4D Lag=2 xB=0.1", 0.39},
                         {"var4d-lag4.yaml", "Var4D Lag=4 xB=0.02", 0.37},
                         {"var3d.yaml", "Var3D xB=0.02 (obs every step)", 0.41}};

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs the numpy peer; returns its output line or why it did not run.
std::string numpy_peer(const TwinExperimentConfig& e) {
  const std::string python = VARFLOW_NUMPY_PYTHON;
  if (python.empty()) return "numpy peer not run: no python3 with numpy at configure time";
  const Index lag = e.window_steps / e.obs_every_steps;
  const char* b_kind = e.b_type == BackgroundCovarianceType::kClimatological ? "climatological" : "identity";
  char command[1024];
  std::snprintf(command, sizeof command, "%s %s/bench/dapper_numpy_peer.py %lld %.17g %s %lld %lld %llu", python.c_str(),
                VARFLOW_SOURCE_DIR, static_cast<long long>(lag), e.b_variance, b_kind,
                static_cast<long long>(e.cycles), static_cast<long long>(e.burn_in),
                static_cast<unsigned long long>(e.seed));
  const std::string out = bench::command_output(command);
  return out.empty() ? "numpy peer did not start or printed nothing" : out;
}


}  // namespace

int main(int argc, char** argv) {
  const long long cycles = argc > 1 ? std::atoll(argv[1]) : 0;
  std::printf("DAPPER Lorenz-96 rows from validation/dapper/ (N = 40, F = 8, dt = 0.05, R = I)\n");
  std::printf("%-32s %9s %8s %8s %8s %7s %8s %7s %8s %10s %8s %10s\n", "row", "published", "filter", "forecast",
              "smoother", "chi2/m", "outer", "not_cv", "cycles", "ms/cycle", "numpy", "numpy_ms");
  for (const Row& row : kRows) {
    const std::string path = std::string(VARFLOW_SOURCE_DIR) + "/validation/dapper/" + row.file;
    ExperimentConfig config = parse_experiment_config(read_file(path), path);
    TwinExperimentConfig& e = config.experiment;
    if (cycles > 0) {
      e.burn_in = std::max<Index>(1, e.burn_in * cycles / e.cycles);
      e.cycles = cycles;
    }
    const TwinData data = simulate_twin_data(e);
    const auto start = std::chrono::steady_clock::now();
    const TwinExperimentResult r = run_twin_experiment(e, data);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const std::string peer = numpy_peer(e);
    std::printf("%-32s %9.2f %8.4f %8.4f %8.4f %7.3f %8.2f %7lld %8lld %10.3f %8.4f %10.3f\n", row.label, row.published,
                r.mean_filter_rmse, r.mean_forecast_rmse, r.mean_analysis_rmse, r.mean_innovations.chi2_per_obs,
                r.mean_outer_iterations, static_cast<long long>(r.cycles_not_converged),
                static_cast<long long>(e.cycles), 1e3 * seconds / static_cast<double>(e.cycles),
                bench::field(peer, "rmse_filter"), bench::field(peer, "ms_per_cycle"));
    if (peer.rfind("numpy_peer", 0) != 0) std::printf("  %s\n", peer.c_str());
  }
  // The flow-dependent hybrid B on the sakov2008 setting, against the same run with its static B.
  {
    const std::string path = std::string(VARFLOW_SOURCE_DIR) + "/validation/dapper/hybrid-sakov2008.yaml";
    ExperimentConfig config = parse_experiment_config(read_file(path), path);
    TwinExperimentConfig& e = config.experiment;
    if (cycles > 0) {
      e.burn_in = std::max<Index>(1, e.burn_in * cycles / e.cycles);
      e.cycles = cycles;
    }
    const TwinData data = simulate_twin_data(e);
    std::printf("\nsakov2008 setting (observations every step; DAPPER: EnKF 0.18-0.22, ExtKF 0.24, Var3D 0.41)\n");
    std::printf("%-40s %8s %8s %8s %8s %10s %10s\n", "B", "filter", "forecast", "spread", "chi2/m", "ms/cycle",
                "solve_ms");
    for (double weight : {0.0, e.b_hybrid_weight}) {
      TwinExperimentConfig run = e;
      run.b_hybrid_weight = weight;
      const auto start = std::chrono::steady_clock::now();
      const TwinExperimentResult r = run_twin_experiment(run, data);
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      char label[64];
      std::snprintf(label, sizeof label, weight > 0.0 ? "hybrid, w = %.2f, inflation %.2f" : "static %.2g I",
                    weight > 0.0 ? weight : run.b_variance, run.b_inflation);
      std::printf("%-40s %8.4f %8.4f %8.4f %8.3f %10.3f %10.3f\n", label, r.mean_filter_rmse, r.mean_forecast_rmse,
                  r.mean_spread, r.mean_innovations.chi2_per_obs, 1e3 * seconds / static_cast<double>(run.cycles),
                  1e3 * r.mean_seconds);
    }
  }
  std::printf("filter, forecast, smoother: time-mean RMSE after burn-in at the newest observation (analysis, background)\n"
              "and at the window start. ms/cycle: wall time of run_twin_experiment over the cycles (solves, forecasts,\n"
              "scores, innovation statistics; for the Var3D row also its climatological B, a 20000-step free run);\n"
              "the truth run is outside both timings. numpy: the peer's filter RMSE on its own truth and observation\n"
              "draws (numpy's generator), and its time per cycle (the same work, the climatology excluded).\n");
  return 0;
}
