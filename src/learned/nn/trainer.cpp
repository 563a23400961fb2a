#include "varflow/nn/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <string_view>
#include <type_traits>
#include <iomanip>
#include <limits>
#include <numeric>
#include <ostream>
#include <sstream>

#include <omp.h>

#include "varflow/core/error.h"
#include "varflow/core/hash.h"
#include "varflow/io/checkpoint_file.h"
#include "varflow/nn/optimizer.h"

namespace varflow::nn {

void TrainingOptions::validate() const {
  const char* w = "TrainingOptions";
  check_at_least(w, "epochs", epochs, 1);
  check_at_least(w, "batch_size", batch_size, 0);
  check_positive(w, "learning_rate", learning_rate);
  check_nonnegative(w, "weight_decay", weight_decay);
  if (!(warmup_fraction >= 0.0 && warmup_fraction < 1.0)) {
    throw InvalidArgument(format_message(w, ": warmup_fraction = ", warmup_fraction, " must be in [0, 1)"));
  }
  if (!(final_lr_fraction >= 0.0 && final_lr_fraction <= 1.0)) {
    throw InvalidArgument(format_message(w, ": final_lr_fraction = ", final_lr_fraction, " must be in [0, 1]"));
  }
  if (!std::isfinite(clip_norm)) throw InvalidArgument(format_message(w, ": clip_norm = ", clip_norm, " is not finite"));
  if (!(validation_fraction > 0.0 && validation_fraction < 1.0)) {
    throw InvalidArgument(format_message(w, ": validation_fraction = ", validation_fraction, " must be in (0, 1)"));
  }
  check_at_least(w, "patience", patience, 0);
  check_nonnegative(w, "min_improvement", min_improvement);
  check_at_least(w, "plateau_patience", plateau_patience, 1);
  if (!(plateau_factor > 0.0 && plateau_factor < 1.0)) {
    throw InvalidArgument(format_message(w, ": plateau_factor = ", plateau_factor, " must be in (0, 1)"));
  }
  check_at_least(w, "min_steps", min_steps, 0);
  check_nonnegative(w, "max_seconds", max_seconds);
  if (!(ema_decay >= 0.0 && ema_decay < 1.0)) {
    throw InvalidArgument(format_message(w, ": ema_decay = ", ema_decay, " must be in [0, 1) (0: no averaging)"));
  }
}

std::string to_string(LearningRateSchedule s) {
  return s == LearningRateSchedule::kPlateau ? "plateau" : "cosine";
}

LearningRateSchedule schedule_from_string(const std::string& s, const std::string& key) {
  if (s == "plateau") return LearningRateSchedule::kPlateau;
  if (s == "cosine") return LearningRateSchedule::kCosine;
  throw InvalidArgument(format_message(key, " = '", s, "' is not one of: plateau, cosine"));
}

Index batch_size_for(Index n_train) {
  Index batch = 16;
  while (batch < 256 && 2 * batch * 32 <= n_train) batch *= 2;
  return batch;
}

int thread_count() { return omp_get_max_threads(); }

void set_thread_count(int n) {
  if (n < 1) throw InvalidArgument(format_message("set_thread_count: n = ", n, " must be at least 1"));
  omp_set_num_threads(n);
}

std::string to_string(TrainingStatus s) {
  switch (s) {
    case TrainingStatus::kCompleted: return "completed";
    case TrainingStatus::kEarlyStopped: return "early_stopped";
    case TrainingStatus::kTimeLimit: return "time_limit";
    case TrainingStatus::kNonFiniteLoss: return "non_finite_loss";
  }
  return "unknown";
}

TrainingStatus training_status_from_string(const std::string& s, const std::string& key) {
  for (const auto status : {TrainingStatus::kCompleted, TrainingStatus::kEarlyStopped, TrainingStatus::kTimeLimit,
                            TrainingStatus::kNonFiniteLoss}) {
    if (to_string(status) == s) return status;
  }
  throw InvalidArgument(format_message(key, " = '", s, "' is not one of: completed, early_stopped, time_limit, ",
                                       "non_finite_loss"));
}

std::string TrainingSummary::brief_report() const {
  return format_message(to_string(status), ": ", epochs_run, " epochs, ", steps, " steps, best validation loss ",
                        best_validation_loss, " at epoch ", best_epoch, ", ", seconds, " s, ",
                        pairs_per_second, " pairs/s", message.empty() ? "" : " (" + message + ")");
}

std::string TrainingSummary::stop_reason() const {
  if (!message.empty()) return message;
  return status == TrainingStatus::kCompleted ? format_message("all ", epochs_run, " epochs") : to_string(status);
}

namespace {

// Mean loss over items [begin, end) in chunks of at most `chunk`, weighted by chunk size.
double mean_loss(TrainingObjective& objective, Index begin, Index end, Index chunk, std::uint64_t seed) {
  Rng rng(seed);  // the same noise every evaluation: validation losses are comparable across epochs
  double total = 0.0;
  std::vector<Index> items;
  for (Index s = begin; s < end; s += chunk) {
    const Index e = std::min(end, s + chunk);
    items.resize(static_cast<std::size_t>(e - s));
    std::iota(items.begin(), items.end(), s);
    total += objective.batch_loss(items, false, rng) * static_cast<double>(e - s);
  }
  return total / static_cast<double>(end - begin);
}

// mean_loss over the ranks of comm: rank r evaluates block r of [begin, end) in chunks (rank 0 with
// Rng(seed) as one rank does, rank r > 0 with item_rng(seed, r)) and one allreduce sums the losses.
// Equal to mean_loss up to the order of the sums for an objective that draws nothing. A rank whose
// block throws stops every rank with an Error naming it.
double data_parallel_mean_loss(TrainingObjective& objective, Index begin, Index end, Index chunk, std::uint64_t seed,
                               const Communicator& comm) {
  const int ranks = comm.size(), me = comm.rank();
  const ItemRange block = block_range(end - begin, me, ranks);
  std::vector<double> buffer(static_cast<std::size_t>(1 + ranks), 0.0);
  const Failure failure = capture_failure([&] {
    if (block.end == block.begin) return;
    const Index b0 = begin + block.begin, b1 = begin + block.end;
    if (me == 0) {
      buffer[0] = mean_loss(objective, b0, b1, chunk, seed) * static_cast<double>(b1 - b0);
    } else {
      Rng own = item_rng(seed, me);
      double total = 0.0;
      std::vector<Index> items;
      for (Index s = b0; s < b1; s += chunk) {
        const Index e = std::min(b1, s + chunk);
        items.resize(static_cast<std::size_t>(e - s));
        std::iota(items.begin(), items.end(), s);
        total += objective.batch_loss(items, false, own) * static_cast<double>(e - s);
      }
      buffer[0] = total;
    }
  });
  buffer[static_cast<std::size_t>(1 + me)] = failure.failed() ? 1.0 : 0.0;
  comm.allreduce_sum(buffer.data(), static_cast<Index>(buffer.size()));
  for (int r = 0; r < ranks; ++r) {
    if (buffer[static_cast<std::size_t>(1 + r)] == 0.0) continue;
    // Every rank learns the failing rank's message, then all throw it.
    distributed_map(comm, ranks, "fit (validation loss)", [](Index) { return std::string("its validation pairs"); },
                    [&](Index i) -> std::string {
                      if (i == me && failure.failed()) rethrow_failure(failure);
                      return {};
                    });
  }
  return buffer[0] / static_cast<double>(end - begin);
}

// The items of a batch, for messages: "pairs 3, 17, 5 (3 of the batch)" (at most 5 listed).
std::string item_list(const std::vector<Index>& items, Index begin, Index end) {
  std::ostringstream os;
  os << "training pairs ";
  for (Index i = begin; i < std::min(end, begin + 5); ++i) os << (i > begin ? ", " : "") << items[static_cast<std::size_t>(i)];
  if (end - begin > 5) os << ", ...";
  os << " (" << end - begin << " of the batch)";
  return os.str();
}

// One step's loss and gradient over the ranks of comm (data parallel; design/parallel.md). Rank r
// takes block r of the batch (block_range) and adds (its share of the batch) x (the gradient of its
// block's mean loss); one allreduce sums the gradients, the weighted losses and per-rank flags. The
// gradient is then that of the whole batch's mean loss, as on one rank, up to the order of the
// floating-point sums. Randomness: block 0 draws from rng (what one rank draws for the whole batch,
// so an objective that draws nothing, e.g. the flow and gaussian heads' likelihood, trains exactly
// as on one rank); block r > 0 from item_rng(seed, step * ranks + r); afterwards every rank takes
// rank 0's rng, so the shuffles stay the same on all ranks. A rank whose block throws stops every
// rank with an Error naming it and its items; a rank whose block is not finite is named in `where`.
double data_parallel_loss(TrainingObjective& objective, const std::vector<Index>& items, Rng& rng,
                          const Communicator& comm, std::string& where, Index step, std::uint64_t seed) {
  ParameterSet& params = objective.parameters();
  const Index p = params.size(), b = static_cast<Index>(items.size());
  const int ranks = comm.size(), me = comm.rank();
  const ItemRange mine = block_range(b, me, ranks);
  const double share = static_cast<double>(mine.end - mine.begin) / static_cast<double>(b);
  double local = 0.0;
  const Failure failure = capture_failure([&] {
    if (mine.end == mine.begin) return;
    const std::vector<Index> block(items.begin() + mine.begin, items.begin() + mine.end);
    if (me == 0) {
      local = objective.batch_loss(block, true, rng);
    } else {
      Rng own = item_rng(seed, step * ranks + me);
      local = objective.batch_loss(block, true, own);
    }
  });
  // [gradient (p), loss, non-finite flag per rank, failure flag per rank]
  std::vector<double> buffer(static_cast<std::size_t>(p + 1 + 2 * ranks), 0.0);
  Eigen::Map<Vector>(buffer.data(), p) = share * params.gradients();
  buffer[static_cast<std::size_t>(p)] = share * local;
  const bool finite = std::isfinite(local) && params.gradients().allFinite();
  buffer[static_cast<std::size_t>(p + 1 + me)] = finite ? 0.0 : 1.0;
  buffer[static_cast<std::size_t>(p + 1 + ranks + me)] = failure.failed() ? 1.0 : 0.0;
  comm.allreduce_sum(buffer.data(), static_cast<Index>(buffer.size()));
  bool any_failed = false;
  for (int r = 0; r < ranks; ++r) any_failed = any_failed || buffer[static_cast<std::size_t>(p + 1 + ranks + r)] != 0.0;
  if (any_failed) {
    RecordWriter w;
    w.put(static_cast<double>(failure.kind));
    w.put(failure.message);
    const std::vector<std::string> all = comm.allgather(w.bytes());
    for (int r = 0; r < ranks; ++r) {
      RecordReader in(all[static_cast<std::size_t>(r)]);
      Failure theirs;
      theirs.kind = static_cast<int>(in.get_double());
      theirs.message = in.get_string();
      if (!theirs.failed()) continue;
      const ItemRange block = block_range(b, r, ranks);
      rethrow_failure(theirs, format_message("fit: rank ", r, ", step ", step + 1, ", ", item_list(items, block.begin, block.end), ": "));
    }
  }
  params.gradients() = Eigen::Map<const Vector>(buffer.data(), p);
  for (int r = 0; r < ranks; ++r) {
    if (buffer[static_cast<std::size_t>(p + 1 + r)] == 0.0) continue;
    const ItemRange block = block_range(b, r, ranks);
    where += format_message(where.empty() ? " (not finite on rank " : "; rank ", r, ", ", item_list(items, block.begin, block.end));
  }
  if (!where.empty()) where += ")";
  std::string state = me == 0 ? rng.state() : std::string();
  comm.broadcast(state, 0);
  if (me != 0) rng.restore(state);
  return buffer[static_cast<std::size_t>(p)];
}

}  // namespace

// ---- checkpoint files (varflow/io/checkpoint_file.h) ---------------------------------------------------

constexpr std::string_view kCheckpointKind = "varflow_trainer_checkpoint 3";

void save_trainer_state(const std::filesystem::path& file, const TrainerState& st, const std::string& fingerprint) {
  ByteWriter w;
  w.put(st.epoch);
  w.put(st.parameters);
  w.put(st.best);
  w.put(st.average);
  w.put(st.optimizer.m);
  w.put(st.optimizer.v);
  w.put(st.optimizer.t);
  w.put(st.optimizer.b1t);
  w.put(st.optimizer.b2t);
  w.put(st.rng);
  w.put(static_cast<std::uint64_t>(st.order.size()));
  for (const Index i : st.order) w.put(i);
  w.put(st.validation_seed);
  w.put(st.best_loss);
  w.put(st.since_best);
  w.put(st.pairs_seen);
  w.put(st.lr_scale);
  w.put(st.since_cut);
  const TrainingSummary& s = st.summary;
  w.put(s.train_loss);
  w.put(s.validation_loss);
  w.put(s.learning_rate);
  w.put(s.best_epoch);
  w.put(s.epochs_run);
  w.put(s.steps);
  w.put(s.seconds);
  write_checkpoint(file, kCheckpointKind, fingerprint, w.bytes);
}

TrainerState load_trainer_state(const std::filesystem::path& file, const std::string& fingerprint) {
  ByteReader r = read_checkpoint(file, kCheckpointKind, fingerprint);
  const std::string& where = r.where();
  TrainerState st;
  st.epoch = r.get<Index>();
  st.parameters = r.get_vector();
  st.best = r.get_vector();
  st.average = r.get_vector();
  st.optimizer.m = r.get_vector();
  st.optimizer.v = r.get_vector();
  st.optimizer.t = r.get<Index>();
  st.optimizer.b1t = r.get<double>();
  st.optimizer.b2t = r.get<double>();
  st.rng = r.get_string();
  const auto n = r.get<std::uint64_t>();
  if (n > r.remaining() / sizeof(Index)) throw InvalidArgument(where + ": truncated checkpoint");
  st.order.resize(static_cast<std::size_t>(n));
  for (auto& i : st.order) i = r.get<Index>();
  st.validation_seed = r.get<std::uint64_t>();
  st.best_loss = r.get<double>();
  st.since_best = r.get<Index>();
  st.pairs_seen = r.get<Index>();
  st.lr_scale = r.get<double>();
  st.since_cut = r.get<Index>();
  TrainingSummary& s = st.summary;
  s.train_loss = r.get_doubles();
  s.validation_loss = r.get_doubles();
  s.learning_rate = r.get_doubles();
  s.best_epoch = r.get<Index>();
  s.epochs_run = r.get<Index>();
  s.steps = r.get<Index>();
  s.seconds = r.get<double>();
  if (!r.done()) throw InvalidArgument(where + ": trailing bytes");
  return st;
}

TrainingSummary fit(TrainingObjective& objective, Index n_train, Index n_validation,
                    const TrainingOptions& options, Rng& rng, const ProgressCallback& progress,
                    const Checkpointing& checkpointing) {
  return fit(objective, n_train, n_validation, options, rng, progress, checkpointing, serial_communicator());
}

TrainingSummary fit(TrainingObjective& objective, Index n_train, Index n_validation,
                    const TrainingOptions& options, Rng& rng, const ProgressCallback& progress,
                    const Checkpointing& checkpointing, const Communicator& comm) {
  options.validate();
  const ScopedProductPrecision precision(options.precision);  // the products of every pass in this fit
  check_at_least("fit", "training pairs", n_train, 1);
  check_at_least("fit", "validation pairs", n_validation, 1);
  ParameterSet& params = objective.parameters();
  const auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };

