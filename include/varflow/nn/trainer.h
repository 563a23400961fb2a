#pragma once
// Mini-batch training of any objective over a flat ParameterSet: AdamW, gradient-norm clipping,
// cosine schedule with warm-up, early stopping on a validation split and best-weights restore.
//
//   TrainingSummary s = fit(objective, n_train, n_validation, options, rng, progress);
//   if (s.status == TrainingStatus::kNonFiniteLoss) ... s.message names the epoch and step
//
// With ema_decay > 0 the weights are judged and kept as their moving average (see TrainingOptions).
//
// Determinism: batches are drawn from `rng` only; given the same seed and the same number of OpenMP
// threads, fit() produces bit-identical parameters. (Eigen's parallel matrix products split work by
// thread count, so a different thread count may change the last bits.)
#include <cstdint>
#include <filesystem>
#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

#include "varflow/core/communicator.h"
#include "varflow/core/random.h"
#include "varflow/core/types.h"
#include "varflow/nn/optimizer.h"
#include "varflow/nn/parameters.h"
#include "varflow/nn/precision.h"

namespace varflow::nn {

// How the learning rate moves. Both warm up linearly to the peak and decay along a cosine to
// final_lr_fraction of the peak at the last allowed epoch (`epochs`).
//   plateau: the warm-up spans warmup_fraction of min(epochs, 20) epochs; the rate is also
//            multiplied by plateau_factor whenever the validation loss has not improved for
//            plateau_patience epochs (the "reduce on plateau" rule), down to final_lr_fraction.
//            With the default cap of 1000 epochs the cosine hardly matters and training ends on
//            the validation loss (patience), not on an epoch count.
//   cosine:  the warm-up spans warmup_fraction of all steps; no cuts (a fixed budget of epochs).
enum class LearningRateSchedule { kPlateau, kCosine };
std::string to_string(LearningRateSchedule s);
LearningRateSchedule schedule_from_string(const std::string& s, const std::string& key = "training.schedule");

// The batch size chosen from the number of training pairs when TrainingOptions::batch_size is 0:
// about n_train / 32 rounded down to a power of two, within [16, 256], so that even 10^3 pairs give
// ~30 optimizer steps per epoch (measured in design/amortized.md, "Training budget").
Index batch_size_for(Index n_train);

struct TrainingOptions {
  Index epochs = 1000;                // the most epochs (plateau: a safety net; cosine: the budget)
  Index batch_size = 0;               // 0: batch_size_for(training pairs)
  double learning_rate = 1e-3;        // peak of the schedule
  LearningRateSchedule schedule = LearningRateSchedule::kPlateau;
  double weight_decay = 1e-5;         // AdamW, decoupled, on weight matrices only
  double warmup_fraction = 0.05;      // see LearningRateSchedule
  double final_lr_fraction = 0.02;    // the lowest learning rate, as a fraction of the peak
  Index plateau_patience = 5;         // plateau: epochs without improvement before the rate is cut
  double plateau_factor = 0.5;        // plateau: the cut, in (0, 1)
  double clip_norm = 5.0;             // global gradient-norm clip; <= 0 disables it
  double validation_fraction = 0.1;   // of the pairs, held out for early stopping
  Index patience = 20;                // epochs without improvement before stopping; 0 = never stop
  double min_improvement = 0.0;       // an epoch improves when val < best - min_improvement
  Index min_steps = 2000;             // optimizer steps before early stopping may end training
  double max_seconds = 0.0;           // wall-time limit (0: none); a run it stops is not reproducible
  bool restore_best = true;           // end with the weights of the best validation epoch
  // Polyak averaging (Polyak & Juditsky 1992; for score networks Song & Ermon 2020, "Improved
  // techniques for training score-based generative models"): an exponential moving average of the
  // weights, ema <- d ema + (1 - d) theta after every optimizer step with d = min(ema_decay,
  // (1 + t) / (10 + t)) at step t. The validation loss, the best weights and the weights training
  // ends with are the average's; the optimizer keeps stepping the raw weights. 0: off; in [0, 1).
  double ema_decay = 0.0;
  // The precision of the network's matrix products during training (nn/precision.h): float32 rounds
  // their operands to float (mixed precision; everything else stays double, and so does the trained
  // model). Not bit-comparable with float64, and its gradients are not the finite-difference-exact
  // ones the float64 engine has.
  ProductPrecision precision = ProductPrecision::kFloat64;

