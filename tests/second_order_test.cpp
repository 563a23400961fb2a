// Second-order adjoints of the models and observation operators: against central differences of the
// adjoint, the Taylor and symmetry checks of validation/linearization_checks.h, and planted faults
// that the checks must catch.
#include <gtest/gtest.h>

#include <cmath>
#include <iostream>

#include "test_states.h"
#include "varflow/core/error.h"
#include "varflow/model/linear_model.h"
#include "varflow/model/lorenz63.h"
#include "varflow/model/lorenz96.h"
#include "varflow/obs/operators.h"
#include "varflow/testing/conformance.h"
#include "varflow/validation/linearization_checks.h"

namespace varflow {
namespace {

Vector lorenz96_state(Rng& rng) {
  return test::spun_up_state(Lorenz96(40, 8.0, 0.05), Vector::Constant(40, 8.0), rng, 500);
}
Vector lorenz63_state(Rng& rng) { return test::spun_up_state(Lorenz63(), Vector::Constant(3, 1.0), rng, 1000); }

// ||(AD(x + h dx) a - AD(x - h dx) a) / 2h - SOA(x, dx, a)|| / ||SOA||: truncation O(h^2).
double central_difference_error(const SecondOrderMap& map, const Vector& x, const Vector& dx, double h) {
  const Vector fd = (map.adjoint_at(x + h * dx) - map.adjoint_at(x - h * dx)) / (2.0 * h);
  const Vector soa = map.second_order(dx);
  return (fd - soa).norm() / soa.norm();
}

TEST(SecondOrderAdjoint, ModelsMatchCentralDifferencesOfTheirAdjoint) {
  Rng rng = testing::seeded_rng(4101);
  const Lorenz96 l96(40, 8.0, 0.05);
  const Lorenz63 l63;
  struct Case {
    const Model* model;
    Vector x;
    Index steps;
  };
  for (const Case& c : {Case{&l96, lorenz96_state(rng), 1}, Case{&l96, lorenz96_state(rng), 8},
                        Case{&l63, lorenz63_state(rng), 1}, Case{&l63, lorenz63_state(rng), 20}}) {
    const Index n = c.model->state_size();
    const SecondOrderMap map = linearize_second_order(*c.model, c.x, rng.normal_vector(n), c.steps);
    const Vector dx = rng.normal_vector(n);
    const double e = central_difference_error(map, c.x, dx, 1e-4);
    std::cout << c.model->name() << ", " << c.steps << " steps: central-difference error " << e << "\n";
    // Truncation ~ h^2 |third derivative| ~ 1e-8 relative, round-off ~ 1e-16 / h.
    EXPECT_LT(e, 1e-6) << c.model->name() << " over " << c.steps << " steps";
    const SecondOrderReport report = check_second_order(map, c.x, rng);
    EXPECT_TRUE(report.passed()) << c.model->name() << "\n" << report.taylor.report() << report.symmetry.report();
  }
}

TEST(SecondOrderAdjoint, ArctanMatchesCentralDifferencesOfItsAdjoint) {
  Rng rng = testing::seeded_rng(4102);
  const ArctanObservation op(40, {0, 3, 3, 17, 39}, 4.0);  // a repeated index adds two terms
  const Vector x = lorenz96_state(rng);
  const SecondOrderMap map = linearize_second_order(op, x, rng.normal_vector(op.obs_size()));
  const Vector dx = rng.normal_vector(40);
  const double e = central_difference_error(map, x, dx, 1e-4);
  std::cout << op.name() << ": central-difference error " << e << "\n";
  EXPECT_LT(e, 1e-6);
  const SecondOrderReport report = check_second_order(map, x, rng);
  EXPECT_TRUE(report.passed()) << report.taylor.report() << report.symmetry.report();
}

TEST(SecondOrderAdjoint, LinearModelsAndOperatorsHaveAZeroSecondOrderAdjoint) {
  Rng rng = testing::seeded_rng(4103);
  const AdvectionDiffusion1D model(16, 1.0, 0.1, 0.5, 1.0);
  const IdentityObservation id(16);
  const SubsetObservation subset = SubsetObservation::every(16, 3);
  const LinearObservation linear(Matrix::Ones(2, 16));
  Vector out;
  ASSERT_TRUE(model.has_second_order());
  model.step_second_order_adjoint(rng.normal_vector(16), rng.normal_vector(16), rng.normal_vector(16), out);
  EXPECT_EQ(out, Vector::Zero(16));
  for (const ObservationOperator* op : std::initializer_list<const ObservationOperator*>{&id, &subset, &linear}) {
    ASSERT_TRUE(op->has_second_order()) << op->name();
    op->apply_second_order_adjoint(rng.normal_vector(16), rng.normal_vector(16), rng.normal_vector(op->obs_size()),
                                   out);
    EXPECT_EQ(out, Vector::Zero(16)) << op->name();
  }
}

// Lorenz-96 whose second-order adjoint has a planted fault.
enum class Fault { kNone, kAsymmetricTerm, kScaled };

class FaultyLorenz96 final : public Rk4Model {
 public:
  explicit FaultyLorenz96(Fault fault) : Rk4Model(0.05), fault_(fault) {}
  Index state_size() const override { return 20; }
  std::string name() const override { return "faulty_lorenz96"; }
  bool has_second_order() const override { return true; }

