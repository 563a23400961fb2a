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
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(LayerConformance);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(HeadConformance);

std::string CaseName::operator()(const ::testing::TestParamInfo<ModelCase>& info) const { return info.param.name; }
std::string CaseName::operator()(const ::testing::TestParamInfo<ObservationOperatorCase>& info) const {
  return info.param.name;
}
std::string CaseName::operator()(const ::testing::TestParamInfo<CovarianceCase>& info) const {
  return info.param.name;
}

std::string CaseName::operator()(const ::testing::TestParamInfo<LayerCase>& info) const { return info.param.name; }
std::string CaseName::operator()(const ::testing::TestParamInfo<HeadCase>& info) const { return info.param.name; }

void PrintTo(const ModelCase& c, std::ostream* os) { *os << c.name; }
void PrintTo(const ObservationOperatorCase& c, std::ostream* os) { *os << c.name; }
void PrintTo(const CovarianceCase& c, std::ostream* os) { *os << c.name; }
void PrintTo(const LayerCase& c, std::ostream* os) { *os << c.name; }
void PrintTo(const HeadCase& c, std::ostream* os) { *os << c.name; }

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

TEST_P(CovarianceConformance, DiagonalMatchesDenseForm) {
  auto cov = GetParam().make();
  const Vector expected = cov->dense().diagonal();
  const Vector diagonal = cov->diagonal();
  ASSERT_EQ(diagonal.size(), expected.size()) << cov->name();
  EXPECT_LE((diagonal - expected).cwiseAbs().maxCoeff(), 1e-12 * expected.cwiseAbs().maxCoeff()) << cov->name();
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

// ---- network layers ------------------------------------------------------------------------------------
namespace {
Matrix normal_matrix(Rng& rng, Index rows, Index cols, double scale = 1.0) { return scale * rng.normal_matrix(rows, cols); }

Matrix layer_input(const LayerCase& c, Rng& rng, Index rows) {
  return c.input ? c.input(rng, rows, c.batch) : normal_matrix(rng, rows, c.batch);
}

// The case's layer with its parameters bound and initialised from rng; with `perturb`, every
// parameter is then moved by parameter_perturbation N(0, 1) so that zero-initialised layers do not
// hide terms. Held by pointer: params refers to the layer.
struct BoundLayer {
  std::unique_ptr<nn::Layer> layer;
  nn::ParameterSet params;
};
std::unique_ptr<BoundLayer> bind_layer(const LayerCase& c, Rng& rng, bool perturb) {
  auto b = std::make_unique<BoundLayer>();
  b->layer = c.make();
  b->params.add("layer", *b->layer);
  b->params.bind();
  b->layer->initialize(rng);
  if (perturb) {
    for (Index i = 0; i < b->params.size(); ++i) b->params.values()[i] += c.parameter_perturbation * rng.normal();
  }
  return b;
}
}  // namespace

nn::GradientCheckResult check_layer_case(const LayerCase& c, Rng& rng) {
  const auto b = bind_layer(c, rng, true);
  const Matrix x = layer_input(c, rng, b->layer->input_size());
  return nn::check_layer(*b->layer, b->params.size() > 0 ? &b->params : nullptr, x, rng, c.tolerances);
}

nn::SecondOrderCheckResult check_layer_second_order_case(const LayerCase& c, Rng& rng) {
  const auto b = bind_layer(c, rng, true);
  const Matrix x = layer_input(c, rng, b->layer->input_size());
  return nn::check_layer_second_order(*b->layer, x, rng, c.tolerances);
}

TEST_P(LayerConformance, BackwardMatchesFiniteDifferences) {
  const auto& c = GetParam();
  Rng rng = seeded_rng(401);
  const auto r = check_layer_case(c, rng);
  std::cout << c.name << ": " << r.report() << "\n";
  EXPECT_LE(r.input_error, c.tolerances.relative) << c.name << ": input gradient, " << r.report();
  EXPECT_LE(r.parameter_error, c.tolerances.relative) << c.name << ": parameter gradient, " << r.report();
}

TEST_P(LayerConformance, TangentMatchesFiniteDifferences) {
  const auto& c = GetParam();
  Rng rng = seeded_rng(402);
  const auto r = check_layer_case(c, rng);
  EXPECT_LE(r.tangent_error, c.tolerances.relative) << c.name << ": " << r.report();
}

TEST_P(LayerConformance, TangentAndBackwardPassTheDotProductTest) {
  const auto& c = GetParam();
  Rng rng = seeded_rng(403);
  const auto r = check_layer_case(c, rng);
  EXPECT_LE(r.adjoint_error, c.tolerances.relative) << c.name << ": <J dx, dy> vs <dx, J^T dy>, " << r.report();
}

TEST_P(LayerConformance, RejectsInputsOfTheWrongShape) {
  const auto& c = GetParam();
  Rng rng = seeded_rng(404);
  const auto bound = bind_layer(c, rng, false);
  nn::Layer* layer = bound->layer.get();
  const Index n = layer->input_size(), m = layer->output_size();
  Matrix y, dx, dy;
  expect_invalid_argument([&] { layer->forward(Matrix::Zero(n + 1, c.batch), y); }, "rows of x");
  layer->forward(layer_input(c, rng, n), y);
  expect_invalid_argument([&] { layer->backward(Matrix::Zero(m + 1, c.batch), dx); }, "dy");
  expect_invalid_argument([&] { layer->backward(Matrix::Zero(m, c.batch + 1), dx); }, "dy");
  expect_invalid_argument([&] { layer->tangent(Matrix::Zero(n + 1, c.batch), dy); }, "dx");
  expect_invalid_argument([&] { layer->tangent(Matrix::Zero(n, c.batch + 1), dy); }, "dx");
}

// The second-order pass when the layer declares one (against central differences of backward, and its
// symmetry), otherwise a clear refusal naming the layer.
TEST_P(LayerConformance, SecondOrderBackwardMatchesFiniteDifferencesAndIsSymmetric) {
  const auto& c = GetParam();
  Rng rng = seeded_rng(405);
  const auto bound = bind_layer(c, rng, false);
  nn::Layer* layer = bound->layer.get();
  const Index n = layer->input_size(), m = layer->output_size();
  Matrix y, a_in, da_in;
  layer->forward(layer_input(c, rng, n), y);
  if (!layer->has_second_order()) {
    expect_invalid_argument(
        [&] { layer->second_order_backward(Matrix::Zero(n, c.batch), y, y, a_in, da_in); }, "second-order");
    return;
  }
  const Matrix a = Matrix::Zero(m, c.batch), dx = Matrix::Zero(n, c.batch);
  expect_invalid_argument([&] { layer->second_order_backward(Matrix::Zero(n + 1, c.batch), a, a, a_in, da_in); },
                          "dx");
  expect_invalid_argument([&] { layer->second_order_backward(dx, Matrix::Zero(m, c.batch + 1), a, a_in, da_in); },
                          "a is");
  expect_invalid_argument([&] { layer->second_order_backward(dx, a, Matrix::Zero(m + 1, c.batch), a_in, da_in); },
                          "da");
  const auto r = check_layer_second_order_case(c, rng);
  std::cout << c.name << ": second order " << r.report() << "\n";
  EXPECT_TRUE(r.passed) << c.name << ": " << r.report();
}

// ---- amortized heads ------------------------------------------------------------------------------------
std::unique_ptr<HeadFixture> make_head_fixture(const HeadCase& c, Rng& rng) {
  auto f = std::make_unique<HeadFixture>();
  f->head = c.make();
  f->params.add("head", *f->head);
  f->params.bind();
  f->head->initialize(rng);
  // Perturb every parameter so that zero-initialised layers do not hide terms.
  for (Index i = 0; i < f->params.size(); ++i) f->params.values()[i] += c.parameter_perturbation * rng.normal();
  f->x = normal_matrix(rng, f->head->state_size(), c.batch, c.state_scale);
  f->ctx = normal_matrix(rng, f->head->context_size(), c.batch);
  return f;
}

TEST_P(HeadConformance, LossGradientMatchesFiniteDifferences) {
  const auto& c = GetParam();
  Rng rng = seeded_rng(801);
  auto f = make_head_fixture(c, rng);
  const auto r = amortized::check_loss_gradient(*f->head, f->params, f->x, f->ctx, rng, c.tolerances);
  std::cout << c.name << ": " << f->params.size() << " parameters, loss gradient " << r.report() << "\n";
  EXPECT_TRUE(r.passed) << c.name << ": " << r.report();
}

// The derivative-informed loss (likelihood on the first columns plus a weighted quadratic penalty on
// the mean at every column of a wider context), or a clear refusal for a head without one.
TEST_P(HeadConformance, MeanPenaltyGradientMatchesFiniteDifferencesOrIsRefused) {
  const auto& c = GetParam();
  Rng rng = seeded_rng(802);
  auto f = make_head_fixture(c, rng);
  if (!f->head->supports_mean_penalty()) {
    Rng r = rng;
    expect_invalid_argument(
        [&] { f->head->loss_with_mean_penalty(f->x, f->ctx, r, false, nullptr, nullptr, c.penalty_draws); },
        "derivative-informed training");
    return;
  }
  const Index d = f->head->state_size(), extra = std::min<Index>(4, c.batch);
  Matrix ctx(f->ctx.rows(), c.batch + extra);
  ctx << f->ctx, f->ctx.leftCols(extra) + 0.2 * Matrix::Ones(f->ctx.rows(), extra);
  const Matrix target = normal_matrix(rng, d, ctx.cols());
  Matrix weight(d, ctx.cols());
  for (Index i = 0; i < weight.size(); ++i) weight.data()[i] = 0.5 + rng.uniform();
  const amortized::Head::MeanPenalty penalty = [&](const Matrix& m, Matrix* grad) {
    const Matrix r = m - target;
    if (grad) *grad = weight.cwiseProduct(r);
    return 0.5 * weight.cwiseProduct(r).cwiseProduct(r).sum();
  };
  {
    Rng r1 = rng, r2 = rng;
    const double with = f->head->loss_with_mean_penalty(f->x, ctx, r1, false, nullptr, penalty, c.penalty_draws);
    ASSERT_GT(with, f->head->loss(f->x, f->ctx, r2, false, nullptr) + 1e-3) << c.name << ": the penalty adds to the loss";
  }
  const auto r =
      amortized::check_mean_penalty_gradient(*f->head, f->params, f->x, ctx, penalty, c.penalty_draws, rng, c.tolerances);
  std::cout << c.name << ": mean-penalty loss gradient " << r.report() << "\n";
  EXPECT_TRUE(r.passed) << c.name << ": " << r.report();
}

// Variance labels: a head that supports the penalty on its log marginal variances gets the gradient
// of both penalties right (the mean penalty on extra columns, the variance penalty on the first
// x.cols()); one that does not refuses it by name.
TEST_P(HeadConformance, VariancePenaltyLossGradientMatchesFiniteDifferences) {
  const auto& c = GetParam();
  Rng rng = seeded_rng(804);
  auto f = make_head_fixture(c, rng);
  const Index d = f->head->state_size(), b = f->x.cols();
  const Matrix target = normal_matrix(rng, d, b);
  const amortized::Head::VariancePenalty variance_penalty = [&](const Matrix& log_v, Matrix* grad) {
    const Matrix r = log_v - target;
    if (grad) *grad = 0.7 * r;
    return 0.35 * r.squaredNorm();
  };
  if (!f->head->supports_variance_penalty()) {
    Rng r = rng;
    expect_invalid_argument(
        [&] { f->head->loss_with_moment_penalties(f->x, f->ctx, r, false, nullptr, nullptr, variance_penalty, c.penalty_draws); },
        "variance labels");
    return;
  }
  const Matrix mean_target = normal_matrix(rng, d, f->ctx.cols());
  const amortized::Head::MeanPenalty mean_penalty = [&](const Matrix& m, Matrix* grad) {
    const Matrix r = m - mean_target;
    if (grad) *grad = r;
    return 0.5 * r.squaredNorm();
  };
  {
    Rng r1 = rng, r2 = rng;
    const double with =
        f->head->loss_with_moment_penalties(f->x, f->ctx, r1, false, nullptr, nullptr, variance_penalty, c.penalty_draws);
    ASSERT_GT(with, f->head->loss(f->x, f->ctx, r2, false, nullptr) + 1e-3) << c.name << ": the penalty adds to the loss";
  }
  const auto r = amortized::check_moment_penalty_gradient(*f->head, f->params, f->x, f->ctx, mean_penalty,
                                                          variance_penalty, c.penalty_draws, rng, c.tolerances);
  std::cout << c.name << ": variance-penalty loss gradient " << r.report() << "\n";
  EXPECT_TRUE(r.passed) << c.name << ": " << r.report();
}

TEST_P(HeadConformance, MeanJacobianProductsMatchFiniteDifferences) {
  const auto& c = GetParam();
  Rng rng = seeded_rng(803);
  auto f = make_head_fixture(c, rng);
  const auto r = amortized::check_mean_jacobian(*f->head, f->ctx.col(0), c.tolerances);
  std::cout << c.name << ": mean Jacobian " << r.report() << "\n";
  EXPECT_TRUE(r.passed) << c.name << ": " << r.report();
}

TEST_P(HeadConformance, DrawsAndMapsHaveTheHeadsShapes) {
  const auto& c = GetParam();
  Rng rng = seeded_rng(804);
  auto f = make_head_fixture(c, rng);
  EXPECT_EQ(amortized::check_head_shapes(*f->head, f->ctx, rng), "") << c.name;
}

// A log-density consistent with the head's loss, closed form, sampling map and normalisation, or a
// clear refusal.
TEST_P(HeadConformance, LogDensityIsConsistentOrRefused) {
  const auto& c = GetParam();
  Rng rng = seeded_rng(805);
  auto f = make_head_fixture(c, rng);
  if (!f->head->has_log_prob()) {
    expect_invalid_argument([&] { f->head->log_prob(f->x, f->ctx); }, "no tractable log-density");
    return;
  }
  const auto r = amortized::check_log_density(*f->head, f->x, f->ctx, rng, c.density, c.tolerances);
  std::cout << c.name << ": log-density " << r.report() << "\n";
  EXPECT_TRUE(r.passed) << c.name << ": " << r.report();
}

TEST_P(HeadConformance, ClosedFormMomentsOrARefusal) {
  const auto& c = GetParam();
  Rng rng = seeded_rng(806);
  auto f = make_head_fixture(c, rng);
  const Vector ctx = f->ctx.col(0);
  if (!f->head->has_closed_form_moments()) {
    expect_invalid_argument([&] { f->head->closed_form_moments(ctx); }, "no closed-form posterior");
    return;
  }
  const amortized::GaussianMoments m = f->head->closed_form_moments(ctx);
  const Index d = f->head->state_size();
  ASSERT_EQ(m.mean.size(), d) << c.name;
  ASSERT_EQ(m.cholesky.rows(), d) << c.name;
  ASSERT_EQ(m.cholesky.cols(), d) << c.name;
  EXPECT_EQ(Matrix(m.cholesky.triangularView<Eigen::StrictlyUpper>()).cwiseAbs().maxCoeff(), 0.0)
      << c.name << ": L is lower triangular";
  if (m.diagonal && d > 1) {
    EXPECT_EQ(Matrix(m.cholesky.triangularView<Eigen::StrictlyLower>()).cwiseAbs().maxCoeff(), 0.0) << c.name;
  }
  EXPECT_GT(m.cholesky.diagonal().cwiseAbs().minCoeff(), 0.0) << c.name << ": L is regular";
  // The exact mean is the closed form's.
  EXPECT_LE((f->head->mean(ctx) - m.mean).cwiseAbs().maxCoeff(), c.tolerances.log_density) << c.name;
}

}  // namespace varflow::testing
