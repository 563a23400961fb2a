#include <gtest/gtest.h>

#include "varflow/core/error.h"
#include "varflow/covariance/covariances.h"
#include "varflow/posterior/posterior.h"
#include "varflow/testing/conformance.h"

namespace varflow {
namespace {

TEST(GaussianPosterior, MomentsAndSamples) {
  Matrix c(2, 2);
  c << 2.0, 0.6, 0.6, 0.5;
  const GaussianPosterior p(Vector::Constant(2, 1.0), std::make_shared<DenseCovariance>(c));
  EXPECT_NEAR(p.marginal_std()[0], std::sqrt(2.0), 1e-14);
  EXPECT_NEAR(p.marginal_std()[1], std::sqrt(0.5), 1e-14);
  Rng rng = testing::seeded_rng(41);
  const Matrix s = p.samples(20000, rng);
  const Vector m = s.rowwise().mean();
  // Standard error of the mean: sqrt(2 / 20000) = 0.01; allow 5 standard errors.
  EXPECT_NEAR(m[0], 1.0, 0.05);
  EXPECT_NEAR(m[1], 1.0, 0.025);
  EXPECT_THROW(GaussianPosterior(Vector::Zero(3), std::make_shared<DenseCovariance>(c)), InvalidArgument);
}

TEST(SamplePosterior, MomentsFromDraws) {
  Matrix d(1, 4);
  d << 1.0, 2.0, 3.0, 6.0;
  const SamplePosterior p(d);
  EXPECT_DOUBLE_EQ(p.mean()[0], 3.0);
  EXPECT_NEAR(p.marginal_std()[0], std::sqrt(14.0 / 3.0), 1e-14);
  Rng rng = testing::seeded_rng(42);
  EXPECT_EQ(p.samples(10, rng).cols(), 10);
  EXPECT_THROW(SamplePosterior(Matrix::Zero(2, 1)), InvalidArgument);
}

}  // namespace
}  // namespace varflow
