// Optimizer, schedule, clipping and the training loop (early stopping, NaN status, determinism).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <numbers>

#include <Eigen/Cholesky>

#include "varflow/core/error.h"
#include "varflow/nn/layers.h"
#include "varflow/nn/optimizer.h"
#include "varflow/nn/trainer.h"
#include "varflow/testing/conformance.h"
#include "../test_messages.h"

namespace varflow::nn {
namespace {

TEST(AdamW, FirstStepsMatchTheAlgorithm) {
  // One coordinate, constant gradient g: m^ = g, v^ = g^2 at every step, so each step moves
  // lr * (sign(g) * g/(|g| + eps) + wd * theta).
  AdamW adam(2, AdamWOptions{0.9, 0.999, 1e-8, 0.1}, (Vector(2) << 1.0, 0.0).finished());
  Vector theta(2), g(2);
  theta << 1.0, 1.0;
  g << 0.5, -2.0;
  adam.step(theta, g, 0.01);
  EXPECT_NEAR(theta[0], 1.0 - 0.01 * (0.5 / (0.5 + 1e-8) + 0.1 * 1.0), 1e-14);
  EXPECT_NEAR(theta[1], 1.0 + 0.01 * (2.0 / (2.0 + 1e-8)), 1e-14);  // not decayed (mask 0)
  const double t0 = theta[0];
  adam.step(theta, g, 0.01);
  EXPECT_NEAR(theta[0], t0 - 0.01 * (0.5 / (0.5 + 1e-8) + 0.1 * t0), 1e-14);
}

TEST(AdamW, RejectsBadOptions) {
  EXPECT_THROW(AdamW(1, AdamWOptions{1.0, 0.999, 1e-8, 0.0}, Vector::Ones(1)), InvalidArgument);
  EXPECT_THROW(AdamW(1, AdamWOptions{0.9, 0.999, 1e-8, -1.0}, Vector::Ones(1)), InvalidArgument);
  EXPECT_THROW(AdamW(2, AdamWOptions{}, Vector::Ones(1)), InvalidArgument);
}

TEST(Clipping, ScalesToTheMaximumNorm) {
  Vector g(2);
  g << 3.0, 4.0;
  EXPECT_DOUBLE_EQ(clip_gradient_norm(g, 1.0), 5.0);
  EXPECT_NEAR(g.norm(), 1.0, 1e-15);
  EXPECT_NEAR(g[0] / g[1], 0.75, 1e-15);
  Vector h(1);
  h << 0.5;
  clip_gradient_norm(h, 1.0);
  EXPECT_EQ(h[0], 0.5);
  clip_gradient_norm(h, 0.0);  // disabled
  EXPECT_EQ(h[0], 0.5);
}

TEST(CosineSchedule, WarmupPeakAndFinalValue) {
  const CosineSchedule s(1e-2, 10, 110, 0.1);
  EXPECT_NEAR(s(0), 1e-3, 1e-15);
  EXPECT_NEAR(s(9), 1e-2, 1e-15);
  EXPECT_NEAR(s(10), 1e-2, 1e-15);
  EXPECT_NEAR(s(60), 1e-2 * (0.1 + 0.9 * 0.5), 1e-15);  // half-way down the cosine
  EXPECT_NEAR(s(110), 1e-3, 1e-15);
  EXPECT_NEAR(s(500), 1e-3, 1e-15);
}

// Least-squares regression y = A x + c through a Dense layer: the optimum is known exactly.
class Regression final : public TrainingObjective {
 public:
  // noise_sd: of the observations y; the fitted weights fluctuate around least_squares() by about it.
  Regression(Index n, Rng& rng, double noise_sd = 0.01) : layer_(3, 2), x_(3, n), y_(2, n) {
    params_.add("dense", layer_);
    params_.bind();
    layer_.initialize(rng);
    a_ << 1.0, -2.0, 0.5, 0.3, 0.0, 1.5;
    c_ << 0.2, -0.7;
    for (Index i = 0; i < x_.size(); ++i) x_.data()[i] = rng.normal();
    y_ = (a_ * x_).colwise() + c_;
    for (Index i = 0; i < y_.size(); ++i) y_.data()[i] += noise_sd * rng.normal();
  }
  // The exact minimiser [A c] (2 x 4) of the mean loss over items 0 .. n - 1.
  Matrix least_squares(Index n) const {
    Matrix design(4, n);
    design.topRows(3) = x_.leftCols(n);
    design.row(3).setOnes();
    return (design * design.transpose()).ldlt().solve(design * y_.leftCols(n).transpose()).transpose();
  }
  // The current [A c] (2 x 4).
  Matrix weights() {
    Matrix w(2, 4);
    w << layer_.weight(), layer_.bias();
    return w;
  }
  ParameterSet& parameters() override { return params_; }
  double batch_loss(const std::vector<Index>& items, bool gradient, Rng&) override {
    const Index b = static_cast<Index>(items.size());
    Matrix xb(3, b), yb(2, b), out, dx;
    for (Index j = 0; j < b; ++j) {
      xb.col(j) = x_.col(items[static_cast<std::size_t>(j)]);
      yb.col(j) = y_.col(items[static_cast<std::size_t>(j)]);
    }
    layer_.forward(xb, out);
    const Matrix r = out - yb;
    if (gradient) layer_.backward(r / static_cast<double>(b), dx, true);
    ++calls;
    if (poison_at > 0 && calls == poison_at) return std::nan("");
    return 0.5 * r.squaredNorm() / static_cast<double>(b);
  }
  Dense layer_;
  Eigen::Matrix<double, 2, 3> a_;
  Eigen::Vector2d c_;
  int calls = 0;
  int poison_at = 0;

