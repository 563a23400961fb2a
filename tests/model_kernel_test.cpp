// The fused model kernels (Lorenz-96, Lorenz-63) and the scratch-based generic Rk4Model path give
// bit for bit the results of the textbook RK4 step, TL and AD written with Eigen expressions (the
// reference implementation below, which is the code the kernels replaced); batched stepping equals
// column-by-column stepping; concurrent const calls from several threads give the same bits.
#include <gtest/gtest.h>

#include <cmath>
#include <thread>
#include <utility>
#include <vector>

#include "test_states.h"
#include "varflow/core/error.h"
#include "varflow/core/random.h"
#include "varflow/model/lorenz63.h"
#include "varflow/model/lorenz96.h"
#include "varflow/model/rk4_model.h"
#include "varflow/nn/trainer.h"
#include "varflow/testing/conformance.h"
#include "varflow/testing/reference_models.h"

namespace varflow {
namespace {

using testing::L63Tendency;
using testing::L96Tendency;
using testing::ReferenceRk4;

// Lorenz-96 through the generic (scratch-based) Rk4Model path.
class GenericLorenz96 final : public Rk4Model {
 public:
  GenericLorenz96(Index n, double forcing, double dt) : Rk4Model(dt), t_{n, forcing} {}
  Index state_size() const override { return t_.n; }
  std::string name() const override { return "generic_lorenz96"; }

 protected:
  void tendency(const Vector& x, Vector& f) const override { t_.f(x, f); }
  void tendency_tangent(const Vector& x, const Vector& dx, Vector& df) const override { t_.tangent(x, dx, df); }
  void tendency_adjoint(const Vector& x, const Vector& a, Vector& ax) const override { t_.adjoint(x, a, ax); }