 protected:
  void tendency(const Vector& x, Vector& f) const override {
    const Index n = x.size();
    for (Index i = 0; i < n; ++i) f[i] = (x[(i + 1) % n] - x[(i + n - 2) % n]) * x[(i + n - 1) % n] - x[i] + 8.0;
  }
  void tendency_tangent(const Vector& x, const Vector& dx, Vector& df) const override {
    inner_tangent(x, dx, df);
  }
  void tendency_adjoint(const Vector& x, const Vector& a, Vector& ax) const override { inner_adjoint(x, a, ax); }
  void tendency_second_order_adjoint(const Vector& x, const Vector& dx, const Vector& a,
                                     Vector& out) const override {
    inner_second_order(x, dx, a, out);
    // Half of one product term dropped: no longer the derivative of J^T a, nor symmetric.
    if (fault_ == Fault::kAsymmetricTerm) {
      for (Index i = 0; i < 20; ++i) out[(i + 19) % 20] -= 0.5 * dx[(i + 1) % 20] * a[i];
    }
    if (fault_ == Fault::kScaled) out *= 0.999;
  }

 private:
  // The derivatives of the Lorenz-96 tendency (n = 20, F = 8), as in lorenz96.cpp.
  static void inner_tangent(const Vector& x, const Vector& dx, Vector& df) {
    const Index n = x.size();
    for (Index i = 0; i < n; ++i) {
      const Index ip1 = (i + 1) % n, im1 = (i + n - 1) % n, im2 = (i + n - 2) % n;
      df[i] = (dx[ip1] - dx[im2]) * x[im1] + (x[ip1] - x[im2]) * dx[im1] - dx[i];
    }
  }
  static void inner_adjoint(const Vector& x, const Vector& a, Vector& ax) {
    const Index n = x.size();
    ax.setZero();
    for (Index i = 0; i < n; ++i) {
      const Index ip1 = (i + 1) % n, im1 = (i + n - 1) % n, im2 = (i + n - 2) % n;
      ax[ip1] += x[im1] * a[i];
      ax[im2] -= x[im1] * a[i];
      ax[im1] += (x[ip1] - x[im2]) * a[i];
      ax[i] -= a[i];
    }
  }
  static void inner_second_order(const Vector&, const Vector& dx, const Vector& a, Vector& out) {
    const Index n = dx.size();
    out.setZero();
    for (Index i = 0; i < n; ++i) {
      const Index ip1 = (i + 1) % n, im1 = (i + n - 1) % n, im2 = (i + n - 2) % n;
      out[ip1] += dx[im1] * a[i];
      out[im2] -= dx[im1] * a[i];
      out[im1] += (dx[ip1] - dx[im2]) * a[i];
    }
  }
  Fault fault_;
};

Vector faulty_state(Rng& rng) {
  return test::spun_up_state(FaultyLorenz96(Fault::kNone), Vector::Constant(20, 8.0), rng, 300);
}

TEST(SecondOrderChecks, CorrectSecondOrderAdjointPasses) {
  Rng rng = testing::seeded_rng(4104);
  const FaultyLorenz96 model(Fault::kNone);
  const Vector x = faulty_state(rng);
  const auto report = check_second_order(linearize_second_order(model, x, rng.normal_vector(20), 3), x, rng);
  EXPECT_TRUE(report.passed()) << report.taylor.report() << report.symmetry.report();
}

TEST(SecondOrderChecks, AsymmetricSecondOrderAdjointFailsSymmetry) {
  Rng rng = testing::seeded_rng(4105);
  const FaultyLorenz96 model(Fault::kAsymmetricTerm);
  const Vector x = faulty_state(rng);
  const auto report = check_second_order(linearize_second_order(model, x, rng.normal_vector(20), 1), x, rng);
  EXPECT_FALSE(report.symmetry.passed) << report.symmetry.report();
  EXPECT_FALSE(report.taylor.passed) << report.taylor.report();
}

TEST(SecondOrderChecks, SecondOrderAdjointOffBy0Point1PercentFailsTaylor) {
  Rng rng = testing::seeded_rng(4106);
  const FaultyLorenz96 model(Fault::kScaled);
  const Vector x = faulty_state(rng);
  const auto report = check_second_order(linearize_second_order(model, x, rng.normal_vector(20), 1), x, rng);
  EXPECT_FALSE(report.taylor.passed) << report.taylor.report();
  EXPECT_GT(report.taylor.min_ratio, 1e-4) << report.taylor.report();
}

TEST(SecondOrderAdjoint, ModelWithoutOneRefusesNamingIt) {
  // A user model that implements only the first-order functions.
  class FirstOrderOnly final : public Model {
   public:
    Index state_size() const override { return 2; }
    std::string name() const override { return "first_order_only"; }

   protected:
    void do_step(Vector&) const override {}
    void do_step_tangent(const Vector&, Vector&) const override {}
    void do_step_adjoint(const Vector&, Vector&) const override {}
  };
  const FirstOrderOnly model;
  EXPECT_FALSE(model.has_second_order());
  Vector out;
  try {
    model.step_second_order_adjoint(Vector::Zero(2), Vector::Zero(2), Vector::Zero(2), out);
    ADD_FAILURE() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("first_order_only"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("second-order"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace varflow
