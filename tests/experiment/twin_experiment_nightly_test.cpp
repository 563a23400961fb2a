// The full default experiment (100 cycles, burn-in 20) with incremental, strong and weak 4D-Var.
// Long: label nightly.
#include <gtest/gtest.h>

#include "varflow/experiment/twin_experiment.h"

namespace varflow {
namespace {

// Thresholds as in twin_experiment_test.cpp.
constexpr double kMaxAnalysisToBackground = 0.85;
constexpr double kMaxAnalysisToObsError = 0.7;

// The full default experiment (100 cycles) and the other 4D-Var methods on it: long, nightly.
TEST(TwinExperimentNightly, DefaultExperimentAndMethodsOnLorenz96) {
  const TwinExperimentConfig c = default_twin_experiment_config();
  const TwinExperimentResult r = run_twin_experiment(c);
  std::cout << "[ measured ] " << r.summary() << "\n";
  // Filter against forecast at the same time (the window end), as in twin_experiment_test.cpp.
  EXPECT_LT(r.mean_filter_rmse, kMaxAnalysisToBackground * r.mean_forecast_rmse);
  EXPECT_LT(r.mean_filter_rmse, kMaxAnalysisToObsError * r.obs_error_std);
  EXPECT_LT(r.mean_analysis_rmse, kMaxAnalysisToObsError * r.obs_error_std);
  for (VarMethod m : {VarMethod::kStrong4DVar, VarMethod::kWeak4DVar}) {
    TwinExperimentConfig cm = c;
    cm.method = m;
    const TwinExperimentResult rm = run_twin_experiment(cm);
    std::cout << "[ measured ] " << rm.summary() << "\n";
    EXPECT_LT(rm.mean_filter_rmse, kMaxAnalysisToBackground * rm.mean_forecast_rmse);
    EXPECT_LT(rm.mean_filter_rmse, kMaxAnalysisToObsError * rm.obs_error_std);
    EXPECT_LT(rm.mean_analysis_rmse, kMaxAnalysisToObsError * rm.obs_error_std);
  }
}

}  // namespace
}  // namespace varflow