 private:
  ParameterSet params_;
  Matrix x_, y_;
};

// 60 epochs of the cosine schedule: enough to recover the regression's weights to 0.01.
TrainingOptions regression_options() {
  TrainingOptions o;
  o.schedule = LearningRateSchedule::kCosine;
  o.epochs = 60;
  o.batch_size = 64;
  o.learning_rate = 2e-2;
  o.weight_decay = 0.0;
  return o;
}

TEST(Fit, LearnsARegressionAndReportsCurves) {
  Rng rng = testing::seeded_rng(601);
  Regression problem(2000, rng);
  const TrainingOptions o = regression_options();
  const TrainingSummary s = fit(problem, 1800, 200, o, rng);
  ASSERT_TRUE(s.ok()) << s.brief_report();
  ASSERT_EQ(static_cast<Index>(s.train_loss.size()), s.epochs_run);
  EXPECT_LT(s.validation_loss.back(), 0.05 * s.validation_loss.front());
  EXPECT_LT((problem.layer_.weight() - problem.a_).cwiseAbs().maxCoeff(), 0.01);
  EXPECT_LT((problem.layer_.bias() - problem.c_).cwiseAbs().maxCoeff(), 0.01);
  EXPECT_GT(s.pairs_per_second, 0.0);
}

// Mixed precision (TrainingOptions::precision float32): the same regression is learned to the same
// accuracy, the weights differ from the float64 run's (the float products were used), and fit()
// leaves the process's products in float64.
TEST(Fit, LearnsTheRegressionWithFloat32Products) {
  Vector weights[2];
  for (const ProductPrecision p : {ProductPrecision::kFloat64, ProductPrecision::kFloat32}) {
    Rng rng = testing::seeded_rng(601);
    Regression problem(2000, rng);
    TrainingOptions o = regression_options();
    o.precision = p;
    const TrainingSummary s = fit(problem, 1800, 200, o, rng);
    ASSERT_TRUE(s.ok()) << s.brief_report();
    EXPECT_EQ(product_precision(), ProductPrecision::kFloat64);
    EXPECT_LT((problem.layer_.weight() - problem.a_).cwiseAbs().maxCoeff(), 0.01) << to_string(p);
    EXPECT_LT((problem.layer_.bias() - problem.c_).cwiseAbs().maxCoeff(), 0.01) << to_string(p);
    weights[p == ProductPrecision::kFloat32] = problem.parameters().values();
  }
  EXPECT_NE(weights[0], weights[1]);
}

TEST(Fit, SameSeedGivesIdenticalWeights) {
  TrainingOptions o;
  o.epochs = 5;
  o.batch_size = 32;
  Vector w[2];
  for (int run = 0; run < 2; ++run) {
    Rng rng = testing::seeded_rng(602);
    Regression problem(500, rng);
    fit(problem, 400, 100, o, rng);
    w[run] = problem.parameters().values();
  }
  EXPECT_EQ(w[0], w[1]);  // bitwise
}

// A training stopped after a checkpoint (the save call throws, as a kill would end the process)
// and resumed from the checkpoint file ends bit-identical to an uninterrupted one: weights, loss
// curves, best epoch and step count. The resumed run's own generator is overwritten by the saved one.
// ema_decay: the same with the weights' moving average, which the checkpoint must carry.
void check_resume_is_bit_identical(double ema_decay) {
  SCOPED_TRACE("ema_decay = " + std::to_string(ema_decay));
  TrainingOptions o;
  o.ema_decay = ema_decay;
  o.restore_best = false;  // end with the last epoch's weights (or average), which depend on every step
  o.epochs = 9;
  o.batch_size = 32;
  o.patience = 0;
  o.plateau_patience = 1;
  o.min_improvement = 1e9;  // only epoch 1 improves: the plateau rule cuts the rate after every later epoch
  Rng rng = testing::seeded_rng(603);
  Regression whole(500, rng);
  const Vector initial = whole.parameters().values();
  const Rng after_setup = rng;
  const TrainingSummary s = fit(whole, 400, 100, o, rng);
  ASSERT_LT(s.learning_rate[6], 0.2 * s.learning_rate[2]);  // the cuts carry across the checkpoint

  const auto file = std::filesystem::temp_directory_path() / ("varflow_fit_checkpoint_" + std::to_string(::getpid()));
  struct Stop {};
  Rng rng2 = after_setup;
  Rng unused = testing::seeded_rng(603);
  Regression cut(500, unused);
  ASSERT_EQ(cut.parameters().values(), initial);
  Checkpointing save;
  save.every = 4;
  save.save = [&](const TrainerState& st) {
    save_trainer_state(file, st, "fingerprint");
    if (st.epoch == 4) throw Stop{};
  };
  EXPECT_THROW(fit(cut, 400, 100, o, rng2, {}, save), Stop);
  const TrainerState st = load_trainer_state(file, "fingerprint");
  EXPECT_EQ(st.epoch, 4);
  Rng other(12345);
  Checkpointing resume;
  resume.resume = &st;
  const TrainingSummary r = fit(cut, 400, 100, o, other, {}, resume);
  EXPECT_EQ(cut.parameters().values(), whole.parameters().values());  // bitwise
  EXPECT_EQ(r.train_loss, s.train_loss);
  EXPECT_EQ(r.validation_loss, s.validation_loss);
  EXPECT_EQ(r.learning_rate, s.learning_rate);
  EXPECT_EQ(r.best_epoch, s.best_epoch);
  EXPECT_EQ(r.steps, s.steps);
  EXPECT_EQ(r.epochs_run, 9);

  // Another run's fingerprint, a damaged file and a state of another size are refused.
  EXPECT_THROW(load_trainer_state(file, "other"), InvalidArgument);
  {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(60);
    f.put('\x7f');
  }
  EXPECT_NE(test::message_of([&] { load_trainer_state(file, "fingerprint"); }).find("damaged"), std::string::npos);
  std::filesystem::remove(file);
  TrainerState too_far = st;
  too_far.epoch = 9;
  resume.resume = &too_far;
  EXPECT_THROW(fit(cut, 400, 100, o, other, {}, resume), InvalidArgument);
}

// A checkpoint of an earlier format (before the weights' average) is refused naming both formats.
TEST(Fit, ACheckpointOfAnotherFormatIsRefusedNamingIt) {
  const auto file = std::filesystem::temp_directory_path() / ("varflow_old_checkpoint_" + std::to_string(::getpid()));
  std::ofstream(file, std::ios::binary) << "varflow_trainer_checkpoint 2\n" << std::string(64, '\0');
  EXPECT_THAT(test::message_of([&] { load_trainer_state(file, "fingerprint"); }),
              ::testing::HasSubstr(": format 2, this varflow reads format 3: remove it or drop --resume"));
  std::ofstream(file, std::ios::binary) << "something else\n" << std::string(64, '\0');
  EXPECT_THAT(test::message_of([&] { load_trainer_state(file, "fingerprint"); }),
              ::testing::HasSubstr("not a varflow_trainer_checkpoint file"));
  std::filesystem::remove(file);
}

TEST(Fit, ResumingFromACheckpointIsBitIdentical) {
  check_resume_is_bit_identical(0.0);
  check_resume_is_bit_identical(0.9);
}

// Polyak averaging: with a constant learning rate and batches of 4 noisy pairs, the raw weights
// keep jumping around the least-squares optimum; their moving average sits much closer to it. The
// returned weights are the average's (restore_best off: those of the last epoch).
TEST(Fit, MovingAverageOfTheWeightsIsCloserToTheOptimum) {
  double error[2] = {0.0, 0.0};
  for (int averaged = 0; averaged < 2; ++averaged) {
    Rng rng = testing::seeded_rng(609);
    Regression problem(500, rng, 0.5);
    TrainingOptions o;
    o.schedule = LearningRateSchedule::kCosine;
    o.epochs = 40;
    o.batch_size = 4;
    o.learning_rate = 2e-2;
    o.warmup_fraction = 0.0;
    o.final_lr_fraction = 1.0;  // constant rate
    o.weight_decay = 0.0;
    o.restore_best = false;
    o.ema_decay = averaged ? 0.999 : 0.0;
    o.patience = 0;
    const TrainingSummary s = fit(problem, 400, 100, o, rng);
    ASSERT_TRUE(s.ok()) << s.brief_report();
    EXPECT_EQ(s.weights_epoch, 40);
    error[averaged] = (problem.weights() - problem.least_squares(400)).norm();
  }
  std::cout << "distance to the least-squares weights: raw " << error[0] << ", averaged " << error[1] << "\n";
  EXPECT_LT(error[1], 0.3 * error[0]);
}

TEST(Rng, StateRestoresTheExactStreamIncludingTheSavedNormal) {
  Rng a(77);
  a.normal();  // leaves the second value of a polar pair saved
  Rng b(1);
  b.restore(a.state());
  for (int i = 0; i < 5; ++i) EXPECT_EQ(a.normal(), b.normal());
  EXPECT_EQ(a.engine()(), b.engine()());
  EXPECT_THROW(b.restore("not a state"), InvalidArgument);
}

TEST(Fit, NonFiniteLossIsAStatusAndRestoresTheBestWeights) {
  Rng rng = testing::seeded_rng(603);
  Regression problem(400, rng);
  TrainingOptions o;
  o.epochs = 10;
  o.batch_size = 100;  // 3 training steps + 1 validation call per epoch
  problem.poison_at = 10;  // step 2 of epoch 3
  const TrainingSummary s = fit(problem, 300, 100, o, rng);
  EXPECT_EQ(s.status, TrainingStatus::kNonFiniteLoss);
  EXPECT_NE(s.message.find("epoch 3"), std::string::npos) << s.message;
  EXPECT_NE(s.message.find("nan"), std::string::npos) << s.message;
  EXPECT_EQ(s.epochs_run, 2);
  EXPECT_TRUE(problem.parameters().values().allFinite());
}

TEST(Fit, EarlyStoppingAndOptionErrors) {
  Rng rng = testing::seeded_rng(604);
  Regression problem(300, rng);
  TrainingOptions o;
  o.epochs = 500;
  o.batch_size = 50;
  o.learning_rate = 5e-2;
  o.patience = 3;
  o.min_steps = 0;
  o.min_improvement = 1e-3;  // improvements smaller than this do not count
  const TrainingSummary s = fit(problem, 250, 50, o, rng);
  EXPECT_EQ(s.status, TrainingStatus::kEarlyStopped) << s.brief_report();
  EXPECT_LT(s.epochs_run, 500);
  EXPECT_EQ(s.epochs_run - s.best_epoch, 3);
  TrainingOptions bad;
  bad.validation_fraction = 1.5;
  try {
    bad.validate();
    FAIL() << "accepted validation_fraction = 1.5";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("validation_fraction = 1.5"), std::string::npos) << e.what();
  }
  TrainingOptions no_average;
  no_average.ema_decay = 1.0;
  EXPECT_THAT(test::message_of([&] { no_average.validate(); }), ::testing::HasSubstr("ema_decay = 1 must be in [0, 1)"));
}

// A loss that never changes (zero gradient): after epoch 1 the validation loss never improves, so
// the plateau rule's cuts and stops happen at epochs that can be computed by hand. `sleep_seconds`
// per batch makes the wall-time limit testable.
class Flat final : public TrainingObjective {
 public:
  explicit Flat(double sleep_seconds = 0.0) : sleep_(sleep_seconds), layer_(2, 1) {
    params_.add("dense", layer_);
    params_.bind();
  }
  ParameterSet& parameters() override { return params_; }
  double batch_loss(const std::vector<Index>&, bool, Rng&) override {
    if (sleep_ > 0.0) ::usleep(static_cast<useconds_t>(sleep_ * 1e6));
    return 1.0;
  }

