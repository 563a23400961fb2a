// Cycling with window length and shift: which observations a window assimilates (both ends, new /
// all / newest), the filter, forecast and smoother scores, the per-cycle states, the climatological
// B, and the innovation statistics against their expectation.
#include <gtest/gtest.h>

#include <unistd.h>

#include <Eigen/Cholesky>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "varflow/core/error.h"
#include "varflow/covariance/covariances.h"
#include "varflow/experiment/experiment_config.h"
#include "varflow/experiment/twin_experiment.h"
#include "varflow/model/linear_model.h"
#include "varflow/obs/operators.h"
#include "varflow/testing/conformance.h"
#include "varflow/var/incremental_4dvar.h"

namespace varflow {
namespace {

TwinExperimentConfig small(ObservationSelection selection, Index window, Index shift) {
  TwinExperimentConfig c = default_twin_experiment_config();
  c.cycles = 6;
  c.burn_in = 1;
  c.window_steps = window;
  c.shift_steps = shift;
  c.assimilate = selection;
  c.incremental.posterior_lanczos_vectors = 0;
  return c;
}

// Observations every 4 steps, all 40 variables: count = 40 x (assimilated times).
Index times(const CycleRecord& r) { return r.innovations.count / 40; }

TEST(CyclingWindows, ObservationsAtBothEndsAreAssimilatedOnceWithBackToBackWindows) {
  const TwinExperimentResult r = run_twin_experiment(small(ObservationSelection::kNew, 8, 8));
  ASSERT_EQ(r.cycles.size(), 6u);
  EXPECT_EQ(times(r.cycles[0]), 3);  // steps 0, 4, 8
  for (std::size_t i = 1; i < r.cycles.size(); ++i) {
    EXPECT_EQ(r.cycles[i].window_start, 8 * static_cast<Index>(i));
    EXPECT_EQ(times(r.cycles[i]), 2);  // 8i + 4 and the window end 8i + 8; 8i was cycle i - 1's end
    EXPECT_EQ(r.cycles[i].filter_step, 8 * static_cast<Index>(i) + 8);
  }
}

TEST(CyclingWindows, OverlappingWindowsAssimilateAllNewOrNewestObservations) {
  // Windows of 16 steps shifted by 4: five observation times inside each.
  const TwinExperimentResult all = run_twin_experiment(small(ObservationSelection::kAll, 16, 4));
  const TwinExperimentResult newest = run_twin_experiment(small(ObservationSelection::kNewest, 16, 4));
  const TwinExperimentResult fresh = run_twin_experiment(small(ObservationSelection::kNew, 16, 4));
  const TwinExperimentConfig config = small(ObservationSelection::kNew, 16, 4);  // owns the model
  const Model& model = *config.model;
  for (std::size_t i = 0; i < 6; ++i) {
    const Index t0 = 4 * static_cast<Index>(i);
    EXPECT_EQ(all.cycles[i].window_start, t0);
    EXPECT_EQ(times(all.cycles[i]), 5);
    EXPECT_EQ(times(newest.cycles[i]), 1);
    EXPECT_EQ(times(fresh.cycles[i]), i == 0 ? 5 : 1);
    for (const TwinExperimentResult* r : {&all, &newest, &fresh}) {
      const CycleRecord& c = r->cycles[i];
      EXPECT_EQ(c.filter_step, t0 + 16);
      ASSERT_EQ(c.analysis.size(), 40);
      ASSERT_EQ(c.filter_analysis.size(), 40);
      ASSERT_EQ(c.forecast.size(), 40);
      ASSERT_EQ(c.background.size(), 40);
      // The next background is this analysis forecast over the shift (4 steps).
      if (i + 1 < 6) {
        Vector x = c.analysis;
        for (int k = 0; k < 4; ++k) model.step(x);
        EXPECT_LT((x - r->cycles[i + 1].background).norm(), 1e-12 * x.norm());
      }
    }
  }
}

TEST(CyclingWindows, FilterScoreIsAtTheNewestObservationAndTheSmootherAtTheWindowStart) {
  TwinExperimentConfig c = small(ObservationSelection::kNewest, 8, 4);
  const TwinData d = simulate_twin_data(c);
  const TwinExperimentResult r = run_twin_experiment(c, d);
  for (const CycleRecord& rec : r.cycles) {
    const Vector& t0 = d.truth[static_cast<std::size_t>(rec.window_start)];
    const Vector& tf = d.truth[static_cast<std::size_t>(rec.filter_step)];
    EXPECT_NEAR(rec.analysis_rmse, std::sqrt((rec.analysis - t0).squaredNorm() / 40.0), 1e-12);
    EXPECT_NEAR(rec.filter_rmse, std::sqrt((rec.filter_analysis - tf).squaredNorm() / 40.0), 1e-12);
    EXPECT_NEAR(rec.forecast_rmse, std::sqrt((rec.forecast - tf).squaredNorm() / 40.0), 1e-12);
    Vector x = rec.analysis;
    for (Index k = rec.window_start; k < rec.filter_step; ++k) c.model->step(x);
    EXPECT_LT((x - rec.filter_analysis).norm(), 1e-12 * x.norm());
  }
  EXPECT_LT(r.mean_filter_rmse, r.mean_forecast_rmse);
}

TEST(CyclingWindows, ThreeDVarIsAZeroLengthWindowAndOldThreeDVarConfigsSayWhatChanged) {
  TwinExperimentConfig c = small(ObservationSelection::kNew, 0, 4);
  c.method = VarMethod::k3DVar;
  const TwinExperimentResult r = run_twin_experiment(c);
  for (const CycleRecord& rec : r.cycles) {
    EXPECT_EQ(times(rec), 1);
    EXPECT_EQ(rec.filter_step, rec.window_start);
    EXPECT_EQ(rec.filter_rmse, rec.analysis_rmse);
  }
  try {
    parse_experiment_config("method: 3dvar\ncycling:\n  window_steps: 4\n", "old.yaml");
    ADD_FAILURE() << "an old 3dvar config was accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("config: cycling.window_steps = 4 must be 0 for method 3dvar"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("window_steps: 0 and shift_steps: 4"), std::string::npos) << e.what();
  }
  TwinExperimentConfig zero = c;
  zero.method = VarMethod::kIncremental4DVar;
  zero.shift_steps = 0;
  EXPECT_THROW(zero.validate(), InvalidArgument);  // shift 0 means the window, here 0
}

TEST(CyclingWindows, NewKeysReadPrintAndRefuseBadValues) {
  const ExperimentConfig c = parse_experiment_config(
      "cycling:\n  window_steps: 16\n  shift_steps: 4\n  assimilate: newest\n"
      "background:\n  covariance: climatological\n  variance: 0.02\n  climatology_steps: 500\n",
      "t.yaml");
  EXPECT_EQ(c.experiment.window_steps, 16);
  EXPECT_EQ(c.experiment.shift(), 4);
  EXPECT_EQ(c.experiment.assimilate, ObservationSelection::kNewest);
  EXPECT_EQ(c.experiment.b_type, BackgroundCovarianceType::kClimatological);
  EXPECT_EQ(c.experiment.climatology_steps, 500);
  const std::string yaml = to_yaml(c);
  const ExperimentConfig back = parse_experiment_config(yaml, "back.yaml");
  EXPECT_EQ(to_yaml(back), yaml);
  const std::string printed = default_experiment_yaml();
  for (const char* key : {"shift_steps: 8", "assimilate: new", "climatological"}) {
    EXPECT_NE(printed.find(key), std::string::npos) << key;
  }
  // An old config without shift_steps keeps back-to-back windows.
  EXPECT_EQ(parse_experiment_config("cycling:\n  window_steps: 12\n", "t").experiment.shift(), 12);
  auto refused = [](const std::string& text, const std::string& fragment) {
    try {
      parse_experiment_config(text, "t.yaml");
      ADD_FAILURE() << "accepted: " << text;
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  refused("cycling:\n  shift_steps: 0\n", "cycling.shift_steps = 0 must be at least 1");
  refused("cycling:\n  window_steps: -1\n", "cycling.window_steps = -1 must be at least 0");
  refused("cycling:\n  assimilate: latest\n", "cycling.assimilate = 'latest' is not one of: new, all, newest");
  refused("background:\n  covariance: climatological\n  climatology_steps: 10\n",
          "background.climatology_steps = 10 must be at least 80");
  refused("background:\n  climatology_steps: 1000\n", "climatology_steps");  // only with climatological B
}

TEST(CyclingWindows, ClimatologicalBIsTheVarianceTimesTheSampleCovarianceOfAFreeRun) {
  TwinExperimentConfig c = small(ObservationSelection::kNew, 8, 8);
  c.b_type = BackgroundCovarianceType::kClimatological;
  c.b_variance = 0.05;
  c.climatology_steps = 4000;
  const TwinExperimentResult r = run_twin_experiment(c);
  EXPECT_TRUE(std::isfinite(r.mean_filter_rmse)) << r.summary();
  EXPECT_EQ(r.cycles_failed, 0);
  // Lorenz-96 (F = 8) climate: variance ~13 per variable, so 0.05 x climate ~ 0.65 I on the diagonal.
  // The prior spread without observations would be sqrt(0.65); the posterior must be below it.
  EXPECT_LT(r.mean_spread, std::sqrt(0.05 * 13.0));
}

// The hybrid B of the next window is (1 - w) B + w r^2 M P_a M^T: on a linear model with H = I the
// second cycle's analysis is the BLUE with that B, computed here in closed form.
TEST(CyclingWindows, HybridBIsTheStaticBBlendedWithThePropagatedPosterior) {
  const Index n = 4;
  Matrix a = 0.9 * Matrix::Identity(n, n);
  for (Index i = 0; i + 1 < n; ++i) a(i, i + 1) = 0.2;
  TwinExperimentConfig c;
  c.model = std::make_shared<LinearModel>(a);
  c.method = VarMethod::k3DVar;
  c.window_steps = 0;
  c.shift_steps = 1;
  c.obs_every_steps = 1;
  c.cycles = 2;
  c.burn_in = 0;
  c.b_variance = 0.5;
  c.b_hybrid_weight = 0.6;
  c.b_inflation = 1.2;
  c.incremental.posterior = PosteriorMethod::kDense;
  c.incremental.inner_tolerance = 1e-12;
  c.incremental.gradient_tolerance = 1e-12;
  Rng rng = testing::seeded_rng(4242);
  TwinData d;
  d.observed_variables = {0, 1, 2, 3};
  d.obs_error_variance = Vector::Constant(n, 0.3);
  d.obs_steps = {0, 1};
  d.obs_values.resize(n, 2);
  d.obs_values.col(0) = rng.normal_vector(n);
  d.obs_values.col(1) = rng.normal_vector(n);
  d.obs_mask.setConstant(n, 2, true);
  d.initial_background = rng.normal_vector(n);
  const TwinExperimentResult r = run_twin_experiment(c, d);
  ASSERT_EQ(r.cycles.size(), 2u);
  const Matrix b = 0.5 * Matrix::Identity(n, n), rr = 0.3 * Matrix::Identity(n, n);
  auto blue = [&](const Vector& xb, const Matrix& bm, const Vector& y) {
    return Vector(xb + bm * (bm + rr).ldlt().solve(y - xb));
  };
  const Vector xa0 = blue(d.initial_background, b, d.obs_values.col(0));
  const Matrix pa0 = b - b * (b + rr).ldlt().solve(b);
  const Matrix b1 = 0.4 * b + 0.6 * 1.44 * a * pa0 * a.transpose();
  const Vector xa1 = blue(a * xa0, b1, d.obs_values.col(1));
  EXPECT_LT((r.cycles[0].analysis - xa0).norm(), 1e-10 * xa0.norm());
  EXPECT_LT((r.cycles[1].background - a * xa0).norm(), 1e-10 * xa0.norm());
  EXPECT_LT((r.cycles[1].analysis - xa1).norm(), 1e-9 * xa1.norm()) << r.cycles[1].analysis.transpose() << "\n"
                                                                   << xa1.transpose();
  // The static-B analysis differs: the check above can fail.
  EXPECT_GT((blue(a * xa0, b, d.obs_values.col(1)) - xa1).norm(), 1e-3);
  // Keys and refusals.
  auto refused = [](const std::string& text, const std::string& fragment) {
    try {
      parse_experiment_config(text, "t.yaml");
      ADD_FAILURE() << "accepted: " << text;
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  refused("background:\n  hybrid_weight: 1\n", "config: background.hybrid_weight = 1 must be in [0, 1)");
  refused("background:\n  inflation: 0\n", "config: background.inflation = 0 must be positive");
  refused("background:\n  hybrid_weight: 0.5\nincremental:\n  posterior: none\n",
          "b_hybrid_weight = 0.5 needs a posterior, but the incremental_4dvar posterior is none");
  const ExperimentConfig h = parse_experiment_config("background:\n  hybrid_weight: 0.9\n  inflation: 1.05\n", "h");
  EXPECT_EQ(h.experiment.b_hybrid_weight, 0.9);
  EXPECT_EQ(h.experiment.b_inflation, 1.05);
  EXPECT_NE(to_yaml(h).find("hybrid_weight: 0.9"), std::string::npos);
}

// A linear Gaussian window with the true B and R: E[2 J_min / m] = 1.
// Over 400 independent windows (m = 12 each) the mean has a standard error of about
// sqrt(2 / (12 * 400)) ~ 0.02; 0.08 is four of them. With R four times too small or too large it moves
// far off (measured ~3 and ~0.3).
TEST(CyclingWindows, InnovationStatisticsMeetTheirExpectationOnlyWithTheRightCovariances) {
  Rng rng = testing::seeded_rng(9101);
  const Index n = 6;
  Matrix a = Matrix::Identity(n, n);
  for (Index i = 0; i + 1 < n; ++i) a(i, i + 1) = 0.3;
  auto model = std::make_shared<LinearModel>(a);
  auto op = std::make_shared<SubsetObservation>(n, std::vector<Index>{0, 2, 4});
  auto b = std::make_shared<DiagonalCovariance>(Vector::Constant(n, 0.5));
  auto run = [&](double r_true, double r_assumed) {
    auto r = std::make_shared<DiagonalCovariance>(Vector::Constant(3, r_assumed));
    double chi2 = 0.0;
    const int windows = 400;
    for (int k = 0; k < windows; ++k) {
      AssimilationWindow w;
      w.background = rng.normal_vector(n);
      const Vector truth = w.background + std::sqrt(0.5) * rng.normal_vector(n);
      w.b = b;
      w.model = model;
      w.steps = 3;
      Vector x = truth;
      for (Index s = 0; s <= 3; ++s) {
        if (s > 0) model->step(x);
        Observations o;
        o.step = s;
        Vector hx;
        op->apply(x, hx);
        o.values = hx + std::sqrt(r_true) * rng.normal_vector(3);
        o.op = op;
        o.r = r;
        w.observations.push_back(o);
      }
      GaussNewtonOptions g;
      g.posterior = PosteriorMethod::kNone;
      SolverSummary summary;
      const VarResult res = IncrementalFourDVar(g).solve(w, &summary);
      const InnovationStatistics s = innovation_statistics(w, res.analysis, summary.final_cost);
      EXPECT_EQ(s.count, 12);
      chi2 += s.chi2_per_obs / windows;
      EXPECT_LT(s.oma_rms, s.omb_rms);
    }
    return chi2;
  };
  const double right = run(1.0, 1.0);
  std::cout << "[ measured ] correct B, R: chi2/m " << right << "\n";
  EXPECT_NEAR(right, 1.0, 0.08);
  const double wrong = run(1.0, 0.25);
  std::cout << "[ measured ] R assumed 4x too small: chi2/m " << wrong << "\n";
  EXPECT_GT(wrong, 1.5);
  const double wide = run(1.0, 4.0);
  std::cout << "[ measured ] R assumed 4x too large: chi2/m " << wide << "\n";
  EXPECT_LT(wide, 0.6);
}

}  // namespace
}  // namespace varflow

namespace varflow {
namespace {

// Everything a resumed run must reproduce, bit for bit (the wall times aside).
void expect_same_records(const TwinExperimentResult& a, const TwinExperimentResult& b) {
  ASSERT_EQ(a.cycles.size(), b.cycles.size());
  for (std::size_t i = 0; i < a.cycles.size(); ++i) {
    const CycleRecord &x = a.cycles[i], &y = b.cycles[i];
    EXPECT_EQ(x.analysis, y.analysis) << "cycle " << i;
    EXPECT_EQ(x.background, y.background) << "cycle " << i;
    EXPECT_EQ(x.filter_analysis, y.filter_analysis) << "cycle " << i;
    EXPECT_EQ(x.forecast, y.forecast) << "cycle " << i;
    EXPECT_EQ(x.final_cost, y.final_cost) << "cycle " << i;
    EXPECT_EQ(x.iterations, y.iterations) << "cycle " << i;
    EXPECT_EQ(x.innovations.count, y.innovations.count) << "cycle " << i;
    EXPECT_EQ(x.termination, y.termination) << "cycle " << i;
  }
  EXPECT_EQ(a.final_analysis, b.final_analysis);
  EXPECT_EQ(a.final_analysis_std, b.final_analysis_std);
  EXPECT_EQ(a.mean_filter_rmse, b.mean_filter_rmse);
  EXPECT_EQ(a.cycles_not_converged, b.cycles_not_converged);
}

// A run stopped after a checkpoint (the save call throws, as a kill ends the process) and resumed
// from the checkpoint file gives the records of an uninterrupted run; also with a hybrid B, whose
// propagated posterior is part of the state.
TEST(CyclingWindows, ResumingFromACheckpointGivesTheUninterruptedRun) {
  for (const double hybrid : {0.0, 0.5}) {
    TwinExperimentConfig c = small(ObservationSelection::kNew, 8, 8);
    c.cycles = 7;
    c.b_hybrid_weight = hybrid;
    if (hybrid > 0.0) c.incremental.posterior = PosteriorMethod::kDense;
    const TwinData d = simulate_twin_data(c);
    const TwinExperimentResult whole = run_twin_experiment(c, d);
    const auto file = std::filesystem::temp_directory_path() / ("varflow_twin_checkpoint_" + std::to_string(::getpid()));
    struct Stop {};
    TwinCheckpointing save;
    save.every = 2;
    save.save = [&](const TwinState& st) {
      save_twin_state(file, st, "fp");
      if (st.cycles_done == 4) throw Stop{};
    };
    EXPECT_THROW(run_twin_experiment(c, d, {}, save), Stop);
    const TwinState st = load_twin_state(file, "fp");
    EXPECT_EQ(st.cycles_done, 4);
    EXPECT_EQ(st.cycle_b.size() != 0, hybrid > 0.0);
    TwinCheckpointing resume;
    resume.resume = &st;
    std::vector<Index> reported;
    const TwinExperimentResult resumed =
        run_twin_experiment(c, d, [&](Index i, Index, const CycleRecord&) { reported.push_back(i); }, resume);
    EXPECT_EQ(reported, (std::vector<Index>{4, 5, 6}));  // only the unfinished cycles run
    expect_same_records(whole, resumed);
    EXPECT_THROW(load_twin_state(file, "another run"), InvalidArgument);
    std::filesystem::remove(file);
    TwinState done = st;
    done.cycles_done = 7;
    resume.resume = &done;
    EXPECT_THROW(run_twin_experiment(c, d, {}, resume), InvalidArgument);
  }
}

}  // namespace
}  // namespace varflow
