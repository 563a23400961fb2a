// The linearisation checks must fail on planted faults and pass on correct pairs.
#include <gtest/gtest.h>

#include <Eigen/QR>
#include <cmath>

#include "test_states.h"
#include "varflow/model/lorenz96.h"
#include "varflow/testing/conformance.h"
#include "varflow/validation/linearization_checks.h"

namespace varflow {
namespace {

// Lorenz-96 with a planted fault in its TL or AD.
enum class Fault { kNone, kAdjointWrongSign, kAdjointMissingTerm, kTangentScaled };

class FaultyLorenz96 final : public Model {
 public:
  explicit FaultyLorenz96(Fault fault) : fault_(fault) {}
  Index state_size() const override { return inner_.state_size(); }
  std::string name() const override { return "faulty_lorenz96"; }

 protected:
  void do_step(Vector& x) const override { inner_.step(x); }
  void do_step_tangent(const Vector& x, Vector& dx) const override {
    inner_.step_tangent(x, dx);
    if (fault_ == Fault::kTangentScaled) dx *= 1.001;
  }
  void do_step_adjoint(const Vector& x, Vector& ax) const override {
    const Vector a_in = ax;
    inner_.step_adjoint(x, ax);
    if (fault_ == Fault::kAdjointWrongSign) ax[5] = -ax[5];
    if (fault_ == Fault::kAdjointMissingTerm) ax -= a_in * 1e-3;  // drops part of the identity term
  }

