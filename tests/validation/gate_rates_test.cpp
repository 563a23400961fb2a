// Measured false-alarm and detection rates of the promotion decision on the exact linear-Gaussian
// problem (linear_gaussian.h), over VARFLOW_GATE_RATE_SEEDS independent seeds: 40 in the default
// suite (gate_rates_test), 1000 in the nightly one (gate_rates_nightly_test, suite GateRatesNightly, label "nightly").
//
// Each run draws a fresh candidate, 20 held-out events, 3 Jacobian cases and 200 SBC simulations
// from its own seed, and runs every gate. The tests assert, with binomial bounds whose chance of a
// false test failure is <= 1e-3 each:
//  - correct posteriors (the exact one, and a realistic one known through 1000 draws with a 2%
//    Jacobian error) are refused at a rate not above 5%;
//  - every planted fault is caught by the gate(s) meant to catch it at a rate of at least 95%.
// The measured table is printed (design/gates.md quotes it).
#include <gtest/gtest.h>

#include <cstdio>

#include "linear_gaussian.h"
#include "varflow/testing/conformance.h"
#include "varflow/validation/promotion.h"
#include "varflow/validation/statistics.h"

#ifndef VARFLOW_GATE_RATE_SEEDS
#define VARFLOW_GATE_RATE_SEEDS 40
#endif
// The nightly build names its suite differently, so that ctest labels the two apart.
#ifndef VARFLOW_GATE_RATE_SUITE
#define VARFLOW_GATE_RATE_SUITE GateRates
#endif

