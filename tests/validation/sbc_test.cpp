// Gate 3, simulation-based calibration: ranks, the chi-square and ECDF uniformity tests, sharpness,
// and the planted faults of the linear-Gaussian problem.
//
// A correct posterior fails the calibration tests with the gate's false-alarm probability (about
// 2% per run, measured in gate_rates_test), so tests that expect a pass run three independent
// simulations and require at least two passes (a false test failure has probability < 1.2e-3 under
// any seed).
#include <gtest/gtest.h>

#include <cmath>

#include "linear_gaussian.h"
#include "varflow/core/error.h"
#include "varflow/testing/conformance.h"
#include "varflow/validation/sbc.h"
#include "../test_messages.h"

namespace varflow {
namespace {

using test::Fault;
using test::kDim;

SbcResult run(Fault f, Rng& rng, const SbcOptions& options = {}) {
  auto candidate = std::make_shared<const test::Candidate>(f, rng);
  return sbc_gate(test::sbc_problem(candidate), options, rng);
}

TEST(SbcRanks, CountsDrawsBelowAndBreaksTiesAtRandom) {
  Rng rng = testing::seeded_rng(801);
  Matrix draws(2, 4);
  draws << 0.1, 0.5, 0.5, 0.9,  //
      3.0, 1.0, 2.0, 0.0;
  Vector x(2);
  x << 0.5, 2.5;
  std::vector<int> seen(5, 0);
  for (int t = 0; t < 3000; ++t) {
    const IndexVector r = sbc_ranks(x, draws, rng);
    EXPECT_EQ(r[1], 3);
    ++seen[static_cast<std::size_t>(r[0])];
  }
  // One draw below, two ties: rank 1, 2 or 3, each with probability 1/3.
  EXPECT_EQ(seen[0] + seen[4], 0);
  for (int k = 1; k <= 3; ++k) EXPECT_NEAR(seen[static_cast<std::size_t>(k)] / 3000.0, 1.0 / 3.0, 0.04);
}

TEST(Sbc, ExactPosteriorPasses) {
  Rng rng = testing::seeded_rng(802);
  std::vector<SbcResult> runs;
  int passed = 0;
  for (int k = 0; k < 3; ++k) {
    runs.push_back(run(Fault::kNone, rng));
    passed += runs.back().passed();
  }
  for (const SbcResult& run_k : runs) std::cout << run_k.report().substr(0, run_k.report().find('\n') + 1);
  const SbcResult& r = runs.front();
  EXPECT_GE(passed, 2) << runs[0].report() << runs[1].report() << runs[2].report();
  EXPECT_EQ(r.ranks.rows(), kDim);
  EXPECT_EQ(r.ranks.cols(), 200);
  EXPECT_EQ(r.ranks.maxCoeff() <= 99 && r.ranks.minCoeff() >= 0, true);
  for (Index i = 0; i < kDim; ++i) EXPECT_EQ(r.histogram.row(i).sum(), 200);
  EXPECT_DOUBLE_EQ(r.chi_square_threshold, 0.01 / kDim);
  // The exact contraction is 1 - 0.05 / 0.1 = 0.5; Monte Carlo error ~ 0.01.
  for (Index i = 0; i < kDim; ++i) EXPECT_NEAR(r.contraction[i], 0.5, 0.05);
  // Everything a plot needs is there.
  EXPECT_EQ(r.ecdf_difference.rows(), kDim);
  EXPECT_EQ(r.ecdf_difference.cols(), r.ecdf_band.z.size());
  EXPECT_EQ(r.ecdf_band.lower_difference().size(), r.ecdf_band.z.size());
  EXPECT_LT(r.histogram_band_lower, r.expected_per_bin);
  EXPECT_GT(r.histogram_band_upper, r.expected_per_bin);
}

TEST(Sbc, MiscalibratedPosteriorsFail) {
  Rng rng = testing::seeded_rng(803);
  for (Fault f : {Fault::kStdHalf, Fault::kStdDouble, Fault::kMeanShift}) {
    const SbcResult r = run(f, rng);
    EXPECT_FALSE(r.passed()) << test::fault_name(f);
    EXPECT_FALSE(r.chi_square_passed) << test::fault_name(f) << "\n" << r.report();
    EXPECT_FALSE(r.ecdf_passed) << test::fault_name(f) << "\n" << r.report();
    EXPECT_LT(r.min_p_value, 1e-6) << test::fault_name(f);
  }
}

TEST(Sbc, RankShapesShowTheKindOfFault) {
  // Too narrow: ranks pile at both ends; too wide: in the middle; shifted up: at the low end.
  Rng rng = testing::seeded_rng(804);
  auto fraction_in_outer_bins = [](const SbcResult& r) {
    const double outer = static_cast<double>(r.histogram.col(0).sum() + r.histogram.col(r.bins - 1).sum());
    return outer / static_cast<double>(r.histogram.sum());
  };
  EXPECT_GT(fraction_in_outer_bins(run(Fault::kStdHalf, rng)), 0.3);   // uniform: 0.1
  EXPECT_LT(fraction_in_outer_bins(run(Fault::kStdDouble, rng)), 0.02);
  const SbcResult shifted = run(Fault::kMeanShift, rng);
  EXPECT_GT(shifted.ecdf_difference.maxCoeff(), 0.3);  // the ECDF rises far too early
}

TEST(Sbc, PosteriorEqualToPriorIsCalibratedButNotSharp) {
  Rng rng = testing::seeded_rng(805);
  int calibrated = 0;
  for (int k = 0; k < 3; ++k) {
    const SbcResult r = run(Fault::kPrior, rng);
    calibrated += r.calibration_passed();  // SBC alone would accept it
    EXPECT_FALSE(r.sharpness_passed) << r.report();
    EXPECT_FALSE(r.passed());
    for (Index i = 0; i < kDim; ++i) EXPECT_NEAR(r.contraction[i], 0.0, 0.05);
  }
  EXPECT_GE(calibrated, 2);
}

TEST(Sbc, EvaluatesGivenRanks) {
  SbcOptions options;
  const Vector prior = Vector::Ones(3), half = Vector::Constant(3, 0.5);
  // Every rank value exactly twice in each component: a perfectly flat histogram.
  IndexMatrix flat(3, 200);
  for (Index j = 0; j < 200; ++j) flat.col(j).setConstant(j % 100);
  const SbcResult ok = sbc_evaluate(flat, half, prior, options);
  EXPECT_TRUE(ok.passed()) << ok.report();
  EXPECT_EQ(ok.chi_square.maxCoeff(), 0.0);
  EXPECT_EQ(ok.min_p_value, 1.0);
  // Every rank 0 in component 1: the true value below every draw.
  IndexMatrix low = flat;
  low.row(1).setZero();
  const SbcResult bad = sbc_evaluate(low, half, prior, options);
  EXPECT_FALSE(bad.chi_square_passed);
  EXPECT_FALSE(bad.ecdf_passed);
  EXPECT_EQ(bad.worst_p_component, 1);
  EXPECT_EQ(bad.worst_ecdf_component, 1);
  EXPECT_EQ(bad.ecdf_violations[0], 0);
  // Per-component contraction thresholds.
  options.min_contraction_per_component = Vector::Zero(3);
  options.min_contraction_per_component[2] = 0.6;
  const SbcResult unsharp = sbc_evaluate(flat, half, prior, options);
  EXPECT_FALSE(unsharp.sharpness_passed);
  EXPECT_EQ(unsharp.worst_contraction_component, 2);
  EXPECT_NEAR(unsharp.contraction[2], 0.5, 1e-15);
}

TEST(Sbc, PrecomputedBandGivesTheSameResult) {
  SbcOptions options;
  Rng a = testing::seeded_rng(806);
  Rng b(a.seed());
  const SbcResult computed = run(Fault::kNone, a, options);
  options.ecdf_band = std::make_shared<const EcdfBand>(sbc_ecdf_band(options, kDim));
  const SbcResult reused = run(Fault::kNone, b, options);
  EXPECT_EQ(computed.ranks, reused.ranks);
  EXPECT_EQ(computed.ecdf_band.lower, reused.ecdf_band.lower);
  EXPECT_EQ(computed.passed(), reused.passed());
  // A band for another dimension does not match.
  options.ecdf_band = std::make_shared<const EcdfBand>(sbc_ecdf_band(options, kDim + 1));
  EXPECT_THROW(run(Fault::kNone, b, options), InvalidArgument);
}

TEST(Sbc, NonFiniteDrawsFailWithoutThrowing) {
  Rng rng = testing::seeded_rng(807);
  SbcProblem p = test::sbc_problem(std::make_shared<const test::Candidate>(Fault::kNone, rng));
  const auto inner = p.posterior_samples;
  int calls = 0;
  p.posterior_samples = [inner, &calls](const Vector& y, Index n, Rng& r) {
    Matrix d = inner(y, n, r);
    if (++calls == 7) d(0, 0) = std::nan("");
    return d;
  };
  const SbcResult r = sbc_gate(p, {}, rng);
  EXPECT_EQ(r.non_finite_simulations, 1);
  EXPECT_FALSE(r.passed());
  EXPECT_NE(r.report().find("non-finite"), std::string::npos);
}

TEST(Sbc, RejectsBadInput) {
  Rng rng = testing::seeded_rng(808);
  const SbcProblem good = test::sbc_problem(std::make_shared<const test::Candidate>(Fault::kNone, rng));
  SbcOptions options;
  options.bins = 30;  // does not divide L + 1 = 100
  std::string error;
  error = test::message_of([&] { options.validate(); });
  EXPECT_NE(error, "(no exception)");
  EXPECT_NE(error.find("bins"), std::string::npos) << error;
  EXPECT_THROW(sbc_gate(good, options, rng), InvalidArgument);
  options = {};
  options.simulations = 50;  // fewer than 5 per bin
  EXPECT_THROW(sbc_gate(good, options, rng), InvalidArgument);

  SbcProblem wrong_rows = good;
  wrong_rows.posterior_samples = [](const Vector&, Index n, Rng&) { return Matrix(Matrix::Zero(kDim - 1, n)); };
  try {
    sbc_gate(wrong_rows, {}, rng);
    ADD_FAILURE() << "no exception";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("posterior_samples"), std::string::npos) << e.what();
  }
  SbcProblem empty = good;
  empty.simulate = nullptr;
  EXPECT_THROW(sbc_gate(empty, {}, rng), InvalidArgument);
  SbcProblem negative = good;
  negative.prior_variance[4] = -0.1;
  EXPECT_THROW(sbc_gate(negative, {}, rng), InvalidArgument);
}

}  // namespace
}  // namespace varflow
