// The linearisation checks must fail on planted faults and pass on correct pairs.
#include <gtest/gtest.h>

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

}  // namespace
}  // namespace varflow