namespace varflow {
namespace {

using test::Fault;

constexpr Index kSeeds = VARFLOW_GATE_RATE_SEEDS;
constexpr double kFlakeProbability = 1e-3;

// Outcome counts over the seeds: how often each gate and each of its tests failed.
struct Tally {
  Index runs = 0, refused = 0;
  Index agreement = 0, mean = 0, spread = 0;
  Index adjoint = 0, linearization = 0, probes = 0, operator_norm = 0, jvp_vjp = 0;
  Index sbc = 0, chi_square = 0, ecdf = 0, sharpness = 0;
};

// Every run has its own seed, drawn from the test's seeded generator (so the runs of different
// tests never share seeds).
Tally measure(Fault fault, std::uint64_t base_seed, const PromotionOptions& options) {
  Tally t;
  Rng seeds(base_seed);
  for (Index s = 0; s < kSeeds; ++s) {
    Rng rng(seeds.engine()());
    auto candidate = std::make_shared<const test::Candidate>(fault, rng);
    const auto in = test::make_inputs(candidate, rng);
    const PromotionDecision d = decide_promotion(in.inputs, rng, options);
    ++t.runs;
    t.refused += !d.promote();
    t.agreement += !d.agreement.passed();
    t.mean += !d.agreement.mean_passed;
    t.spread += !d.agreement.spread_passed;
    t.adjoint += !d.adjoint_calibration.passed();
    bool lin = false, probes = false, norm = false, jv = false;
    for (const auto& l : d.adjoint_calibration.linearizations) lin = lin || !l.passed();
    for (const auto& j : d.adjoint_calibration.jacobians) {
      probes = probes || !j.probes_passed;
      norm = norm || !j.operator_norm_passed;
      jv = jv || !j.adjoints_passed;
    }
    t.linearization += lin;
    t.probes += probes;
    t.operator_norm += norm;
    t.jvp_vjp += jv;
    t.sbc += !d.sbc.passed();
    t.chi_square += !d.sbc.chi_square_passed;
    t.ecdf += !d.sbc.ecdf_passed;
    t.sharpness += !d.sbc.sharpness_passed;
  }
  return t;
}

void print_header() {
  std::printf("%-38s %5s %6s | %6s %6s %6s | %6s %6s %6s %6s %6s | %6s %6s %6s %6s\n", "candidate", "runs", "refuse",
              "agree", "mean", "spread", "adjnt", "TL/AD", "probe", "norm", "jv/vj", "SBC", "chi2", "ECDF", "sharp");
}

void print_row(const std::string& name, const Tally& t) {
  auto pct = [&t](Index k) { return 100.0 * static_cast<double>(k) / static_cast<double>(t.runs); };
  std::printf("%-38s %5ld %5.1f%% | %5.1f%% %5.1f%% %5.1f%% | %5.1f%% %5.1f%% %5.1f%% %5.1f%% %5.1f%% | %5.1f%% %5.1f%% "
              "%5.1f%% %5.1f%%\n",
              name.c_str(), static_cast<long>(t.runs), pct(t.refused), pct(t.agreement), pct(t.mean), pct(t.spread),
              pct(t.adjoint), pct(t.linearization), pct(t.probes), pct(t.operator_norm), pct(t.jvp_vjp), pct(t.sbc),
              pct(t.chi_square), pct(t.ecdf), pct(t.sharpness));
}

// The largest count still consistent with a rate <= p: exceeded with probability <= kFlakeProbability.
Index max_count(Index n, double p) {
  Index k = 0;
  while (1.0 - binomial_cdf(k, n, p) > kFlakeProbability) ++k;
  return k;
}

// The smallest count still consistent with a rate >= p: undershot with probability <= kFlakeProbability.
Index min_count(Index n, double p) {
  Index k = 0;
  while (binomial_cdf(k, n, p) <= kFlakeProbability) ++k;
  return k;  // P(X <= k - 1) <= kFlakeProbability < P(X <= k)
}

// One-sided 95% upper confidence bound (Clopper-Pearson) on a rate with k events in n runs.
double upper_bound_95(Index k, Index n) {
  if (k >= n) return 1.0;
  double lo = static_cast<double>(k) / static_cast<double>(n), hi = 1.0;
  for (int it = 0; it < 60; ++it) {
    const double mid = 0.5 * (lo + hi);
    if (binomial_cdf(k, n, mid) > 0.05) lo = mid; else hi = mid;
  }
  return hi;
}

PromotionOptions options_with_band() {
  PromotionOptions options;
  options.sbc.ecdf_band = std::make_shared<const EcdfBand>(sbc_ecdf_band(options.sbc, test::kDim));
  return options;
}

TEST(VARFLOW_GATE_RATE_SUITE, CorrectPosteriorFalseAlarmRate) {
  const std::uint64_t base = testing::seeded_rng(1001).seed();
  const PromotionOptions options = options_with_band();
  const Index bound = max_count(kSeeds, 0.05);
  print_header();
  for (Fault f : {Fault::kNone, Fault::kApproximate}) {
    const Tally t = measure(f, base, options);
    print_row(test::fault_name(f), t);
    std::printf("    false alarms %ld / %ld = %.1f%% (95%% upper bound %.1f%%); allowed <= %ld for a 5%% rate\n",
                static_cast<long>(t.refused), static_cast<long>(t.runs), 100.0 * t.refused / t.runs,
                100.0 * upper_bound_95(t.refused, t.runs), static_cast<long>(bound));
    EXPECT_LE(t.refused, bound) << test::fault_name(f);
    // Only the statistical tests can raise a false alarm; the deterministic ones never do.
    EXPECT_EQ(t.adjoint, 0) << test::fault_name(f);
    EXPECT_EQ(t.agreement, 0) << test::fault_name(f);
  }
}

TEST(VARFLOW_GATE_RATE_SUITE, PlantedFaultDetectionRates) {
  const std::uint64_t base = testing::seeded_rng(1002).seed();
  const PromotionOptions options = options_with_band();
  const Index need = min_count(kSeeds, 0.95);
  std::printf("detection needed in >= %ld of %ld runs (a rate >= 95%%)\n", static_cast<long>(need),
              static_cast<long>(kSeeds));
  print_header();
  for (Fault f : {Fault::kStdHalf, Fault::kStdDouble, Fault::kMeanShift, Fault::kPrior, Fault::kJacobianScaled,
                  Fault::kAdjointWrongSign, Fault::kAdjointMissingTerm}) {
    const Tally t = measure(f, base, options);
    print_row(test::fault_name(f), t);
    const std::string name = test::fault_name(f);
    EXPECT_GE(t.refused, need) << name;
    switch (f) {
      case Fault::kStdHalf:
      case Fault::kStdDouble:
        EXPECT_GE(t.spread, need) << name;
        EXPECT_GE(t.chi_square, need) << name;
        EXPECT_GE(t.ecdf, need) << name;
        break;
      case Fault::kMeanShift:
        EXPECT_GE(t.mean, need) << name;
        EXPECT_GE(t.chi_square, need) << name;
        EXPECT_GE(t.ecdf, need) << name;
        break;
      case Fault::kPrior: EXPECT_GE(t.sharpness, need) << name; break;
      case Fault::kJacobianScaled: EXPECT_GE(t.probes, need) << name; break;
      case Fault::kAdjointWrongSign:
      case Fault::kAdjointMissingTerm:
        EXPECT_GE(t.linearization, need) << name;
        EXPECT_GE(t.jvp_vjp, need) << name;
        break;
      default: ADD_FAILURE() << "no expectation for " << name;
    }
  }
}

}  // namespace
}  // namespace varflow
