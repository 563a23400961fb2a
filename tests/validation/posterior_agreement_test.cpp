// Gate 1, posterior agreement: passes agreeing posteriors, fails planted mean and spread faults at
// the thresholds, reports the worst case and the distribution.
#include <gtest/gtest.h>

#include <cmath>

#include "linear_gaussian.h"
#include "varflow/core/error.h"
#include "varflow/testing/conformance.h"
#include "varflow/validation/posterior_agreement.h"
#include "../test_messages.h"

namespace varflow {
namespace {

using test::kDim;

std::shared_ptr<const Posterior> gaussian(const Vector& mean, const Vector& std_dev) {
  return std::make_shared<GaussianPosterior>(mean, std::make_shared<DiagonalCovariance>(std_dev.cwiseAbs2()));
}

// Events whose oracle is N(m_e, diag(s^2)) with random m_e, s; the fast posterior is the oracle with
// its mean moved by `shift` oracle sigmas and its std scaled by `scale` in one component of one event.
std::vector<AgreementEvent> events(Rng& rng, Index count, Index event, Index component, double shift, double scale) {
  std::vector<AgreementEvent> out;
  for (Index e = 0; e < count; ++e) {
    const Vector m = rng.normal_vector(kDim);
    const Vector s = (0.1 + rng.normal_vector(kDim).cwiseAbs().array()).matrix();
    Vector mf = m, sf = s;
    if (e == event) {
      mf[component] += shift * s[component];
      sf[component] *= scale;
    }
    out.push_back({format_message("e", e), gaussian(mf, sf), gaussian(m, s)});
  }
  return out;
}

TEST(PosteriorAgreement, IdenticalPosteriorsPass) {
  Rng rng = testing::seeded_rng(601);
  const AgreementResult r = posterior_agreement_gate(events(rng, 5, 0, 0, 0.0, 1.0));
  EXPECT_TRUE(r.passed()) << r.report();
  EXPECT_EQ(r.events, 5);
  EXPECT_EQ(r.dimension, kDim);
  EXPECT_EQ(r.worst_difference.value, 0.0);
  EXPECT_NEAR(r.spread_ratio_median, 1.0, 1e-14);
  EXPECT_NEAR(r.min_spread.value, 1.0, 1e-14);
  EXPECT_NEAR(r.max_spread.value, 1.0, 1e-14);
}

TEST(PosteriorAgreement, MeanToleranceIsOneOracleSigma) {
  Rng rng = testing::seeded_rng(602);
  const AgreementResult inside = posterior_agreement_gate(events(rng, 6, 2, 7, 0.95, 1.0));
  EXPECT_TRUE(inside.mean_passed) << inside.report();
  const AgreementResult outside = posterior_agreement_gate(events(rng, 6, 2, 7, -1.05, 1.0));
  EXPECT_FALSE(outside.mean_passed) << outside.report();
  EXPECT_TRUE(outside.spread_passed);
  EXPECT_FALSE(outside.passed());
  // The worst case names the event and component.
  EXPECT_EQ(outside.worst_difference.event, 2);
  EXPECT_EQ(outside.worst_difference.event_name, "e2");
  EXPECT_EQ(outside.worst_difference.component, 7);
  EXPECT_NEAR(outside.worst_difference.value, -1.05, 1e-12);
  EXPECT_NEAR(outside.standardized_difference(7, 2), -1.05, 1e-12);
}

TEST(PosteriorAgreement, MeanShiftedByTwoSigmaFails) {
  Rng rng = testing::seeded_rng(603);
  const AgreementResult r = posterior_agreement_gate(events(rng, 4, 1, 0, 2.0, 1.0));
  EXPECT_FALSE(r.passed());
  EXPECT_NEAR(r.worst_difference.value, 2.0, 1e-12);
  EXPECT_NE(r.report().find("FAIL"), std::string::npos);
}

TEST(PosteriorAgreement, SpreadBand) {
  Rng rng = testing::seeded_rng(604);
  for (double scale : {0.5, 0.79, 1.26, 2.0}) {
    const AgreementResult r = posterior_agreement_gate(events(rng, 4, 3, 5, 0.0, scale));
    EXPECT_FALSE(r.spread_passed) << "scale " << scale << "\n" << r.report();
    EXPECT_TRUE(r.mean_passed);
    const AgreementLocation& extreme = scale < 1.0 ? r.min_spread : r.max_spread;
    EXPECT_NEAR(extreme.value, scale, 1e-12);
    EXPECT_EQ(extreme.event, 3);
    EXPECT_EQ(extreme.component, 5);
  }
  for (double scale : {0.81, 1.24}) {
    const AgreementResult r = posterior_agreement_gate(events(rng, 4, 3, 5, 0.0, scale));
    EXPECT_TRUE(r.passed()) << "scale " << scale << "\n" << r.report();
  }
}

TEST(PosteriorAgreement, DistributionOfDifferences) {
  // Fast means off by d = (i + 1) / 20 sigma in component i: |d| = 0.05 .. 0.5.
  const Vector m = Vector::Zero(kDim), s = Vector::Ones(kDim);
  Vector mf(kDim);
  for (Index i = 0; i < kDim; ++i) mf[i] = (i + 1) / 20.0;
  AgreementOptions options;
  options.quantile_levels = {0.0, 0.5, 1.0};
  const AgreementResult r = posterior_agreement_gate({{"only", gaussian(mf, s), gaussian(m, s)}}, options);
  EXPECT_NEAR(r.abs_difference_quantiles[0], 0.05, 1e-14);
  EXPECT_NEAR(r.abs_difference_quantiles[1], 0.275, 1e-14);
  EXPECT_NEAR(r.abs_difference_quantiles[2], 0.5, 1e-14);
  EXPECT_NEAR(r.mean_difference, 0.275, 1e-14);
  EXPECT_EQ(r.worst_difference.component, kDim - 1);
}

TEST(PosteriorAgreement, LinearGaussianFaults) {
  // The exact problem: planted mean and spread faults fail, a sample-based correct posterior passes.
  Rng rng = testing::seeded_rng(605);
  using test::Fault;
  for (Fault f : {Fault::kNone, Fault::kApproximate, Fault::kStdHalf, Fault::kStdDouble, Fault::kMeanShift}) {
    auto candidate = std::make_shared<const test::Candidate>(f, rng);
    const auto in = test::make_inputs(candidate, rng);
    const AgreementResult r = posterior_agreement_gate(in.inputs.held_out_events);
    const bool should_pass = f == Fault::kNone || f == Fault::kApproximate;
    EXPECT_EQ(r.passed(), should_pass) << test::fault_name(f) << "\n" << r.report();
    if (f == Fault::kStdHalf || f == Fault::kStdDouble) {
      EXPECT_FALSE(r.spread_passed);
      EXPECT_NEAR(r.spread_ratio_median, f == Fault::kStdHalf ? 0.5 : 2.0, 1e-12);
    }
    if (f == Fault::kMeanShift) {
      EXPECT_NEAR(r.worst_difference.value, 2.0, 1e-9);
    }
  }
}

TEST(PosteriorAgreement, NonFiniteFastPosteriorFailsWithoutThrowing) {
  // A broken candidate whose mean is NaN (SamplePosterior and GaussianPosterior reject non-finite
  // input, so a minimal Posterior stands in for a network that produced NaN).
  class NanPosterior final : public Posterior {
   public:
    Index size() const override { return kDim; }
    Vector mean() const override { return Vector::Constant(kDim, std::nan("")); }
    Vector marginal_std() const override { return Vector::Ones(kDim); }
    Matrix samples(Index n, Rng&) const override { return Matrix::Zero(kDim, n); }
  };
  const auto oracle = gaussian(Vector::Zero(kDim), Vector::Ones(kDim));
  const AgreementResult r = posterior_agreement_gate({{"nan", std::make_shared<NanPosterior>(), oracle}});
  EXPECT_FALSE(r.passed());
  EXPECT_FALSE(r.mean_passed);
  EXPECT_TRUE(std::isnan(r.worst_difference.value));
}

TEST(PosteriorAgreement, RejectsBadInput) {
  const auto a = gaussian(Vector::Zero(kDim), Vector::Ones(kDim));
  const auto b = gaussian(Vector::Zero(kDim + 1), Vector::Ones(kDim + 1));
  EXPECT_THROW(posterior_agreement_gate({}), InvalidArgument);
  EXPECT_THROW(posterior_agreement_gate({{"null", nullptr, a}}), InvalidArgument);
  EXPECT_THROW(posterior_agreement_gate({{"ok", a, a}, {"mismatch", a, b}}), InvalidArgument);
  AgreementOptions bad;
  bad.min_spread_ratio = 1.5;
  std::string error;
  error = test::message_of([&] { bad.validate(); });
  EXPECT_NE(error, "(no exception)");
  EXPECT_NE(error.find("min_spread_ratio"), std::string::npos);
  EXPECT_THROW(posterior_agreement_gate({{"ok", a, a}}, bad), InvalidArgument);
}

}  // namespace
}  // namespace varflow
