// The shipped DAPPER configs (validation/dapper/) reproduce DAPPER's published Lorenz-96 rows:
// Var4D at lags 1, 2 and 4 (Bocquet & Sakov 2013, Fig. 4, as tabulated in DAPPER's
// dapper/mods/Lorenz96/sakov2008.py: 0.46, 0.39, 0.37) and Var3D (0.41), with the configs alone.
// Long (1000-2000 cycles each): label nightly.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "varflow/experiment/experiment_config.h"
#include "varflow/experiment/twin_experiment.h"

namespace varflow {
namespace {

// DAPPER prints its time means to two digits; over seeds 1-5 the varflow time means spread by about
// +-0.01, and lag 4 sits 0.015-0.02 above its figure for every seed, as DAPPER's algorithm does in the
// numpy peer (design/solvers.md). 0.03 holds both and is under half the gap between neighbouring
// rows (0.07 between lags 1 and 2): a config of the wrong lag or B fails, and so does the earlier
// cycling, which diverged on these settings (2.5-4.1).
constexpr double kTolerance = 0.03;

ExperimentConfig load(const std::string& name) {
  const std::string path = std::string(VARFLOW_SOURCE_DIR) + "/validation/dapper/" + name;
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return parse_experiment_config(text.str(), path);
}

class DapperRow : public ::testing::TestWithParam<std::pair<const char*, double>> {};

TEST_P(DapperRow, FilterRmseMatchesThePublishedFigure) {
  if (std::getenv("VARFLOW_NIGHTLY") == nullptr) GTEST_SKIP() << "long run: set VARFLOW_NIGHTLY=1 (ctest -L nightly)";
  const auto [file, published] = GetParam();
  const ExperimentConfig c = load(file);
  const TwinExperimentResult r = run_twin_experiment(c.experiment);
  std::cout << "[ measured ] " << file << ": " << r.summary() << "\n";
  EXPECT_NEAR(r.mean_filter_rmse, published, kTolerance) << file;
  EXPECT_EQ(r.cycles_failed, 0);
  // Every cycle after burn-in converges (hundreds of windows; the lag-4 windows are 16 steps long,
  // where Gauss-Newton outer loops stopped at their limit in a quarter of the cycles).
  Index not_converged = 0;
  for (const CycleRecord& rec : r.cycles) {
    if (rec.cycle >= r.burn_in && rec.termination != TerminationType::kConverged) ++not_converged;
  }
  EXPECT_EQ(not_converged, 0) << file;
}

INSTANTIATE_TEST_SUITE_P(Lorenz96, DapperRow,
                         ::testing::Values(std::make_pair("var4d-lag1.yaml", 0.46),
                                           std::make_pair("var4d-lag2.yaml", 0.39),
                                           std::make_pair("var4d-lag4.yaml", 0.37),
                                           std::make_pair("var3d.yaml", 0.41)));

// The flow-dependent hybrid B on the sakov2008 setting (observations every step) beats DAPPER's ExtKF
// row (0.24) and lands in its EnKF range (0.18-0.22), while the same run with a static B does not
// get below 0.3 (measured 0.189 and 0.337 over 1000 cycles, design/solvers.md). Its cost per cycle
// against static B is measured by varflow_dapper_bench.
TEST(DapperHybrid, FlowDependentBReachesTheEnsembleRowsWhereStaticBDoesNot) {
  if (std::getenv("VARFLOW_NIGHTLY") == nullptr) GTEST_SKIP() << "long run: set VARFLOW_NIGHTLY=1 (ctest -L nightly)";
  const ExperimentConfig c = load("hybrid-sakov2008.yaml");
  const TwinData data = simulate_twin_data(c.experiment);
  const TwinExperimentResult hybrid = run_twin_experiment(c.experiment, data);
  TwinExperimentConfig fixed = c.experiment;
  fixed.b_hybrid_weight = 0.0;
  const TwinExperimentResult static_b = run_twin_experiment(fixed, data);
  std::cout << "[ measured ] hybrid B: " << hybrid.summary() << "\n[ measured ] static B: " << static_b.summary() << "\n";
  EXPECT_LT(hybrid.mean_filter_rmse, 0.22);
  EXPECT_GT(static_b.mean_filter_rmse, 0.3);
  EXPECT_EQ(hybrid.cycles_failed, 0);
  EXPECT_GT(hybrid.mean_spread, 0.5 * hybrid.mean_analysis_rmse);  // the posterior is not collapsed
  EXPECT_LT(hybrid.mean_spread, 2.0 * hybrid.mean_analysis_rmse);
}

}  // namespace
}  // namespace varflow