  TrainingSummary summary;
  summary.train_pairs = n_train;
  summary.validation_pairs = n_validation;
  const Index batch = std::min(options.batch_size > 0 ? options.batch_size : batch_size_for(n_train), n_train);
  summary.batch_size = batch;
  const Index steps_per_epoch = (n_train + batch - 1) / batch;
  const bool plateau = options.schedule == LearningRateSchedule::kPlateau;
  // Both rules decay along a cosine over the epoch cap; the plateau rule warms up over
  // warmup_fraction of at most 20 epochs (not of the cap) and also cuts the rate on plateaus, so a
  // run capped at 20 epochs follows the cosine schedule unless its validation loss stalls.
  const Index total_steps = steps_per_epoch * options.epochs;
  const Index warmup_steps = static_cast<Index>(
      options.warmup_fraction * static_cast<double>(plateau ? steps_per_epoch * std::min<Index>(options.epochs, 20)
                                                            : total_steps));
  const CosineSchedule cosine(options.learning_rate, warmup_steps, total_steps, options.final_lr_fraction);
  double lr_scale = 1.0;  // plateau: the product of the cuts so far
  Index since_cut = 0;
  auto learning_rate = [&](Index step) {
    const double lr = lr_scale * cosine(step);
    return step < warmup_steps ? lr : std::max(lr, options.final_lr_fraction * options.learning_rate);
  };
  AdamW adam(params.size(), AdamWOptions{0.9, 0.999, 1e-8, options.weight_decay}, params.decay_mask());
  const std::uint64_t fresh_validation_seed = rng.engine()();

