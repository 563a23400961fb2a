// The posterior figures of the validation module that compare draws with a reference: the k-NN
// classifier two-sample accuracy and GaussianAccuracy's moments against an exact isotropic Gaussian.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>

#include "../test_messages.h"
#include "varflow/core/error.h"
#include "varflow/covariance/covariances.h"
#include "varflow/posterior/posterior.h"
#include "varflow/testing/conformance.h"
#include "varflow/validation/gaussian_accuracy.h"
#include "varflow/validation/two_sample.h"

namespace varflow {
namespace {

Matrix normal_draws(Index d, Index n, double shift, double scale, Rng& rng) {
  Matrix x(d, n);
  for (Index i = 0; i < x.size(); ++i) x.data()[i] = shift + scale * rng.normal();
  return x;
}

// Equal distributions give about 0.5 (three seeds; the accuracy's sd is about 0.011 at 2000 draws);
// a shift of one sd is found; a shift of 5 sd separates the samples.
TEST(KnnTwoSample, HalfForEqualDistributionsAndNearOneForSeparatedOnes) {
  for (int seed = 0; seed < 3; ++seed) {
    Rng rng = testing::seeded_rng(700 + seed);
    const Matrix a = normal_draws(2, 1000, 0.0, 1.0, rng), b = normal_draws(2, 1000, 0.0, 1.0, rng);
    const double same = knn_two_sample_accuracy(a, b);
    EXPECT_NEAR(same, 0.5, 0.05) << seed;
    const double shifted = knn_two_sample_accuracy(a, normal_draws(2, 1000, 1.0, 1.0, rng));
    EXPECT_GT(shifted, 0.65) << seed;
    EXPECT_GT(knn_two_sample_accuracy(a, normal_draws(2, 1000, 5.0, 1.0, rng)), 0.99) << seed;
    // A sample 30% too narrow is told apart too, less easily.
    const double narrow = knn_two_sample_accuracy(a, normal_draws(2, 1000, 0.0, 0.7, rng));
    EXPECT_GT(narrow, 0.55) << seed;
    EXPECT_LT(narrow, shifted) << seed;
  }
  Rng rng = testing::seeded_rng(710);
  const Matrix a = normal_draws(2, 10, 0.0, 1.0, rng);
  EXPECT_THAT(test::message_of<InvalidArgument>([&] { knn_two_sample_accuracy(a, Matrix::Zero(3, 10)); }),
              ::testing::HasSubstr("rows of b"));
  EXPECT_THAT(test::message_of<InvalidArgument>([&] { knn_two_sample_accuracy(a, a, 20); }),
              ::testing::HasSubstr("k = 20 must be below the pooled draws 20"));
}

// Closed form: a GaussianPosterior equal to the exact one scores 0 / 1 / 0 exactly; a mean off by
// 0.5 sd in every component and a variance twice the exact one are measured as such. From draws:
// within their Monte Carlo error.
TEST(GaussianAccuracy, MeasuresMeanVarianceAndCorrelationErrors) {
  const double v = 0.05;
  const Vector m = Vector::LinSpaced(4, -1.0, 1.0);
  Rng rng = testing::seeded_rng(711);
  GaussianAccuracy exact;
  exact.add(GaussianPosterior(m, std::make_shared<DenseCovariance>(v * Matrix::Identity(4, 4))), m, v, 0, rng);
  EXPECT_EQ(exact.observations(), 1);
  EXPECT_NEAR(exact.mean_error(), 0.0, 1e-15);
  EXPECT_NEAR(exact.variance_ratio(), 1.0, 1e-12);
  EXPECT_NEAR(exact.variance_ratio_rms(), 0.0, 1e-12);
  EXPECT_EQ(exact.max_correlation(), 0.0);

  GaussianAccuracy off;
  Matrix c = 2.0 * v * Matrix::Identity(4, 4);
  c(0, 1) = c(1, 0) = 0.5 * 2.0 * v;  // correlation 0.5
  off.add(GaussianPosterior(m + 0.5 * std::sqrt(v) * Vector::Ones(4), std::make_shared<DenseCovariance>(c)), m, v, 0,
          rng);
  EXPECT_NEAR(off.mean_error(), 0.5, 1e-12);
  EXPECT_NEAR(off.variance_ratio(), 2.0, 1e-12);
  EXPECT_NEAR(off.variance_ratio_rms(), 1.0, 1e-12);
  EXPECT_NEAR(off.max_correlation(), 0.5, 1e-12);

  GaussianAccuracy drawn;
  const GaussianPosterior g(m, std::make_shared<DenseCovariance>(v * Matrix::Identity(4, 4)));
  for (int k = 0; k < 5; ++k) drawn.add(SamplePosterior(g.samples(20000, rng)), m, v, 20000, rng);
  EXPECT_EQ(drawn.observations(), 5);
  EXPECT_LT(drawn.mean_error(), 0.03);  // Monte Carlo error 1/sqrt(20000) = 0.007 sd
  EXPECT_NEAR(drawn.variance_ratio(), 1.0, 0.02);
  EXPECT_LT(drawn.max_correlation(), 0.05);
  EXPECT_THAT(test::message_of<InvalidArgument>([&] { drawn.add(g, Vector::Zero(3), v, 10, rng); }),
              ::testing::HasSubstr("exact_mean"));
}

}  // namespace
}  // namespace varflow
