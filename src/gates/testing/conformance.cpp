#include "varflow/testing/conformance.h"

#include <Eigen/Cholesky>
#include <cmath>
#include <iostream>

#include "varflow/core/error.h"

namespace varflow::testing {

// A user may instantiate only some of the suites.
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(ModelConformance);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(ObservationOperatorConformance);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(CovarianceConformance);

std::string CaseName::operator()(const ::testing::TestParamInfo<ModelCase>& info) const { return info.param.name; }
std::string CaseName::operator()(const ::testing::TestParamInfo<ObservationOperatorCase>& info) const {
  return info.param.name;
}
std::string CaseName::operator()(const ::testing::TestParamInfo<CovarianceCase>& info) const {
  return info.param.name;
}

void PrintTo(const ModelCase& c, std::ostream* os) { *os << c.name; }
void PrintTo(const ObservationOperatorCase& c, std::ostream* os) { *os << c.name; }
void PrintTo(const CovarianceCase& c, std::ostream* os) { *os << c.name; }

Rng seeded_rng(std::uint64_t default_seed) {
  const std::uint64_t seed = seed_from_env(default_seed);
  std::cout << "[   seed   ] VARFLOW_TEST_SEED=" << seed << std::endl;
  ::testing::Test::RecordProperty("seed", std::to_string(seed));
  return Rng(seed);
}

namespace {
void expect_invalid_argument(const std::function<void()>& call, const std::string& fragment) {
  try {
    call();
    ADD_FAILURE() << "expected varflow::InvalidArgument mentioning '" << fragment << "'";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos)
        << "message '" << e.what() << "' does not mention '" << fragment << "'";
  }
}
}  // namespace

// ---- models ------------------------------------------------------------------------------------------
TEST_P(ModelConformance, OneStepAdjointDotProduct) {
  const auto& c = GetParam();
  auto model = c.make();
  Rng rng = seeded_rng(101);
  const Vector x = c.state(rng);
  for (int trial = 0; trial < 3; ++trial) {
    const auto map = linearize(*model, x, 1);
    const auto r = dot_product_test(map.tangent, map.adjoint, rng.normal_vector(x.size()),
                                    rng.normal_vector(x.size()), c.tolerances);
    EXPECT_TRUE(r.passed) << model->name() << ": " << r.report();
  }
}

TEST_P(ModelConformance, OneStepTaylor) {
  const auto& c = GetParam();
  auto model = c.make();
  Rng rng = seeded_rng(102);
  const Vector x = c.state(rng);
  const auto report = check_linearization(linearize(*model, x, 1), x, rng, c.tolerances);
  EXPECT_TRUE(report.taylor.passed) << model->name() << ": " << report.taylor.report();
  EXPECT_TRUE(report.linearity.passed) << model->name() << ": " << report.linearity.report();
}

TEST_P(ModelConformance, WindowAdjointDotProduct) {
  const auto& c = GetParam();
  ASSERT_GE(c.window_steps, 50);
  auto model = c.make();
  Rng rng = seeded_rng(103);
  const Vector x = c.state(rng);
  const auto map = linearize(*model, x, c.window_steps);
  const auto r = dot_product_test(map.tangent, map.adjoint, rng.normal_vector(x.size()),
                                  rng.normal_vector(x.size()), c.tolerances);
  EXPECT_TRUE(r.passed) << model->name() << " over " << c.window_steps << " steps: " << r.report();
}

TEST_P(ModelConformance, WindowTaylorAndLinearity) {
  const auto& c = GetParam();
  auto model = c.make();
  Rng rng = seeded_rng(104);
  const Vector x = c.state(rng);
  const auto report = check_linearization(linearize(*model, x, c.window_steps), x, rng, c.tolerances);
  EXPECT_TRUE(report.taylor.passed) << model->name() << " over " << c.window_steps
                                    << " steps: " << report.taylor.report();
  EXPECT_TRUE(report.linearity.passed) << model->name() << ": " << report.linearity.report();
}

TEST_P(ModelConformance, RejectsBadInput) {
  auto model = GetParam().make();
  const Index n = model->state_size();
  expect_invalid_argument([&] { Vector x = Vector::Zero(n + 1); model->step(x); }, "size");
  expect_invalid_argument([&] { Vector x = Vector::Zero(n); x[n - 1] = std::nan(""); model->step(x); },
                          "not finite");
  expect_invalid_argument([&] { Vector dx = Vector::Zero(n - 1); model->step_tangent(Vector::Zero(n), dx); },
                          "dx");
  expect_invalid_argument([&] { Vector ax = Vector::Zero(n + 2); model->step_adjoint(Vector::Zero(n), ax); },
                          "ax");
}

// Second-order adjoints: Taylor and symmetry checks when the model declares them, otherwise a clear
// refusal naming the model.
TEST_P(ModelConformance, SecondOrderAdjointOneStepAndWindow) {
  const auto& c = GetParam();
  auto model = c.make();
  Rng rng = seeded_rng(105);
  const Vector x = c.state(rng);
  const Index n = model->state_size();
  if (!model->has_second_order()) {
    Vector out;
    expect_invalid_argument([&] { model->step_second_order_adjoint(x, x, x, out); }, "second-order");
    return;
  }
  for (Index steps : {Index{1}, c.second_order_window_steps}) {
    const auto map = linearize_second_order(*model, x, rng.normal_vector(n), steps);
    const auto report = check_second_order(map, x, rng, c.tolerances);
    EXPECT_TRUE(report.taylor.passed) << model->name() << " over " << steps << " steps: "
                                      << report.taylor.report();
    EXPECT_TRUE(report.symmetry.passed) << model->name() << " over " << steps << " steps: "
                                        << report.symmetry.report();
  }
  Vector out;
  expect_invalid_argument([&] { model->step_second_order_adjoint(x, Vector::Zero(n + 1), x, out); }, "dx");
  expect_invalid_argument([&] { model->step_second_order_adjoint(x, x, Vector::Zero(n - 1), out); }, "ax_next");
}