  // Throws InvalidArgument naming the field, its value and the rule.
  void validate() const;
};

enum class TrainingStatus {
  kCompleted,      // ran all epochs
  kEarlyStopped,   // validation loss stopped improving for `patience` epochs (after min_steps steps)
  kTimeLimit,      // max_seconds reached
  kNonFiniteLoss,  // a loss or gradient was NaN or infinite; training stopped (see message)
};
std::string to_string(TrainingStatus s);
TrainingStatus training_status_from_string(const std::string& s, const std::string& key = "training_status");

struct EpochReport {
  Index epoch = 0;  // 1-based
  Index epochs = 0;
  double train_loss = 0.0;
  double validation_loss = 0.0;
  double learning_rate = 0.0;
  double seconds_elapsed = 0.0;
  double seconds_left = 0.0;  // cosine: estimate for the remaining epochs; plateau: -1 (not known)
  bool improved = false;
  Index best_epoch = 0;       // 1-based
  Index since_best = 0;       // epochs without improvement; training stops at `patience`
  Index patience = 0;
};

struct TrainingSummary {
  TrainingStatus status = TrainingStatus::kCompleted;
  std::string message;
  std::vector<double> train_loss;       // mean training loss per epoch
  std::vector<double> validation_loss;  // validation loss after each epoch
  std::vector<double> learning_rate;    // learning rate at the end of each epoch
  Index best_epoch = 0;                 // 1-based; 0 if no epoch finished
  Index weights_epoch = 0;              // the epoch whose weights training ended with (0: the initial ones)
  double best_validation_loss = 0.0;
  Index epochs_run = 0;
  Index steps = 0;
  Index train_pairs = 0;
  Index validation_pairs = 0;
  Index batch_size = 0;                 // the batch size used (options.batch_size capped by the pairs)
  double seconds = 0.0;
  double pairs_per_second = 0.0;  // training pairs processed (forward + backward) per second

  bool ok() const { return status != TrainingStatus::kNonFiniteLoss; }
  // True when the weights at the end are those of an earlier epoch than the last one run.
  bool restored_earlier_epoch() const { return weights_epoch < epochs_run; }
  // Why training stopped, in words: "all 20 epochs", "no improvement for 20 epochs", ...
  std::string stop_reason() const;
  std::string brief_report() const;
};

// What fit() minimises. Items 0 .. n_train-1 are training items, n_train .. n_train+n_val-1 the
// validation items.
class TrainingObjective {
 public:
  virtual ~TrainingObjective() = default;
  virtual ParameterSet& parameters() = 0;
  // Mean loss over `items`. With gradient = true it ADDS d(mean loss)/d(theta) to
  // parameters().gradients(). Any randomness of the loss (e.g. noise levels of denoising score
  // matching) is drawn from rng.
  virtual double batch_loss(const std::vector<Index>& items, bool gradient, Rng& rng) = 0;
};

using ProgressCallback = std::function<void(const EpochReport&)>;

// A callback writing "<prefix>epoch e/E: validation loss v, s s left" (cosine) or "<prefix>epoch e:
// validation loss v, best at epoch b, k of P epochs without improvement" (plateau; 3 significant
// digits) to `log` every tenth of the epochs (plateau: every 10 epochs) and at the last one. `log`
// must outlive the training.
ProgressCallback log_every_tenth(std::ostream& log, std::string prefix);

// The number of OpenMP threads training and sampling use (OMP_NUM_THREADS, default: all cores).
int thread_count();
// Sets it for the calling thread's later parallel regions (omp_set_num_threads); n >= 1, otherwise
// InvalidArgument. With several processes sharing the cores (e.g. `ctest -j2`), one thread each
// avoids oversubscription, which costs far more than it saves for small networks.
void set_thread_count(int n);
// Sets the thread count for its lifetime and restores the previous one on destruction.
class ScopedThreadCount {
 public:
  explicit ScopedThreadCount(int n) : previous_(thread_count()) { set_thread_count(n); }
  ~ScopedThreadCount() { set_thread_count(previous_); }
  ScopedThreadCount(const ScopedThreadCount&) = delete;
  ScopedThreadCount& operator=(const ScopedThreadCount&) = delete;