 private:
  Lorenz96 inner_{20, 8.0, 0.05};
  Fault fault_;
};

Matrix normal_matrix(Rng& rng, Index rows, Index cols) {
  Matrix m(rows, cols);
  for (Index j = 0; j < cols; ++j) m.col(j) = rng.normal_vector(rows);
  return m;
}

Vector state(Rng& rng) { return test::spun_up_state(Lorenz96(20, 8.0, 0.05), Vector::Constant(20, 8.0), rng, 300); }

TEST(LinearizationChecks, CorrectPairPasses) {
  Rng rng = testing::seeded_rng(31);
  const FaultyLorenz96 model(Fault::kNone);
  const Vector x = state(rng);
  const auto report = check_linearization(linearize(model, x, 1), x, rng);
  EXPECT_TRUE(report.passed()) << report.dot_product.report() << "\n" << report.taylor.report();
}

TEST(LinearizationChecks, AdjointWithOneWrongSignFailsDotProduct) {
  Rng rng = testing::seeded_rng(32);
  const FaultyLorenz96 model(Fault::kAdjointWrongSign);
  const Vector x = state(rng);
  const auto r = check_linearization(linearize(model, x, 1), x, rng).dot_product;
  EXPECT_FALSE(r.passed) << r.report();
}

TEST(LinearizationChecks, AdjointWithMissingTermFailsDotProduct) {
  Rng rng = testing::seeded_rng(33);
  const FaultyLorenz96 model(Fault::kAdjointMissingTerm);
  const Vector x = state(rng);
  const auto r = check_linearization(linearize(model, x, 1), x, rng).dot_product;
  EXPECT_FALSE(r.passed) << r.report();
}

TEST(LinearizationChecks, TangentOffBy0Point1PercentFailsTaylor) {
  Rng rng = testing::seeded_rng(34);
  const FaultyLorenz96 model(Fault::kTangentScaled);
  const Vector x = state(rng);
  const auto r = check_linearization(linearize(model, x, 1), x, rng).taylor;
  EXPECT_FALSE(r.passed) << r.report();
  EXPECT_GT(r.min_ratio, 1e-4) << r.report();
}

TEST(LinearizationChecks, NonlinearTangentFailsLinearity) {
  Rng rng = testing::seeded_rng(35);
  const VectorMap tangent = [](const Vector& dx) { return Vector(dx + 1e-3 * dx.cwiseProduct(dx)); };
  const auto r = linearity_test(tangent, tangent, rng.normal_vector(5), rng.normal_vector(5), 5);
  EXPECT_FALSE(r.passed) << r.report();
}

TEST(LinearizationChecks, ExactlyLinearMapPassesTaylor) {
  Rng rng = testing::seeded_rng(36);
  Matrix a(4, 4);
  for (Index j = 0; j < 4; ++j) a.col(j) = rng.normal_vector(4);
  const VectorMap map = [&](const Vector& v) { return Vector(a * v); };
  const auto r = taylor_test(map, map, rng.normal_vector(4), rng.normal_vector(4));
  EXPECT_TRUE(r.exactly_linear) << r.report();
  EXPECT_TRUE(r.passed);
}

// The false alarm the anchored probe removes: random dx, ay whose <L dx, ay> nearly cancels. With an
// exactly adjoint dense pair (L^T from the same matrix) the unanchored ratio is round-off divided by
// a tiny number; the test anchors ay on L dx and passes. Which draws give the false alarm depends on
// the rounding of the build (instruction set), so ay is drawn until one does.
TEST(LinearizationChecks, ExactPairPassesWhenTheRandomVectorsNearlyCancel) {
  Rng rng = testing::seeded_rng(41);
  const Matrix a = normal_matrix(rng, 40, 120);
  const VectorMap tangent = [&a](const Vector& v) { return Vector(a * v); };
  const VectorMap adjoint = [&a](const Vector& w) { return Vector(a.transpose() * w); };
  const Vector dx = rng.normal_vector(120);
  const Vector ldx = a * dx;
  Vector ay;
  double unanchored = 0.0;
  for (int attempt = 0; attempt < 100 && !(unanchored > 1e-12); ++attempt) {
    ay = rng.normal_vector(40);
    ay -= (ldx.dot(ay) / ldx.squaredNorm()) * ldx;  // <L dx, ay> = 0 up to round-off
    ay += 1e-14 * ldx / ldx.norm() * ay.norm();
    unanchored = std::abs(ldx.dot(ay) - dx.dot(a.transpose() * ay)) /
                 std::max(std::abs(ldx.dot(ay)), std::abs(dx.dot(a.transpose() * ay)));
  }
  ASSERT_GT(unanchored, 1e-12) << "no draw reproduces the false alarm";
  const DotProductResult r = dot_product_test(tangent, adjoint, dx, ay);
  EXPECT_TRUE(r.passed) << r.report();
  EXPECT_NEAR(r.lhs, ldx.squaredNorm(), 1e-12 * ldx.squaredNorm());
}

// The anchored probe keeps the test's power: an adjoint off by a factor 1.001, and a tall map whose
// adjoint is wrong only off the range of L (invisible to a probe ay = L dx alone), both fail.
TEST(LinearizationChecks, AnchoredProbeStillCatchesScaledAndOffRangeAdjointFaults) {
  Rng rng = testing::seeded_rng(42);
  const Matrix a = normal_matrix(rng, 30, 5);  // tall: the range of L is 5 of 30 dimensions
  const VectorMap tangent = [&a](const Vector& v) { return Vector(a * v); };
  const VectorMap scaled = [&a](const Vector& w) { return Vector(1.001 * (a.transpose() * w)); };
  const Eigen::HouseholderQR<Matrix> qr(a);
  const Matrix q = qr.householderQ() * Matrix::Identity(30, 5);  // orthonormal basis of range(L)
  const Matrix off_range = Matrix::Identity(30, 30) - q * q.transpose();
  const Matrix fault = 1e-3 * normal_matrix(rng, 5, 30) * off_range;
  const VectorMap off = [&a, &fault](const Vector& w) { return Vector(a.transpose() * w + fault * w); };
  const Vector dx = rng.normal_vector(5), ay = rng.normal_vector(30);
  const DotProductResult s = dot_product_test(tangent, scaled, dx, ay);
  EXPECT_FALSE(s.passed) << s.report();
  EXPECT_GT(s.relative_error, 1e-4);
  const DotProductResult o = dot_product_test(tangent, off, dx, ay);
  EXPECT_FALSE(o.passed) << o.report();
  EXPECT_GT(o.relative_error, 1e-6);
  // The same fault is invisible to the probe ay = L dx alone.
  const Vector ldx = a * dx;
  EXPECT_LT(std::abs(ldx.dot(ldx) - dx.dot(off(ldx))) / ldx.squaredNorm(), 1e-12);
}

}  // namespace
}  // namespace varflow
