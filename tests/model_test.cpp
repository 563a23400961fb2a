// Model-specific behaviour beyond the conformance suites: physics, accuracy, bad input.
#include <gtest/gtest.h>

#include <cmath>

#include "test_states.h"
#include "varflow/core/error.h"
#include "varflow/model/linear_model.h"
#include "varflow/model/lorenz63.h"
#include "varflow/model/lorenz96.h"
#include "varflow/model/trajectory.h"
#include "varflow/testing/conformance.h"
#include "test_messages.h"

namespace varflow {
namespace {

using test::message_of;

TEST(Lorenz96, ForcingIsAFixedPoint) {
  const Lorenz96 model(36, 8.0, 0.05);
  Vector x = Vector::Constant(36, 8.0);
  for (int k = 0; k < 100; ++k) model.step(x);
  EXPECT_LT((x - Vector::Constant(36, 8.0)).cwiseAbs().maxCoeff(), 1e-12);
}

// RK4 is fourth order: halving dt divides the error at a fixed time by about 16.
TEST(Lorenz96, Rk4ConvergesAtFourthOrder) {
  Rng rng = testing::seeded_rng(11);
  const Vector x0 = test::spun_up_state(Lorenz96(40, 8.0, 0.05), Vector::Constant(40, 8.0), rng, 200);
  auto run = [&](double dt, int steps) {
    const Lorenz96 m(40, 8.0, dt);
    return Trajectory::integrate(m, x0, steps).final_state();
  };
  const Vector reference = run(0.2 / 256, 256);
  const double e1 = (run(0.2 / 4, 4) - reference).norm();
  const double e2 = (run(0.2 / 8, 8) - reference).norm();
  const double e3 = (run(0.2 / 16, 16) - reference).norm();
  EXPECT_NEAR(std::log2(e1 / e2), 4.0, 0.4);
  EXPECT_NEAR(std::log2(e2 / e3), 4.0, 0.4);
}

// The F = 8 climatology: mean about 2.35 and standard deviation about 3.6 (Lorenz and Emanuel 1998).
TEST(Lorenz96, ClimatologyIsChaoticWithKnownMoments) {
  Rng rng = testing::seeded_rng(12);
  const Lorenz96 model(40, 8.0, 0.05);
  Vector x = test::spun_up_state(model, Vector::Constant(40, 8.0), rng, 1000);
  double sum = 0.0, sum2 = 0.0;
  const int steps = 4000;
  for (int k = 0; k < steps; ++k) {
    model.step(x);
    sum += x.sum();
    sum2 += x.squaredNorm();
  }
  const double count = 40.0 * steps;
  const double mean = sum / count, sd = std::sqrt(sum2 / count - mean * mean);
  EXPECT_NEAR(mean, 2.35, 0.25);
  EXPECT_NEAR(sd, 3.6, 0.3);
}

TEST(Lorenz96, RejectsBadParameters) {
  EXPECT_EQ(message_of([] { Lorenz96(3, 8.0, 0.05); }), "Lorenz96: n = 3 must be at least 4");
  EXPECT_NE(message_of([] { Lorenz96(40, 8.0, -0.1); }).find("dt = -0.1"), std::string::npos);
  EXPECT_NE(message_of([] { Lorenz96(40, NAN, 0.05); }).find("forcing"), std::string::npos);
}

TEST(Lorenz63, NontrivialEquilibriumIsStationary) {
  const double beta = 8.0 / 3.0, rho = 28.0;
  const double c = std::sqrt(beta * (rho - 1.0));
  const Lorenz63 model(0.01);
  Vector x(3);
  x << c, c, rho - 1.0;
  const Vector x0 = x;
  for (int k = 0; k < 50; ++k) model.step(x);
  EXPECT_LT((x - x0).norm(), 1e-10);
}

TEST(Trajectory, TangentAndAdjointMatchStepwiseComposition) {
  Rng rng = testing::seeded_rng(13);
  const Lorenz63 model;
  const Vector x0 = test::spun_up_state(model, Vector::Constant(3, 1.0), rng, 500);
  const auto traj = Trajectory::integrate(model, x0, 20);
  EXPECT_EQ(traj.steps(), 20);
  const Vector dx0 = rng.normal_vector(3);
  Vector dx = dx0, x = x0;
  for (int k = 0; k < 7; ++k) {
    model.step_tangent(x, dx);
    model.step(x);
  }
  EXPECT_LT((traj.tangent(dx0, 7) - dx).norm(), 1e-12 * dx.norm());
  EXPECT_LT((traj.state(7) - x).norm(), 1e-12 * x.norm());
  const Vector ay = rng.normal_vector(3);
  EXPECT_NEAR(traj.tangent(dx0, 20).dot(ay), dx0.dot(traj.adjoint(ay, 20)), 1e-10 * ay.norm() * dx0.norm());
  EXPECT_THROW(traj.tangent(dx0, 21), InvalidArgument);
}

TEST(Trajectory, BlowUpIsANumericalErrorNamingTheStep) {
  const Lorenz96 model(8, 8.0, 2.0);  // far beyond RK4's stability limit
  Vector x0 = Vector::Constant(8, 8.0);
  x0[3] += 1.0;
  const std::string msg = message_of([&] { Trajectory::integrate(model, x0, 1000); });
  EXPECT_NE(msg.find("at step"), std::string::npos) << msg;
  EXPECT_THROW(Trajectory::integrate(model, x0, 1000), NumericalError);
}

TEST(Trajectory, RejectsBadInitialState) {
  const Lorenz96 model(10);
  EXPECT_THROW(Trajectory::integrate(model, Vector::Zero(9), 5), InvalidArgument);
  Vector x0 = Vector::Zero(10);
  x0[4] = INFINITY;
  EXPECT_NE(message_of([&] { Trajectory::integrate(model, x0, 5); }).find("x0[4] = inf"), std::string::npos);
  EXPECT_THROW(Trajectory::integrate(model, Vector::Zero(10), -1), InvalidArgument);
}

TEST(AdvectionDiffusion1D, ConservesMassAndPreservesConstants) {
  const AdvectionDiffusion1D model(50, -0.8, 0.05, 0.5, 1.0);
  Rng rng = testing::seeded_rng(14);
  Vector x = rng.normal_vector(50);
  const double mass = x.sum();
  for (int k = 0; k < 200; ++k) model.step(x);
  EXPECT_NEAR(x.sum(), mass, 1e-10 * std::max(1.0, std::abs(mass)));
  Vector c = Vector::Constant(50, 3.0);
  model.step(c);
  EXPECT_LT((c - Vector::Constant(50, 3.0)).norm(), 1e-13);
}

// A pulse moves downstream at speed c: after n steps its centre of mass moved by c n dt.
TEST(AdvectionDiffusion1D, AdvectsAtTheGivenVelocity) {
  const Index n = 200;
  const double c = 1.0, dt = 0.4;
  const AdvectionDiffusion1D model(n, c, 0.0, dt, 1.0);
  Vector x = Vector::Zero(n);
  for (Index i = 40; i < 60; ++i) x[i] = 1.0;
  auto centre = [&](const Vector& v) { return v.dot(Vector::LinSpaced(n, 0.0, double(n - 1))) / v.sum(); };
  const double c0 = centre(x);
  for (int k = 0; k < 100; ++k) model.step(x);
  EXPECT_NEAR(centre(x) - c0, c * dt * 100, 0.5);
}

TEST(AdvectionDiffusion1D, RejectsUnstableStep) {
  const std::string msg = message_of([] { AdvectionDiffusion1D(50, 1.0, 0.5, 0.9, 1.0); });
  EXPECT_NE(msg.find("Courant number"), std::string::npos) << msg;
  EXPECT_THROW(AdvectionDiffusion1D(50, 1.0, -0.1, 0.1, 1.0), InvalidArgument);
}

TEST(LinearModel, RejectsNonSquareOrNonFiniteMatrix) {
  EXPECT_NE(message_of([] { LinearModel(Matrix::Zero(3, 4)); }).find("3 x 4"), std::string::npos);
  Matrix a = Matrix::Identity(3, 3);
  a(1, 2) = NAN;
  EXPECT_THROW(LinearModel{a}, InvalidArgument);
}

TEST(LinearModel, DenseAndSparseAgree) {
  Rng rng = testing::seeded_rng(15);
  Matrix a(6, 6);
  for (Index j = 0; j < 6; ++j) a.col(j) = rng.normal_vector(6);
  const LinearModel dense(a);
  const LinearModel sparse(Eigen::SparseMatrix<double>(a.sparseView()));
  Vector x1 = rng.normal_vector(6), x2 = x1;
  dense.step(x1);
  sparse.step(x2);
  EXPECT_LT((x1 - x2).norm(), 1e-13 * x1.norm());
}

}  // namespace
}  // namespace varflow
