// The distributed code paths on two ranks (run by ctest as `mpirun -np 2 mpi_test`) against the same
// calls on one rank (the serial communicator), in the same process: collectives, distributed_map and
// its failure path, blocked sums, the SBC gate, data-parallel training and validate_model (its Jacobian
// probes of a Gaussian head split by case, of a flow head inside each product). design/parallel.md.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "varflow/amortized/amortized_posterior.h"
#include "varflow/amortized/problems.h"
#include "varflow/core/communicator.h"
#include "varflow/core/error.h"
#include "varflow/nn/layers.h"
#include "varflow/nn/trainer.h"
#include "varflow/report/validation_report.h"
#include "varflow/validation/sbc.h"

namespace varflow {
namespace {

const Communicator* world = nullptr;  // the job's communicator, from main

const Communicator& comm() { return *world; }

TEST(Mpi, RunsOnTwoRanks) {
  ASSERT_EQ(comm().size(), 2) << "run as mpirun -np 2 " << comm().describe();
}

TEST(Mpi, CollectivesSumGatherAndBroadcast) {
  const int me = comm().rank();
  std::vector<double> v = {1.0 + me, 10.0 * me};
  comm().allreduce_sum(v.data(), 2);
  EXPECT_EQ(v, (std::vector<double>{3.0, 10.0}));
  const auto all = comm().allgather(std::string(static_cast<std::size_t>(me + 1), static_cast<char>('a' + me)));
  EXPECT_EQ(all, (std::vector<std::string>{"a", "bb"}));
  std::string text = me == 1 ? "from rank 1" : "";
  comm().broadcast(text, 1);
  EXPECT_EQ(text, "from rank 1");
  const auto alone = comm().split(me, 0);
  EXPECT_EQ(alone->size(), 1);
}

std::string square_and_draw(Index i) {
  RecordWriter w;
  w.put(static_cast<double>(i * i));
  w.put(item_rng(99, i).normal());
  return w.bytes();
}

TEST(Mpi, DistributedMapGivesTheSerialRecordsInItemOrder) {
  auto name = [](Index i) { return format_message("item_", i); };
  const auto two = distributed_map(comm(), 7, "test", name, square_and_draw);
  const auto one = distributed_map(serial_communicator(), 7, "test", name, square_and_draw);
  EXPECT_EQ(two, one);
}

TEST(Mpi, AFailingItemOnRankOneStopsBothRanksNamingTheRankAndTheItem) {
  auto name = [](Index i) { return format_message("item_", i); };
  // 7 items over 2 ranks, cyclic: rank 0 holds items 0, 2, 4, 6, rank 1 items 1, 3, 5.
  auto failing = [](Index i) -> std::string {
    if (i == 5) throw NumericalError("non-finite oracle mean");
    return square_and_draw(i);
  };
  try {
    distributed_map(comm(), 7, "validate_model", name, failing);
    FAIL() << "rank " << comm().rank() << ": no exception";
  } catch (const NumericalError& e) {
    EXPECT_STREQ(e.what(), "validate_model: rank 1, item_5: non-finite oracle mean");
    EXPECT_TRUE(is_agreed_failure(e));
  }
  EXPECT_THROW(run_on_root(comm(), [] { throw InvalidArgument("--out = 'x' is held by pid 1"); }), InvalidArgument);
}

TEST(Mpi, ThreadedItemsGiveTheSerialRecordsAndTheLowestFailure) {
  auto name = [](Index i) { return format_message("item_", i); };
  const auto one = distributed_map(serial_communicator(), 9, "test", name, square_and_draw);
  EXPECT_EQ(distributed_map(comm(), 9, "test", name, square_and_draw, ItemThreads::kOpenMp), one);
  // Items 3 and 7 fail on rank 1 (items 1, 3, 5, 7): its lowest failing item is reported.
  auto failing = [](Index i) -> std::string {
    if (i == 3 || i == 7) throw NumericalError(format_message("solve ", i, " failed"));
    return square_and_draw(i);
  };
  try {
    distributed_map(comm(), 9, "labels", name, failing, ItemThreads::kOpenMp);
    FAIL() << "rank " << comm().rank() << ": no exception";
  } catch (const NumericalError& e) {
    EXPECT_STREQ(e.what(), "labels: rank 1, item_3: solve 3 failed");
  }
}

// Block b's term: a vector of 3 values that depends on b only (as a block of base draws does). Blocks
// 3 and 4 are +-1e16 u, so that adding them to the running sum in block order loses the low bits of
// the first three, while adding the ranks' partial sums (blocks 0..2, then 3..4 = 0) would not.
Matrix block_terms(Index first, Index last) {
  Matrix t(3, last - first);
  const Vector u = item_rng(5, 100).normal_vector(3);
  for (Index b = first; b < last; ++b) {
    t.col(b - first) = b == 3 ? Vector(1e16 * u) : b == 4 ? Vector(-1e16 * u) : item_rng(5, b).normal_vector(3);
  }
  return t;
}

TEST(Mpi, BlockedSumOnTwoRanksEqualsOneRankBitForBit) {
  // 5 blocks over 2 ranks: rank 0 computes blocks 0..2, rank 1 blocks 3..4; 1 block: rank 1 idle.
  for (const Index blocks : {Index{5}, Index{1}, Index{2}}) {
    const Vector one = blocked_sum(serial_communicator(), blocks, 3, "test", block_terms);
    const Vector two = blocked_sum(comm(), blocks, 3, "test", block_terms);
    EXPECT_EQ(std::memcmp(one.data(), two.data(), sizeof(double) * 3), 0) << blocks << " blocks";
    // The serial sum is the terms added in block order, starting from zero.
    Vector expected = Vector::Zero(3);
    const Matrix t = block_terms(0, blocks);
    for (Index b = 0; b < blocks; ++b) expected += t.col(b);
    EXPECT_EQ(std::memcmp(one.data(), expected.data(), sizeof(double) * 3), 0) << blocks << " blocks";
  }
}

TEST(Mpi, AFailingBlockOnRankOneStopsBothRanksNamingTheRankAndItsBlocks) {
  auto failing = [](Index first, Index last) -> Matrix {
    if (last == 5) throw NumericalError("non-finite push_jvp");
    return block_terms(first, last);
  };
  try {
    blocked_sum(comm(), 5, 3, "AmortizedPosterior::mean_jvp", failing);
    FAIL() << "rank " << comm().rank() << ": no exception";
  } catch (const NumericalError& e) {
    EXPECT_STREQ(e.what(), "AmortizedPosterior::mean_jvp: rank 1, blocks 3..4: non-finite push_jvp");
    EXPECT_TRUE(is_agreed_failure(e));
  }
  // A wrong shape is a failure too (here rank 0's: its 3 blocks come back as 2 columns).
  auto wrong = [](Index first, Index last) { return block_terms(first, last == 3 ? last - 1 : last); };
  EXPECT_THROW(blocked_sum(comm(), 5, 3, "test", wrong), Error);
}

TEST(Mpi, OracleLabelsOnTwoRanksEqualOneRankBitForBit) {
  // The Lorenz-96 window (gaussian prior): a 4D-Var MAP, exact J v and the Laplace marginal
  // variances per pair, split over the ranks.
  amortized::WindowProblemOptions o;
  o.model.parameters["n"] = 12;
  o.window = 4;
  o.obs_every = 2;
  o.prior = amortized::WindowPrior::kGaussian;
  o.spinup = 300;
  const amortized::WindowProblem problem(o);
  Rng rng(31);
  const amortized::Dataset data = problem.simulate(7, rng);
  amortized::Dataset one = data, two = data;
  Rng r1(8), r2(8);
  problem.label(one, 5, 2, r1, serial_communicator());
  problem.label(two, 5, 2, r2, comm());
  EXPECT_EQ(one.labels.labelled(), 5);
  EXPECT_TRUE(one.labels.mean.leftCols(5).allFinite());
  EXPECT_EQ(std::memcmp(one.labels.mean.data(), two.labels.mean.data(), sizeof(double) * one.labels.mean.size()), 0);
  EXPECT_EQ(one.labels.dx, two.labels.dx);
  EXPECT_EQ(one.labels.dy, two.labels.dy);
  EXPECT_EQ(r1.uniform(), r2.uniform());  // the same draws taken from the caller's stream
  // Variance labels likewise (the unlabelled pairs stay NaN on every rank).
  EXPECT_EQ(problem.label_variances(one, serial_communicator()).labelled, 5);
  EXPECT_EQ(problem.label_variances(two, comm()).labelled, 5);
  EXPECT_TRUE(one.labels.variance.leftCols(5).allFinite());
  EXPECT_EQ(std::memcmp(one.labels.variance.data(), two.labels.variance.data(),
                        sizeof(double) * one.labels.variance.size()),
            0);
}

// A two-dimensional conjugate Gaussian problem: x ~ N(0, I), y = x + N(0, 0.5^2 I), exact posterior.
SbcProblem gaussian_sbc() {
  SbcProblem p;
  p.prior_sample = [](Rng& g) { return g.normal_vector(2); };
  p.simulate = [](const Vector& x, Rng& g) { return Vector(x + 0.5 * g.normal_vector(2)); };
  p.posterior_samples = [](const Vector& y, Index n, Rng& g) {
    const double gain = 1.0 / 1.25, sd = std::sqrt(0.25 / 1.25);
    Matrix d(2, n);
    for (Index j = 0; j < n; ++j) d.col(j) = gain * y + sd * g.normal_vector(2);
    return d;
  };
  p.prior_variance = Vector::Ones(2);
  return p;
}

TEST(Mpi, SbcGateOnTwoRanksEqualsOneRankExactly) {
  SbcOptions o;
  Rng a(7), b(7);
  const SbcResult two = sbc_gate(gaussian_sbc(), o, a, comm());
  const SbcResult one = sbc_gate(gaussian_sbc(), o, b, serial_communicator());
  EXPECT_EQ(two.ranks, one.ranks);
  EXPECT_EQ(two.mean_posterior_variance, one.mean_posterior_variance);  // summed in simulation order
  EXPECT_EQ(two.passed(), one.passed());
  EXPECT_EQ(a.uniform(), b.uniform());  // the gate leaves the caller's rng alike
}

// Least squares y = A x + c through one dense layer (no randomness in the loss).
class Regression final : public nn::TrainingObjective {
 public:
  Regression(Index n, Rng& rng) : layer_(3, 2), x_(3, n), y_(2, n) {
    params_.add("dense", layer_);
    params_.bind();
    layer_.initialize(rng);
    Eigen::Matrix<double, 2, 3> a;
    a << 1.0, -2.0, 0.5, 0.3, 0.0, 1.5;
    for (Index i = 0; i < x_.size(); ++i) x_.data()[i] = rng.normal();
    y_ = a * x_;
    for (Index i = 0; i < y_.size(); ++i) y_.data()[i] += 0.01 * rng.normal();
  }
  nn::ParameterSet& parameters() override { return params_; }
  double batch_loss(const std::vector<Index>& items, bool gradient, Rng&) override {
    const Index b = static_cast<Index>(items.size());
    Matrix xb(3, b), yb(2, b), out, dx;
    for (Index j = 0; j < b; ++j) {
      xb.col(j) = x_.col(items[static_cast<std::size_t>(j)]);
      yb.col(j) = y_.col(items[static_cast<std::size_t>(j)]);
    }
    if (poison_on_rank == comm().rank() && gradient) return std::nan("");
    if (throw_on_rank == comm().rank() && gradient) throw Error("out of disk");
    layer_.forward(xb, out);
    const Matrix r = out - yb;
    if (gradient) layer_.backward(r / static_cast<double>(b), dx, true);
    return 0.5 * r.squaredNorm() / static_cast<double>(b);
  }
  int poison_on_rank = -1, throw_on_rank = -1;