  Vector best = params.values();
  const bool averaging = options.ema_decay > 0.0;
  Vector average = averaging ? Vector(params.values()) : Vector();
  double best_loss = std::numeric_limits<double>::infinity();
  Index since_best = 0;
  Index pairs_seen = 0;
  double train_seconds = 0.0;
  std::vector<Index> order(static_cast<std::size_t>(n_train));
  std::iota(order.begin(), order.end(), 0);
  std::vector<Index> items;

  Index first_epoch = 1;
  double seconds_before = 0.0;  // of the run(s) before a resume
  if (const TrainerState* st = checkpointing.resume) {
    if (st->epoch < 0 || st->epoch >= options.epochs || static_cast<Index>(st->order.size()) != n_train ||
        st->parameters.size() != params.size() || st->best.size() != params.size() ||
        st->average.size() != (averaging ? params.size() : 0)) {
      throw InvalidArgument(format_message("fit: the checkpoint (epoch ", st->epoch, ", ", st->parameters.size(),
                                           " parameters, ", st->order.size(), " items) does not fit this training (",
                                           options.epochs, " epochs, ", params.size(), " parameters, ", n_train,
                                           " items)"));
    }
    params.values() = st->parameters;
    best = st->best;
    average = st->average;
    adam.restore(st->optimizer);
    rng.restore(st->rng);
    order = st->order;
    best_loss = st->best_loss;
    since_best = st->since_best;
    pairs_seen = st->pairs_seen;
    lr_scale = st->lr_scale;
    since_cut = st->since_cut;
    summary.train_loss = st->summary.train_loss;
    summary.validation_loss = st->summary.validation_loss;
    summary.learning_rate = st->summary.learning_rate;
    summary.best_epoch = st->summary.best_epoch;
    summary.epochs_run = st->summary.epochs_run;
    summary.steps = st->summary.steps;
    seconds_before = st->summary.seconds;
    first_epoch = st->epoch + 1;
  }
  const std::uint64_t validation_seed = checkpointing.resume ? checkpointing.resume->validation_seed : fresh_validation_seed;