 private:
  L96Tendency t_;
};

void expect_bitwise_equal(const Vector& a, const Vector& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (Index i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], b[i]) << what << " differs at " << i;
}

// Steps, TLs and ADs `model` and `ref` along a trajectory from x, comparing bits at every step.
template <class R>
void expect_model_matches_reference(const Model& model, const R& ref, Vector x, Rng& rng, int steps) {
  const Index n = x.size();
  for (int k = 0; k < steps; ++k) {
    const Vector dx = rng.normal_vector(n), ax = rng.normal_vector(n);
    Vector d1 = dx, d2 = dx, a1 = ax, a2 = ax;
    model.step_tangent(x, d1);
    ref.tangent(x, d2);
    expect_bitwise_equal(d1, d2, model.name() + " TL at step " + std::to_string(k));
    model.step_adjoint(x, a1);
    ref.adjoint(x, a2);
    expect_bitwise_equal(a1, a2, model.name() + " AD at step " + std::to_string(k));
    Vector x1 = x;
    model.step(x1);
    ref.step(x);
    expect_bitwise_equal(x1, x, model.name() + " step " + std::to_string(k));
  }
}

TEST(ModelKernels, Lorenz96KernelsMatchTheGenericRk4BitForBit) {
  Rng rng = testing::seeded_rng(3);
  for (Index n : {4, 5, 6, 7, 40, 1001, 2048, 2049, 5000}) {
    const Lorenz96 model(n, 8.0, 0.05);
    const ReferenceRk4<L96Tendency> ref{{n, 8.0}, 0.05};
    const Vector x0 = test::spun_up_state(model, Vector::Constant(n, 8.0), rng, 50);
    expect_model_matches_reference(model, ref, x0, rng, 20);
    const GenericLorenz96 generic(n, 8.0, 0.05);
    expect_model_matches_reference(generic, ref, x0, rng, 5);
  }
}

TEST(ModelKernels, Lorenz63KernelsMatchTheGenericRk4BitForBit) {
  Rng rng = testing::seeded_rng(4);
  const Lorenz63 model;
  const ReferenceRk4<L63Tendency> ref{{}, 0.01};
  Vector x0(3);
  x0 << 1.0, 2.0, 20.0;
  x0 = test::spun_up_state(model, x0, rng, 200);
  expect_model_matches_reference(model, ref, x0, rng, 50);
}

TEST(ModelKernels, StepBatchEqualsColumnByColumnSteps) {
  Rng rng = testing::seeded_rng(5);
  const Lorenz96 l96(40, 8.0, 0.05), l96_tiled(4100, 8.0, 0.05);
  const Lorenz63 l63;
  for (const Model* model : {static_cast<const Model*>(&l96), static_cast<const Model*>(&l96_tiled),
                             static_cast<const Model*>(&l63)}) {
    const Index n = model->state_size();
    Matrix states(n, 7);
    for (Index c = 0; c < states.cols(); ++c) states.col(c) = Vector::Constant(n, 8.0) + rng.normal_vector(n);
    Matrix batch = states;
    model->step_batch(batch);
    for (Index c = 0; c < states.cols(); ++c) {
      Vector x = states.col(c);
      model->step(x);
      expect_bitwise_equal(batch.col(c), x, model->name() + " column " + std::to_string(c));
    }
    Matrix wrong(n + 1, 2);
    wrong.setZero();
    EXPECT_THROW(model->step_batch(wrong), InvalidArgument);
    Matrix bad = states;
    bad(0, 3) = std::nan("");
    EXPECT_THROW(model->step_batch(bad), InvalidArgument);
  }
}

// Batches large enough for step_batch to split their columns over two OpenMP threads (n = 40 and the
// tiled n = 2048): the same bits as stepping each column alone.
TEST(ModelKernels, ThreadedStepBatchEqualsColumnByColumnSteps) {
  const nn::ScopedThreadCount threads(2);
  Rng rng = testing::seeded_rng(6);
  const Lorenz96 l96(40, 8.0, 0.05), l96_tiled(2048, 8.0, 0.05);
  for (const auto& [model, cols] : {std::pair<const Lorenz96*, Index>{&l96, 2001}, {&l96_tiled, 41}}) {
    const Index n = model->state_size();
    Matrix states(n, cols);
    for (Index c = 0; c < cols; ++c) states.col(c) = Vector::Constant(n, 8.0) + rng.normal_vector(n);
    Matrix batch = states;
    model->step_batch(batch);
    for (Index c = 0; c < cols; ++c) {
      Vector x = states.col(c);
      model->step(x);
      expect_bitwise_equal(batch.col(c), x, model->name() + " column " + std::to_string(c));
    }
    Matrix bad = states;
    bad(n - 1, cols - 1) = std::nan("");
    EXPECT_THROW(model->step_batch(bad), InvalidArgument) << model->name();
    EXPECT_EQ(bad.leftCols(cols - 1), states.leftCols(cols - 1)) << "a refused batch was stepped";
  }
}

TEST(ModelKernels, ConcurrentConstCallsGiveTheSameBits) {
  const Lorenz96 model(400, 8.0, 0.05);
  Rng rng = testing::seeded_rng(6);
  const Vector x0 = Vector::Constant(400, 8.0) + rng.normal_vector(400);
  const Vector d0 = rng.normal_vector(400);
  auto run = [&](Vector& x, Vector& d, Vector& a) {
    x = x0;
    d = d0;
    a = d0;
    for (int k = 0; k < 200; ++k) {
      model.step_tangent(x, d);
      model.step_adjoint(x, a);
      model.step(x);
    }
  };
  Vector xs, ds, as;
  run(xs, ds, as);
  std::vector<Vector> x(4), d(4), a(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) threads.emplace_back([&, t] { run(x[t], d[t], a[t]); });
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) {
    expect_bitwise_equal(x[t], xs, "thread state");
    expect_bitwise_equal(d[t], ds, "thread TL");
    expect_bitwise_equal(a[t], as, "thread AD");
  }
}

}  // namespace
}  // namespace varflow