 private:
  double sleep_;
  Dense layer_;
  ParameterSet params_;
};

TEST(Fit, BatchSizeFollowsTheBudget) {
  EXPECT_EQ(batch_size_for(1), 16);
  EXPECT_EQ(batch_size_for(900), 16);      // 10^3 pairs: 57 steps per epoch
  EXPECT_EQ(batch_size_for(9000), 256);    // 35 steps per epoch
  EXPECT_EQ(batch_size_for(90000), 256);
  for (Index n = 512; n < 100000; n = n * 3 / 2) {
    const Index b = batch_size_for(n);
    EXPECT_GE(n / b, 16) << n;              // enough steps per epoch at every budget
    EXPECT_TRUE(b >= 16 && b <= 256 && (b & (b - 1)) == 0) << n;
  }
  Rng rng = testing::seeded_rng(605);
  Flat flat;
  TrainingOptions o;
  o.epochs = 2;
  const TrainingSummary s = fit(flat, 900, 100, o, rng);
  EXPECT_EQ(s.batch_size, 16);
  EXPECT_EQ(s.steps, 2 * 57);
}

// Epoch 1 sets the best loss; epochs 2.. do not improve. plateau_patience 2: the rate is halved
// after epochs 3, 5 and 7; patience 7: training stops after epoch 8 and says why.
TEST(Fit, PlateauRuleCutsTheRateAndStopsOnPatience) {
  Rng rng = testing::seeded_rng(606);
  Flat flat;
  TrainingOptions o;
  o.batch_size = 10;  // one step per epoch
  o.warmup_fraction = 0.0;
  o.plateau_patience = 2;
  o.patience = 7;
  o.min_steps = 0;
  const TrainingSummary s = fit(flat, 10, 10, o, rng);
  EXPECT_EQ(s.status, TrainingStatus::kEarlyStopped) << s.brief_report();
  EXPECT_EQ(s.epochs_run, 8);
  EXPECT_EQ(s.best_epoch, 1);
  EXPECT_EQ(s.weights_epoch, 1);  // restore_best: the stored weights are epoch 1's
  EXPECT_TRUE(s.restored_earlier_epoch());
  EXPECT_EQ(s.stop_reason(), "no improvement for 7 epochs");
  ASSERT_EQ(s.learning_rate.size(), 8u);
  const auto ratio = [&](int e) { return s.learning_rate[static_cast<std::size_t>(e)] / s.learning_rate[static_cast<std::size_t>(e - 1)]; };
  EXPECT_NEAR(ratio(1), 1.0, 1e-3);  // epoch 2: no cut yet
  EXPECT_NEAR(ratio(2), 1.0, 1e-3);
  EXPECT_NEAR(ratio(3), 0.5, 1e-3);  // epoch 4 runs after the first cut
  EXPECT_NEAR(ratio(4), 1.0, 1e-3);
  EXPECT_NEAR(ratio(5), 0.5, 1e-3);
  EXPECT_NEAR(ratio(7), 0.5, 1e-3);
  // The cosine rule never cuts: it runs its epochs.
  o.schedule = LearningRateSchedule::kCosine;
  o.patience = 0;
  o.epochs = 12;
  const TrainingSummary c = fit(flat, 10, 10, o, rng);
  EXPECT_EQ(c.status, TrainingStatus::kCompleted);
  EXPECT_EQ(c.stop_reason(), "all 12 epochs");
  o.restore_best = false;
  const TrainingSummary last = fit(flat, 10, 10, o, rng);
  EXPECT_EQ(last.weights_epoch, 12);
  EXPECT_FALSE(last.restored_earlier_epoch());
  EXPECT_GT(c.learning_rate[5], 0.6 * o.learning_rate);
}

// Patience does not end training before min_steps optimizer steps; the epoch cap and the time limit
// end it with their own status.
TEST(Fit, MinimumStepsEpochCapAndTimeLimit) {
  Rng rng = testing::seeded_rng(607);
  Flat flat;
  TrainingOptions o;
  o.batch_size = 10;  // one step per epoch
  o.patience = 3;
  o.min_steps = 40;
  const TrainingSummary s = fit(flat, 10, 10, o, rng);
  EXPECT_EQ(s.status, TrainingStatus::kEarlyStopped);
  EXPECT_EQ(s.epochs_run, 40);
  o.epochs = 25;
  const TrainingSummary capped = fit(flat, 10, 10, o, rng);
  EXPECT_EQ(capped.status, TrainingStatus::kCompleted);
  EXPECT_EQ(capped.epochs_run, 25);
  Flat slow(0.01);
  o.epochs = 1000;
  o.max_seconds = 0.1;
  const TrainingSummary timed = fit(slow, 10, 10, o, rng);
  EXPECT_EQ(timed.status, TrainingStatus::kTimeLimit) << timed.brief_report();
  EXPECT_TRUE(timed.ok());
  EXPECT_LT(timed.epochs_run, 40);
  EXPECT_NE(timed.stop_reason().find("time limit of 0.1 s"), std::string::npos) << timed.stop_reason();
  EXPECT_EQ(training_status_from_string("time_limit"), TrainingStatus::kTimeLimit);
  EXPECT_THAT(test::message_of<InvalidArgument>([] { training_status_from_string("finished"); }),
              ::testing::HasSubstr("training_status = 'finished' is not one of"));
  TrainingOptions bad;
  bad.plateau_factor = 1.0;
  EXPECT_THAT(test::message_of<InvalidArgument>([&] { bad.validate(); }),
              ::testing::HasSubstr("plateau_factor = 1 must be in (0, 1)"));
  EXPECT_THAT(test::message_of<InvalidArgument>([] { schedule_from_string("step"); }),
              ::testing::HasSubstr("training.schedule = 'step' is not one of: plateau, cosine"));
}

}  // namespace
}  // namespace varflow::nn