  for (Index epoch = first_epoch; epoch <= options.epochs; ++epoch) {
    // Fisher-Yates shuffle from rng (explicit, so the order does not depend on the standard library).
    for (Index i = n_train - 1; i > 0; --i) {
      const auto j = static_cast<Index>(rng.engine()() % static_cast<std::uint64_t>(i + 1));
      std::swap(order[static_cast<std::size_t>(i)], order[static_cast<std::size_t>(j)]);
    }
    double epoch_loss = 0.0;
    const double t0 = elapsed();
    double lr = 0.0;
    for (Index s = 0; s < steps_per_epoch; ++s) {
      const Index b0 = s * batch, b1 = std::min(n_train, b0 + batch);
      items.assign(order.begin() + b0, order.begin() + b1);
      params.zero_gradients();
      std::string where;  // with several ranks: the ranks whose part of the batch was not finite
      const double loss = comm.size() == 1 ? objective.batch_loss(items, true, rng)
                                           : data_parallel_loss(objective, items, rng, comm, where,
                                                                summary.steps, validation_seed);
      auto g = params.gradients();
      const double gnorm = clip_gradient_norm(g, options.clip_norm);
      if (!std::isfinite(loss) || !std::isfinite(gnorm)) {
        summary.status = TrainingStatus::kNonFiniteLoss;
        summary.message = format_message("epoch ", epoch, ", step ", s + 1, ": ",
                                         std::isfinite(loss) ? "gradient norm" : "training loss", " = ",
                                         std::isfinite(loss) ? gnorm : loss, where);
        break;
      }
      lr = learning_rate(summary.steps);
      adam.step(params.values(), g, lr);
      ++summary.steps;
      if (averaging) {
        const double t = static_cast<double>(summary.steps);
        const double d = std::min(options.ema_decay, (1.0 + t) / (10.0 + t));
        average = d * average + (1.0 - d) * params.values();
      }
      epoch_loss += loss * static_cast<double>(b1 - b0);
      pairs_seen += b1 - b0;
    }
    train_seconds += elapsed() - t0;
    if (summary.status == TrainingStatus::kNonFiniteLoss) break;
    epoch_loss /= static_cast<double>(n_train);
    // With averaging, the average is what is validated (swapped in for the pass and back out), kept
    // as best and returned.
    if (averaging) params.values().swap(average);
    const double val = comm.size() == 1 ? mean_loss(objective, n_train, n_train + n_validation,
                                                     std::max<Index>(batch, 512), validation_seed)
                                         : data_parallel_mean_loss(objective, n_train, n_train + n_validation,
                                                                   std::max<Index>(batch, 512), validation_seed, comm);
    if (averaging) params.values().swap(average);
    summary.train_loss.push_back(epoch_loss);
    summary.validation_loss.push_back(val);
    summary.learning_rate.push_back(lr);
    summary.epochs_run = epoch;
    if (!std::isfinite(val)) {
      summary.status = TrainingStatus::kNonFiniteLoss;
      summary.message = format_message("epoch ", epoch, ": validation loss = ", val);
      break;
    }
    const bool improved = val < best_loss - options.min_improvement;
    if (improved) {
      best_loss = val;
      best = averaging ? average : Vector(params.values());
      summary.best_epoch = epoch;
      since_best = 0;
      since_cut = 0;
    } else {
      ++since_best;
      ++since_cut;
      if (plateau && since_cut >= options.plateau_patience && lr_scale > options.final_lr_fraction) {
        lr_scale = std::max(options.final_lr_fraction, lr_scale * options.plateau_factor);
        since_cut = 0;
      }
    }
    if (progress) {
      EpochReport r;
      r.epoch = epoch;
      r.epochs = options.epochs;
      r.train_loss = epoch_loss;
      r.validation_loss = val;
      r.learning_rate = lr;
      r.seconds_elapsed = elapsed();
      r.seconds_left = plateau ? -1.0
                               : r.seconds_elapsed / static_cast<double>(epoch) * static_cast<double>(options.epochs - epoch);
      r.improved = improved;
      r.best_epoch = summary.best_epoch;
      r.since_best = since_best;
      r.patience = options.patience;
      progress(r);
    }
    if (options.patience > 0 && since_best >= options.patience && summary.steps >= options.min_steps) {
      summary.status = TrainingStatus::kEarlyStopped;
      summary.message = format_message("no improvement for ", since_best, " epochs");
      break;
    }
    double out_of_time = options.max_seconds > 0.0 && seconds_before + elapsed() >= options.max_seconds ? 1.0 : 0.0;
    if (options.max_seconds > 0.0 && comm.size() > 1) comm.allreduce_sum(&out_of_time, 1);  // all stop together
    if (out_of_time > 0.0 && epoch < options.epochs) {
      summary.status = TrainingStatus::kTimeLimit;
      summary.message = format_message("time limit of ", options.max_seconds, " s reached after ", epoch, " epochs");
      break;
    }
    if (checkpointing.every > 0 && checkpointing.save && epoch % checkpointing.every == 0 && epoch < options.epochs) {
      TrainerState st;
      st.epoch = epoch;
      st.parameters = params.values();
      st.best = best;
      st.average = average;
      st.optimizer = adam.state();
      st.rng = rng.state();
      st.order = order;
      st.validation_seed = validation_seed;
      st.best_loss = best_loss;
      st.since_best = since_best;
      st.pairs_seen = pairs_seen;
      st.lr_scale = lr_scale;
      st.since_cut = since_cut;
      st.summary = summary;
      st.summary.seconds = seconds_before + elapsed();
      checkpointing.save(st);
    }
  }
  if (summary.status == TrainingStatus::kNonFiniteLoss) {
    params.values() = best;  // the best epoch's weights, or the initial ones if none finished
    summary.message += summary.best_epoch > 0
                           ? format_message("; weights of epoch ", summary.best_epoch, " restored")
                           : std::string("; initial weights restored");
    summary.weights_epoch = summary.best_epoch;
  } else if (summary.best_epoch > 0 && options.restore_best) {
    params.values() = best;
    summary.weights_epoch = summary.best_epoch;
  } else {
    if (averaging) params.values() = average;
    summary.weights_epoch = summary.epochs_run;
  }
  summary.best_validation_loss = best_loss;
  summary.seconds = seconds_before + elapsed();
  summary.pairs_per_second = train_seconds > 0.0 ? static_cast<double>(pairs_seen) / train_seconds : 0.0;
  return summary;
}

ProgressCallback log_every_tenth(std::ostream& log, std::string prefix) {
  return [&log, prefix = std::move(prefix)](const EpochReport& e) {
    const bool plateau = e.seconds_left < 0.0;
    const Index every = plateau ? 10 : std::max<Index>(1, e.epochs / 10);
    if (e.epoch % every != 0 && e.epoch != e.epochs) return;
    std::ostringstream line;
    line << prefix << "epoch " << e.epoch;
    if (!plateau) line << "/" << e.epochs;
    line << ": validation loss " << std::setprecision(3) << e.validation_loss;
    if (plateau) {
      line << ", best at epoch " << e.best_epoch << ", " << e.since_best << " of " << e.patience
           << " epochs without improvement\n";
    } else {
      line << ", " << static_cast<long>(e.seconds_left + 0.5) << " s left\n";
    }
    log << line.str() << std::flush;
  };
}

}  // namespace varflow::nn