 private:
  nn::Dense layer_;
  nn::ParameterSet params_;
  Matrix x_, y_;
};

nn::TrainingOptions short_training() {
  nn::TrainingOptions o;
  o.schedule = nn::LearningRateSchedule::kCosine;
  o.epochs = 5;
  o.batch_size = 37;  // odd: the blocks of the two ranks differ in size
  o.learning_rate = 1e-2;
  return o;
}

TEST(Mpi, DataParallelTrainingEqualsOneRankUpToTheOrderOfTheSums) {
  Rng r1(11), r2(11);
  Regression one(600, r1), two(600, r2);
  Rng f1(12), f2(12);
  const auto s1 = nn::fit(one, 540, 60, short_training(), f1);
  const auto s2 = nn::fit(two, 540, 60, short_training(), f2, {}, {}, comm());
  ASSERT_TRUE(s1.ok() && s2.ok());
  EXPECT_EQ(s1.steps, s2.steps);
  EXPECT_EQ(s1.best_epoch, s2.best_epoch);
  const Vector p1 = one.parameters().values(), p2 = two.parameters().values();
  EXPECT_LE((p1 - p2).norm(), 1e-12 * p1.norm()) << "parameters differ by more than round-off";
  ASSERT_EQ(s1.validation_loss.size(), s2.validation_loss.size());
  for (std::size_t e = 0; e < s1.validation_loss.size(); ++e) {
    EXPECT_NEAR(s1.validation_loss[e], s2.validation_loss[e], 1e-12 * s1.validation_loss[e]) << "epoch " << e + 1;
    EXPECT_NEAR(s1.train_loss[e], s2.train_loss[e], 1e-12 * s1.train_loss[e]) << "epoch " << e + 1;
  }
  EXPECT_EQ(f1.uniform(), f2.uniform());  // the same shuffles were drawn
  // The planted difference: training on half the pairs is not the same (the comparison can fail).
  Rng r3(11), f3(12);
  Regression fewer(600, r3);
  nn::fit(fewer, 270, 60, short_training(), f3, {}, {}, comm());
  EXPECT_GT((fewer.parameters().values() - p1).norm(), 1e-6 * p1.norm());
}

TEST(Mpi, ANonFiniteBlockOnRankOneStopsTrainingNamingTheRank) {
  Rng r(11), f(12);
  Regression objective(600, r);
  objective.poison_on_rank = 1;
  const auto s = nn::fit(objective, 540, 60, short_training(), f, {}, {}, comm());
  EXPECT_EQ(s.status, nn::TrainingStatus::kNonFiniteLoss);
  EXPECT_NE(s.message.find("not finite on rank 1, training pairs "), std::string::npos) << s.message;
}

TEST(Mpi, AnExceptionOnRankOneStopsBothRanksNamingTheRankAndItsPairs) {
  Rng r(11), f(12);
  Regression objective(600, r);
  objective.throw_on_rank = 1;
  try {
    nn::fit(objective, 540, 60, short_training(), f, {}, {}, comm());
    FAIL() << "rank " << comm().rank() << ": no exception";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("fit: rank 1, step 1, training pairs "), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("out of disk"), std::string::npos) << e.what();
  }
}

TEST(Mpi, ValidateModelOnTwoRanksGivesTheOneRankReport) {
  Rng rng(31);
  auto setup = amortized::default_setup("linear-gaussian", amortized::HeadType::kGaussian);
  setup.training.epochs = 2;
  const auto problem = amortized::find_problem("linear-gaussian").make(setup);
  amortized::AmortizedPosterior q(setup.network, problem->shape(), rng, problem->name());
  q.train(*problem, 2000, setup.training, rng);
  report::ValidationOptions o;
  o.events = 5;
  o.posterior_draws = 400;
  o.jacobian_cases = 2;
  Rng a(41), b(41);
  const auto two = report::validate_model(q, o, a, {}, comm());
  const auto one = report::validate_model(q, o, b, {}, serial_communicator());
  ASSERT_EQ(two.events.size(), one.events.size());
  for (std::size_t e = 0; e < one.events.size(); ++e) {
    EXPECT_EQ(two.events[e].fast_mean, one.events[e].fast_mean) << one.events[e].name;
    EXPECT_EQ(two.events[e].fast_std, one.events[e].fast_std) << one.events[e].name;
    EXPECT_EQ(two.events[e].oracle_mean, one.events[e].oracle_mean) << one.events[e].name;
  }
  EXPECT_EQ(two.decision.sbc.ranks, one.decision.sbc.ranks);
  ASSERT_EQ(two.decision.adjoint_calibration.jacobians.size(), 2u);
  for (std::size_t k = 0; k < 2; ++k) {
    const auto &j2 = two.decision.adjoint_calibration.jacobians[k], &j1 = one.decision.adjoint_calibration.jacobians[k];
    EXPECT_EQ(j2.name, j1.name);
    EXPECT_EQ(j2.probe_errors, j1.probe_errors);
    EXPECT_EQ(j2.difference_norm.norm, j1.difference_norm.norm);
    EXPECT_EQ(j2.oracle_norm.norm, j1.oracle_norm.norm);
    EXPECT_EQ(j2.relative_operator_norm_difference, j1.relative_operator_norm_difference);
    EXPECT_EQ(j2.passed(), j1.passed());
  }
  for (const Gate g : {Gate::kPosteriorAgreement, Gate::kAdjointCalibration, Gate::kSimulationBasedCalibration}) {
    EXPECT_EQ(two.decision.passed(g), one.decision.passed(g)) << to_string(g);
  }
}

// The Jacobian probes of a flow head: its mean J v and J^T w average over base draws, summed in fixed
// blocks split over the ranks inside each product (all ranks on one case at a time).
TEST(Mpi, FlowHeadJacobianProbesOnTwoRanksEqualOneRankBitForBit) {
  Rng rng(37);
  auto setup = amortized::default_setup("linear-gaussian", amortized::HeadType::kFlow);
  // 5 blocks of 50 draws: 3 on rank 0, 2 on rank 1, so that adding the ranks' partial sums (as an
  // allreduce would) differs from adding the blocks in order.
  setup.network.mean_samples = 250;
  setup.network.flow.width = 16;
  setup.network.flow.layers = 2;
  setup.training.epochs = 1;
  const auto problem = amortized::find_problem("linear-gaussian").make(setup);
  amortized::AmortizedPosterior q(setup.network, problem->shape(), rng, problem->name());
  q.train(*problem, 300, setup.training, rng);
  ASSERT_EQ(q.mean_draw_blocks(), 5);

  // The products themselves, on both ranks, against one rank.
  const Vector y = Vector::LinSpaced(problem->shape().obs_size, -1.0, 1.0);
  const Vector dy = Vector::LinSpaced(problem->shape().obs_size, 0.5, -0.3);
  const Vector a = Vector::LinSpaced(problem->shape().state_size, 0.2, 1.1);
  const Vector jv1 = q.mean_jvp(y, dy), jv2 = q.mean_jvp(y, dy, Mask(), comm());
  const Vector ja1 = q.mean_vjp(y, a), ja2 = q.mean_vjp(y, a, Mask(), comm());
  EXPECT_EQ(std::memcmp(jv1.data(), jv2.data(), sizeof(double) * jv1.size()), 0);
  EXPECT_EQ(std::memcmp(ja1.data(), ja2.data(), sizeof(double) * ja1.size()), 0);
  EXPECT_GT(jv1.norm(), 0.0);

  report::ValidationOptions o;
  o.events = 4;
  o.posterior_draws = 400;
  o.jacobian_cases = 3;
  o.gates.adjoint.probes = 5;
  Rng r1(43), r2(43);
  const auto two = report::validate_model(q, o, r2, {}, comm());
  const auto one = report::validate_model(q, o, r1, {}, serial_communicator());
  const auto &c2 = two.decision.adjoint_calibration.jacobians, &c1 = one.decision.adjoint_calibration.jacobians;
  ASSERT_EQ(c2.size(), 3u);
  ASSERT_EQ(c1.size(), 3u);
  for (std::size_t k = 0; k < 3; ++k) {
    EXPECT_EQ(c2[k].name, c1[k].name);
    ASSERT_EQ(c2[k].probe_errors.size(), 5u);
    EXPECT_EQ(c2[k].probe_errors, c1[k].probe_errors) << c1[k].name;
    EXPECT_EQ(c2[k].difference_norm.norm, c1[k].difference_norm.norm) << c1[k].name;
    EXPECT_EQ(c2[k].difference_norm.iterations, c1[k].difference_norm.iterations) << c1[k].name;
    EXPECT_EQ(c2[k].oracle_norm.norm, c1[k].oracle_norm.norm) << c1[k].name;
    EXPECT_EQ(c2[k].relative_operator_norm_difference, c1[k].relative_operator_norm_difference) << c1[k].name;
    EXPECT_EQ(c2[k].fast_dot_product.lhs, c1[k].fast_dot_product.lhs) << c1[k].name;
    EXPECT_EQ(c2[k].fast_dot_product.rhs, c1[k].fast_dot_product.rhs) << c1[k].name;
    EXPECT_EQ(c2[k].passed(), c1[k].passed()) << c1[k].name;
    EXPECT_TRUE(std::isfinite(c1[k].difference_norm.norm) && c1[k].difference_norm.norm > 0.0) << c1[k].name;
  }
  for (std::size_t e = 0; e < one.events.size(); ++e) EXPECT_EQ(two.events[e].fast_mean, one.events[e].fast_mean);
  EXPECT_EQ(two.decision.sbc.ranks, one.decision.sbc.ranks);
  for (const Gate g : {Gate::kPosteriorAgreement, Gate::kAdjointCalibration, Gate::kSimulationBasedCalibration}) {
    EXPECT_EQ(two.decision.passed(g), one.decision.passed(g)) << to_string(g);
  }
}

}  // namespace
}  // namespace varflow

int main(int argc, char** argv) {
  varflow::ProgramCommunicator job(argc, argv);
  varflow::world = &job.get();
  ::testing::InitGoogleTest(&argc, argv);
  // Both ranks print (a failure names its rank through the test's messages); either failing fails the run.
  double failed = RUN_ALL_TESTS() != 0 ? 1.0 : 0.0;
  job.get().allreduce_sum(&failed, 1);
  if (failed > 0.0 && job.get().is_root()) std::fprintf(stderr, "mpi_test: a rank failed\n");
  return failed > 0.0 ? 1 : 0;
}
