// Gate 2, adjoint calibration: TL/AD checks of plugged-in pairs (wrapping linearization_checks.h),
// Jacobian probing with per-probe errors and the operator-norm estimate, each on planted faults.
#include <gtest/gtest.h>

#include <Eigen/SVD>
#include <cmath>

#include "linear_gaussian.h"
#include "varflow/core/error.h"
#include "varflow/model/lorenz96.h"
#include "varflow/testing/conformance.h"
#include "varflow/validation/adjoint_calibration.h"

namespace varflow {
namespace {

using test::kDim;

JacobianOperator matrix_operator(const Matrix& a) {
  const Matrix at = a.transpose();
  return {[a](const Vector& v) { return Vector(a * v); }, [at](const Vector& w) { return Vector(at * w); }, a.cols(),
          a.rows()};
}

// A linear map x -> A x as a TL/AD pair whose adjoint applies `adjoint_matrix` (A^T when correct).
LinearizationCase linear_pair(const std::string& name, const Matrix& a, const Matrix& adjoint_matrix, Rng& rng) {
  LinearizedMap m;
  m.nonlinear = [a](const Vector& x) { return Vector(a * x); };
  m.tangent = [a](const Vector& x) { return Vector(a * x); };
  m.adjoint = [adjoint_matrix](const Vector& y) { return Vector(adjoint_matrix * y); };
  m.input_size = a.cols();
  m.output_size = a.rows();
  return {name, m, rng.normal_vector(a.cols())};
}

TEST(OperatorNorm, MatchesLargestSingularValue) {
  Rng rng = testing::seeded_rng(701);
  const Matrix d = Vector::LinSpaced(5, 3.0, 0.5).asDiagonal();
  const JacobianOperator dop = matrix_operator(d);
  const OperatorNormEstimate e = estimate_operator_norm(dop.jvp, dop.vjp, 5, 5, rng);
  EXPECT_TRUE(e.converged);
  EXPECT_NEAR(e.norm, 3.0, 3e-5);  // stopped when the estimate changed by < 1e-6 (relative)
  for (int trial = 0; trial < 3; ++trial) {
    const Matrix a = Matrix::NullaryExpr(7, 4, [&rng] { return rng.normal(); });
    const double sigma = a.jacobiSvd().singularValues()[0];
    const JacobianOperator op = matrix_operator(a);
    const OperatorNormEstimate est = estimate_operator_norm(op.jvp, op.vjp, 7, 4, rng, 1000, 1e-12);
    EXPECT_NEAR(est.norm / sigma, 1.0, 1e-5) << "trial " << trial;
    EXPECT_LE(est.norm, sigma * (1.0 + 1e-12));  // a lower bound
  }
  const JacobianOperator zero = matrix_operator(Matrix::Zero(3, 3));
  EXPECT_EQ(estimate_operator_norm(zero.jvp, zero.vjp, 3, 3, rng).norm, 0.0);
}

TEST(LinearizationCase, CorrectPairsPass) {
  Rng rng = testing::seeded_rng(702);
  const Matrix a = Matrix::NullaryExpr(6, 8, [&rng] { return rng.normal(); });
  const auto r = check_linearization_case(linear_pair("linear", a, a.transpose(), rng), rng);
  EXPECT_TRUE(r.passed()) << r.report_text();
  // A model over a window plugs in through linearize().
  const Lorenz96 model(20, 8.0, 0.05);
  Vector x = Vector::Constant(20, 8.0) + 0.01 * rng.normal_vector(20);
  for (int k = 0; k < 300; ++k) model.step(x);
  const auto m = check_linearization_case({"lorenz96_window", linearize(model, x, 20), x}, rng);
  EXPECT_TRUE(m.passed()) << m.report_text();
}

TEST(LinearizationCase, AdjointWithFlippedSignEntryFailsDotProduct) {
  Rng rng = testing::seeded_rng(703);
  const Matrix a = Matrix::NullaryExpr(6, 8, [&rng] { return rng.normal(); });
  Matrix wrong = a.transpose();
  wrong(4, 2) = -wrong(4, 2);
  const auto r = check_linearization_case(linear_pair("flipped_sign", a, wrong, rng), rng);
  EXPECT_FALSE(r.passed());
  EXPECT_FALSE(r.report.dot_product.passed) << r.report_text();
  EXPECT_GT(r.report.dot_product.relative_error, 1e-6);
  EXPECT_TRUE(r.report.taylor.passed);  // the TL itself is right
}

TEST(LinearizationCase, AdjointWithMissingTermFailsDotProduct) {
  Rng rng = testing::seeded_rng(704);
  const Matrix a = Matrix::NullaryExpr(6, 8, [&rng] { return rng.normal(); });
  Matrix missing = a.transpose();
  missing(1, 5) = 0.0;
  const auto r = check_linearization_case(linear_pair("missing_term", a, missing, rng), rng);
  EXPECT_FALSE(r.report.dot_product.passed) << r.report_text();
}

TEST(JacobianProbing, IdenticalJacobiansPass) {
  Rng rng = testing::seeded_rng(705);
  const JacobianProbeResult r = probe_jacobian({"exact", test::exact_jacobian(), test::exact_jacobian()}, rng);
  EXPECT_TRUE(r.passed()) << r.report();
  EXPECT_EQ(r.probe_errors.size(), 20u);
  EXPECT_EQ(r.max_probe_error, 0.0);
  EXPECT_EQ(r.relative_operator_norm_difference, 0.0);
  EXPECT_NEAR(r.oracle_norm.norm, test::kGain, 1e-12);
}

TEST(JacobianProbing, JacobianScaledBy1Point1Fails) {
  Rng rng = testing::seeded_rng(706);
  const JacobianProbeResult r =
      probe_jacobian({"scaled", matrix_operator(1.1 * test::kGain * Matrix::Identity(kDim, kDim)), test::exact_jacobian()}, rng);
  EXPECT_FALSE(r.probes_passed) << r.report();
  EXPECT_FALSE(r.passed());
  // J_fast - J_oracle = 0.1 J_oracle: every probe sees exactly 10%, and so does the operator norm.
  for (double e : r.probe_errors) EXPECT_NEAR(e, 0.1, 1e-12);
  EXPECT_NEAR(r.relative_operator_norm_difference, 0.1, 1e-12);
  EXPECT_TRUE(r.adjoints_passed);
}

TEST(JacobianProbing, SmallUnstructuredErrorPasses) {
  // A fast Jacobian off by a random 2% (in operator norm) passes both tests.
  Rng rng = testing::seeded_rng(707);
  auto candidate = std::make_shared<test::Candidate>(test::Fault::kApproximate, rng);
  const JacobianProbeResult r = probe_jacobian({"approximate", candidate->jacobian(), test::exact_jacobian()}, rng);
  EXPECT_TRUE(r.passed()) << r.report();
  EXPECT_LE(r.max_probe_error, 0.02 + 1e-12);
  EXPECT_NEAR(r.relative_operator_norm_difference, 0.02, 1e-4);
}

TEST(JacobianProbing, ErrorInOneDirectionFailsOperatorNorm) {
  // J_fast = J_oracle (I + 0.15 u u^T): 15% wrong along u only. A random probe sees 0.15 |<u, v>|
  // (~0.05 on average in 10 dimensions); the power iteration finds the full 15%.
  Rng rng = testing::seeded_rng(708);
  Vector u = rng.normal_vector(kDim);
  u.normalize();
  const Matrix jf = test::kGain * (Matrix::Identity(kDim, kDim) + 0.15 * u * u.transpose());
  const JacobianProbeResult r = probe_jacobian({"one_direction", matrix_operator(jf), test::exact_jacobian()}, rng);
  EXPECT_FALSE(r.operator_norm_passed) << r.report();
  EXPECT_NEAR(r.relative_operator_norm_difference, 0.15, 1e-6);
  EXPECT_LT(r.mean_probe_error, 0.1);
}

TEST(JacobianProbing, VjpThatIsNotTheAdjointFails) {
  Rng rng = testing::seeded_rng(709);
  for (test::Fault f : {test::Fault::kAdjointWrongSign, test::Fault::kAdjointMissingTerm}) {
    auto candidate = std::make_shared<test::Candidate>(f, rng);
    const JacobianProbeResult r = probe_jacobian({"faulty_vjp", candidate->jacobian(), test::exact_jacobian()}, rng);
    EXPECT_FALSE(r.fast_dot_product.passed) << test::fault_name(f) << "\n" << r.report();
    EXPECT_TRUE(r.oracle_dot_product.passed);
    EXPECT_FALSE(r.passed());
  }
}

TEST(AdjointCalibrationGate, CombinesPairsAndProbes) {
  Rng rng = testing::seeded_rng(710);
  auto good = std::make_shared<test::Candidate>(test::Fault::kNone, rng);
  const auto in = test::make_inputs(good, rng);
  const AdjointCalibrationResult r = adjoint_calibration_gate(in.inputs.linearizations, in.inputs.jacobians, rng);
  EXPECT_TRUE(r.passed()) << r.report();
  EXPECT_EQ(r.linearizations.size(), 2u);
  EXPECT_EQ(r.jacobians.size(), 3u);

  auto wrong_sign = std::make_shared<test::Candidate>(test::Fault::kAdjointWrongSign, rng);
  const auto bad_in = test::make_inputs(wrong_sign, rng);
  const AdjointCalibrationResult bad =
      adjoint_calibration_gate(bad_in.inputs.linearizations, bad_in.inputs.jacobians, rng);
  EXPECT_FALSE(bad.passed());
  EXPECT_FALSE(bad.linearizations[0].report.dot_product.passed) << bad.report();  // the mean map's TL/AD pair
  EXPECT_TRUE(bad.linearizations[1].passed());                                     // the observation operator
  EXPECT_NE(bad.report().find("FAIL"), std::string::npos);
}

TEST(AdjointCalibrationGate, RejectsBadInput) {
  Rng rng = testing::seeded_rng(711);
  EXPECT_THROW(adjoint_calibration_gate({}, {}, rng), InvalidArgument);
  JacobianOperator wrong_size = test::exact_jacobian();
  wrong_size.jvp = [](const Vector& v) { return Vector(v.head(kDim - 1)); };
  try {
    probe_jacobian({"short_output", wrong_size, test::exact_jacobian()}, rng);
    ADD_FAILURE() << "no exception";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("short_output"), std::string::npos) << e.what();
  }
  JacobianOperator empty = test::exact_jacobian();
  empty.vjp = nullptr;
  EXPECT_THROW(probe_jacobian({"empty", empty, test::exact_jacobian()}, rng), InvalidArgument);
  AdjointCalibrationOptions bad;
  bad.probes = 0;
  EXPECT_THROW(probe_jacobian({"exact", test::exact_jacobian(), test::exact_jacobian()}, rng, bad), InvalidArgument);
  // A NaN answer is the candidate's failure, not an input error.
  JacobianOperator nan = test::exact_jacobian();
  nan.jvp = [](const Vector& v) { return Vector(Vector::Constant(v.size(), std::nan(""))); };
  const JacobianProbeResult r = probe_jacobian({"nan", nan, test::exact_jacobian()}, rng);
  EXPECT_FALSE(r.passed());
  EXPECT_TRUE(std::isinf(r.max_probe_error));
}

}  // namespace
}  // namespace varflow
