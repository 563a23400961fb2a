#include <gtest/gtest.h>

#include <cmath>

#include "varflow/core/error.h"
#include "varflow/covariance/covariances.h"
#include "varflow/testing/conformance.h"
#include "varflow/validation/covariance_checks.h"
#include "test_messages.h"

namespace varflow {
namespace {

using test::message_of;

TEST(DiagonalCovariance, RejectsNonPositiveVariance) {
  Vector v = Vector::Ones(4);
  v[2] = -0.5;
  EXPECT_EQ(message_of([&] { DiagonalCovariance{v}; }),
            "DiagonalCovariance: variances[2] = -0.5 must be positive and finite");
}

TEST(DenseCovariance, RejectsNonSymmetricAndIndefiniteMatrices) {
  Matrix c = Matrix::Identity(3, 3);
  c(0, 2) = 0.3;
  EXPECT_NE(message_of([&] { DenseCovariance{c}; }).find("not symmetric: C(2, 0) = 0 but C(0, 2) = 0.3"),
            std::string::npos);
  Matrix d(2, 2);
  d << 1.0, 2.0, 2.0, 1.0;  // eigenvalues 3 and -1
  const std::string msg = message_of([&] { DenseCovariance{d}; });
  EXPECT_NE(msg.find("not positive definite: smallest eigenvalue -1"), std::string::npos) << msg;
  EXPECT_THROW(DenseCovariance(Matrix::Zero(2, 3)), InvalidArgument);
}

// The FFT implementation agrees with the wrapped Gaussian built entry by entry.
TEST(PeriodicGaussianCovariance, MatchesDirectConstruction) {
  const Index n = 30;
  const double variance = 2.0, length = 1.7, ds = 0.8;
  const PeriodicGaussianCovariance c(n, variance, length, ds);
  const double period = n * ds;
  auto wrapped = [&](double d) {
    double g = 0.0;
    for (int m = -5; m <= 5; ++m) g += std::exp(-0.5 * std::pow((d + m * period) / length, 2));
    return g;
  };
  Matrix direct(n, n);
  for (Index i = 0; i < n; ++i)
    for (Index j = 0; j < n; ++j) direct(i, j) = variance * wrapped((i - j) * ds) / wrapped(0.0);
  EXPECT_LT((c.dense() - direct).cwiseAbs().maxCoeff(), 1e-12);
  EXPECT_NEAR(c.dense()(3, 3), variance, 1e-12);
}

TEST(PeriodicGaussianCovariance, SingularWithoutNuggetIsAClearError) {
  const std::string msg = message_of([] { PeriodicGaussianCovariance(40, 1.0, 6.0); });
  EXPECT_NE(msg.find("condition number"), std::string::npos) << msg;
  EXPECT_NE(msg.find("nugget"), std::string::npos) << msg;
  EXPECT_NO_THROW(PeriodicGaussianCovariance(40, 1.0, 6.0, 1.0, 1e-4));
  EXPECT_THROW(PeriodicGaussianCovariance(40, 1.0, 2.0, 1.0, 1.0), InvalidArgument);
  EXPECT_THROW(PeriodicGaussianCovariance(40, -1.0, 2.0), InvalidArgument);
}

// A covariance whose draws are 10% too wide and whose inverse is off: the checks must catch both.
class WrongCovariance final : public Covariance {
 public:
  explicit WrongCovariance(Index n) : inner_(DiagonalCovariance::scaled_identity(n, 1.0)) {}
  Index size() const override { return inner_.size(); }
  std::string name() const override { return "wrong"; }
  double log_determinant() const override { return 0.0; }

 protected:
  Vector do_multiply(const Vector& x) const override { return x; }
  Vector do_inverse_multiply(const Vector& x) const override { return 1.01 * x; }
  Vector do_sqrt_multiply(const Vector& v) const override { return 1.1 * v; }
  Vector do_sqrt_transpose_multiply(const Vector& x) const override { return x; }
  Vector do_sqrt_inverse_multiply(const Vector& x) const override { return x; }

 private:
  DiagonalCovariance inner_;
};

TEST(CovarianceChecks, CatchPlantedFaults) {
  Rng rng = testing::seeded_rng(21);
  const WrongCovariance wrong(10);
  const auto r = check_covariance(wrong, rng);
  EXPECT_TRUE(r.symmetry_passed);
  EXPECT_FALSE(r.inverse_passed) << r.report();
  EXPECT_FALSE(r.square_root_passed) << r.report();
  const auto s = check_covariance_sampling(wrong, rng, 10000);
  EXPECT_FALSE(s.passed) << s.report();
}

TEST(CovarianceChecks, NormalQuantile) {
  EXPECT_NEAR(normal_quantile(0.975), 1.959963984540054, 1e-10);
  EXPECT_NEAR(normal_quantile(0.5), 0.0, 1e-12);
  EXPECT_NEAR(normal_quantile(1e-6), -4.753424308822899, 1e-9);
  EXPECT_THROW(normal_quantile(1.0), InvalidArgument);
}

// The sampling check's false-alarm rate is at most its level alpha: run it on a correct covariance
// over many seeds with alpha = 0.05 and count failures (binomial: 100 runs, expect <= ~12).
TEST(CovarianceChecks, SamplingFalseAlarmRateIsControlled) {
  const PeriodicGaussianCovariance c(12, 1.0, 1.5);
  CovarianceTolerances tol;
  tol.sampling_alpha = 0.05;
  int failures = 0;
  Rng rng = testing::seeded_rng(22);
  for (int run = 0; run < 100; ++run) {
    if (!check_covariance_sampling(c, rng, 2000, tol).passed) ++failures;
  }
  EXPECT_LE(failures, 12);
}

}  // namespace
}  // namespace varflow