// ---- observation operators -----------------------------------------------------------------------------
TEST_P(ObservationOperatorConformance, AdjointDotProduct) {
  const auto& c = GetParam();
  auto op = c.make();
  Rng rng = seeded_rng(201);
  const Vector x = c.state(rng);
  for (int trial = 0; trial < 3; ++trial) {
    const auto map = linearize(*op, x);
    const auto r = dot_product_test(map.tangent, map.adjoint, rng.normal_vector(op->state_size()),
                                    rng.normal_vector(op->obs_size()), c.tolerances);
    EXPECT_TRUE(r.passed) << op->name() << ": " << r.report();
  }
}

TEST_P(ObservationOperatorConformance, TaylorAndLinearity) {
  const auto& c = GetParam();
  auto op = c.make();
  Rng rng = seeded_rng(202);
  const Vector x = c.state(rng);
  const auto report = check_linearization(linearize(*op, x), x, rng, c.tolerances);
  EXPECT_TRUE(report.taylor.passed) << op->name() << ": " << report.taylor.report();
  EXPECT_TRUE(report.linearity.passed) << op->name() << ": " << report.linearity.report();
}

TEST_P(ObservationOperatorConformance, SecondOrderAdjoint) {
  const auto& c = GetParam();
  auto op = c.make();
  Rng rng = seeded_rng(203);
  const Vector x = c.state(rng);
  const Index n = op->state_size(), m = op->obs_size();
  Vector out;
  if (!op->has_second_order()) {
    expect_invalid_argument([&] { op->apply_second_order_adjoint(x, x, Vector::Zero(m), out); }, "second-order");
    return;
  }
  for (int trial = 0; trial < 3; ++trial) {
    const auto report = check_second_order(linearize_second_order(*op, x, rng.normal_vector(m)), x, rng, c.tolerances);
    EXPECT_TRUE(report.taylor.passed) << op->name() << ": " << report.taylor.report();
    EXPECT_TRUE(report.symmetry.passed) << op->name() << ": " << report.symmetry.report();
  }
  expect_invalid_argument([&] { op->apply_second_order_adjoint(x, Vector::Zero(n + 1), Vector::Zero(m), out); },
                          "dx");
  expect_invalid_argument([&] { op->apply_second_order_adjoint(x, x, Vector::Zero(m + 1), out); }, "ay");
}

TEST_P(ObservationOperatorConformance, RejectsBadInput) {
  auto op = GetParam().make();
  const Index n = op->state_size(), m = op->obs_size();
  Vector y;
  expect_invalid_argument([&] { op->apply(Vector::Zero(n + 1), y); }, "size");
  expect_invalid_argument([&] { Vector x = Vector::Zero(n); x[0] = INFINITY; op->apply(x, y); }, "not finite");
  expect_invalid_argument([&] { op->apply_adjoint(Vector::Zero(n), Vector::Zero(m + 1), y); }, "ay");
}

// ---- covariances -------------------------------------------------------------------------------------------
TEST_P(CovarianceConformance, SymmetryInverseAndSquareRoot) {
  const auto& c = GetParam();
  auto cov = c.make();
  Rng rng = seeded_rng(301);
  for (int trial = 0; trial < 3; ++trial) {
    const auto r = check_covariance(*cov, rng, c.tolerances);
    EXPECT_TRUE(r.passed()) << cov->name() << ": " << r.report();
  }
}

TEST_P(CovarianceConformance, LogDeterminantMatchesDenseCholesky) {
  auto cov = GetParam().make();
  const Matrix d = cov->dense();
  Eigen::LLT<Matrix> llt(d);
  ASSERT_EQ(llt.info(), Eigen::Success) << cov->name() << ": dense form is not SPD";
  const double expected = 2.0 * Eigen::MatrixXd(llt.matrixL()).diagonal().array().log().sum();
  EXPECT_NEAR(cov->log_determinant(), expected, 1e-9 * std::max(1.0, std::abs(expected))) << cov->name();
}

TEST_P(CovarianceConformance, SampleCovarianceMatches) {
  const auto& c = GetParam();
  auto cov = c.make();
  Rng rng = seeded_rng(302);
  const auto r = check_covariance_sampling(*cov, rng, c.sampling_draws, c.tolerances);
  EXPECT_TRUE(r.passed) << cov->name() << ": " << r.report();
}

TEST_P(CovarianceConformance, RejectsBadInput) {
  auto cov = GetParam().make();
  const Index n = cov->size();
  expect_invalid_argument([&] { cov->multiply(Vector::Zero(n + 1)); }, "size");
  expect_invalid_argument([&] { Vector x = Vector::Zero(n); x[0] = std::nan(""); cov->inverse_multiply(x); },
                          "not finite");
}

}  // namespace varflow::testing