 private:
  int previous_;
};

// Everything fit() carries from one epoch to the next: restoring it at the start of fit() continues
// the training bit-identically (same data, options and thread count).
struct TrainerState {
  Index epoch = 0;  // epochs finished
  Vector parameters, best;
  Vector average;  // the weights' moving average (TrainingOptions::ema_decay; empty when off)
  AdamW::State optimizer;
  std::string rng;  // Rng::state()
  std::vector<Index> order;  // the shuffled item order (each epoch shuffles the previous one)
  std::uint64_t validation_seed = 0;
  double best_loss = 0.0;
  Index since_best = 0, pairs_seen = 0;
  double lr_scale = 1.0;    // plateau schedule: the product of the cuts so far
  Index since_cut = 0;      // plateau schedule: epochs without improvement since the last cut
  TrainingSummary summary;  // the loss curves, steps and best epoch so far
};

// Checkpoints of fit(): `save` is called with the state after every `every` epochs (0: never);
// `resume`, when set, is the state to start from (its epoch must be below options.epochs).
struct Checkpointing {
  Index every = 0;
  std::function<void(const TrainerState&)> save;
  const TrainerState* resume = nullptr;
};

// A checkpoint file: the state and a `fingerprint` of the run that wrote it (the caller's text
// identifying data, options and model), FNV-1a 64 checksummed, written through AtomicOutput.
void save_trainer_state(const std::filesystem::path& file, const TrainerState& state, const std::string& fingerprint);
// Throws InvalidArgument naming the file when it is not a checkpoint, is damaged (checksum), or
// was written by a run of another fingerprint.
TrainerState load_trainer_state(const std::filesystem::path& file, const std::string& fingerprint);

TrainingSummary fit(TrainingObjective& objective, Index n_train, Index n_validation,
                    const TrainingOptions& options, Rng& rng, const ProgressCallback& progress = {},
                    const Checkpointing& checkpointing = {});
// Data-parallel over the ranks of comm (design/parallel.md): every rank holds the whole objective and
// the same parameters; each step, rank r computes the gradient of block r of the batch and one
// allreduce sums them, so every rank takes the same AdamW step; the validation loss is split the same
// way (one allreduce per epoch). With one rank this is fit() above; with several, the parameters equal one rank's up to
// the order of the floating-point sums of the gradient (bit-identical with 1 rank; the difference
// grows with the steps as any round-off does), for objectives whose loss draws no randomness (an
// objective that draws, e.g. denoising score matching, gets other draws on ranks > 0: the same
// distribution, not the same numbers). Call it on every rank with the same arguments; checkpoints are
// saved by the caller's callback on every rank (write them from the root only). A non-finite block
// names its rank and items in the summary's message; an exception on one rank stops every rank.
TrainingSummary fit(TrainingObjective& objective, Index n_train, Index n_validation,
                    const TrainingOptions& options, Rng& rng, const ProgressCallback& progress,
                    const Checkpointing& checkpointing, const Communicator& comm);

}  // namespace varflow::nn
