#pragma once
// An amortized posterior q(x | y): an encoder maps an observation y to a context c, and a head
// (conditional flow, score-based diffusion or Gaussian regression) is the distribution of the state
// x given c. Both are trained end to end on simulated pairs (x, y) (simulation-based inference,
// Cranmer et al. 2020); afterwards every new y costs one network evaluation.
//
//   Rng rng(seed);
//   TwoMoons problem;
//   AmortizedSetup setup = default_setup("two-moons", HeadType::kFlow);
//   AmortizedPosterior q(setup.network, problem.shape(), rng, problem.name());
//   TrainingSummary s = q.train(problem, setup.pairs, setup.training, rng);
//   Matrix draws = q.sample(y, 1000, rng);           // state_size x 1000
//   std::unique_ptr<Posterior> p = q.posterior(y, 1000, rng);
//   q.save("model.nc");                               // versioned netCDF, see design/formats.md
//
// Units: x and y are in physical units; internally both are z-scored with the mean and standard
// deviation of the training split (stored with the model). Observations: a vector of
// shape().obs_size values; for gridded problems (convolutional encoder) missing values are NaN or
// marked false in `mask`.
//
// Statefulness: the networks cache their last pass, so the methods are non-const and one object must
// not be used by two threads at once (copy the model file and load one per thread instead). Work
// inside a call uses all OpenMP threads.
#include <filesystem>
#include <memory>
#include <string>

#include "varflow/amortized/config.h"
#include "varflow/amortized/heads.h"
#include "varflow/amortized/problems.h"
#include "varflow/core/communicator.h"
#include "varflow/core/random.h"
#include "varflow/core/types.h"
#include "varflow/nn/layers.h"
#include "varflow/nn/parameters.h"
#include "varflow/nn/trainer.h"
#include "varflow/posterior/posterior.h"

namespace varflow::amortized {

// z-scoring statistics from the training split. Standard deviations below 1e-12 (or of a component
// never observed) are stored as 1. With linear_gain = oracle (config.h) the state is first reduced by
// the oracle gain, x - gain (y - y_ref) (a missing y component counts as y_ref), and x_mean, x_std
// are the moments of that residual; gain (state_size x obs_size) and y_ref are empty otherwise.
struct Normalization {
  Vector x_mean, x_std;
  Vector y_mean, y_std;
  Vector y_ref;
  Matrix gain;
};

class AmortizedPosterior {
 public:
  // Builds the networks with random initial weights from rng. Throws InvalidArgument when the
  // configuration does not fit the shape (naming the key). `problem` is a label stored with the model.
  AmortizedPosterior(const AmortizedConfig& config, const ProblemShape& shape, Rng& rng, std::string problem = "");
  ~AmortizedPosterior();
  AmortizedPosterior(AmortizedPosterior&&) noexcept;
  AmortizedPosterior& operator=(AmortizedPosterior&&) noexcept;

  // Reads a model file (format in design/formats.md). Throws InvalidArgument naming the file when it
  // is not a varflow model, has another format version, or fails its checksum (corrupted).
  static AmortizedPosterior load(const std::filesystem::path& file);
  // Writes the model through AtomicOutput (never half-written).
  void save(const std::filesystem::path& file) const;
  // The checksum save() stores (FNV-1a 64 over configuration, shape, normalisation and weights).
  std::string checksum() const;

  const AmortizedConfig& config() const;
  const ProblemShape& shape() const;
  const std::string& problem() const;
  // The problem's definition (Simulator::definition()), stored in the model file inside its
  // checksum; empty for problems defined by their name alone and for files written before it was
  // stored. Set it before save().
  const std::vector<std::pair<std::string, std::string>>& problem_definition() const;
  void set_problem_definition(std::vector<std::pair<std::string, std::string>> entries);
  const Normalization& normalization() const;
  // The summary of the last train() (after load(): the stored loss curves and status).
  const nn::TrainingSummary& training_summary() const;
  bool trained() const;
  std::string describe() const;  // the architecture, one component per line
  Index parameter_count() const;
  nn::ParameterSet& parameters();

  // Trains on the pairs of `data` (its last validation_fraction held out for early stopping). The
  // first call fixes the normalisation and initialises ActNorm layers from data; a later call
  // continues training with the same normalisation. A NaN loss is a status in the summary.
  // When data.labels is not empty, the labelled pairs add the derivative-informed terms weighed by
  // `labels` (config.h, LabelOptions; its `pairs` is not used here); the head must support them
  // (Head::supports_mean_penalty), otherwise InvalidArgument. `checkpointing` saves the trainer's
  // state every few epochs and resumes from a saved one (nn::fit); a resumed training on the same
  // data, seed and threads ends bit-identical to an uninterrupted one.
  // With a communicator of several ranks, every rank calls train() with the same data and seed and
  // the steps are data parallel (nn::fit with a communicator; design/parallel.md).
  nn::TrainingSummary train(const Dataset& data, const nn::TrainingOptions& options, Rng& rng,
                            const nn::ProgressCallback& progress = {}, const LabelOptions& labels = {},
                            const nn::Checkpointing& checkpointing = {},
                            const Communicator& comm = serial_communicator());
  // Simulates `pairs` pairs from `simulator` with rng, labels the first labels.pairs of them with
  // the simulator's oracle (Simulator::label) when labels.pairs > 0, then trains on them.
  nn::TrainingSummary train(const Simulator& simulator, Index pairs, const nn::TrainingOptions& options, Rng& rng,
                            const nn::ProgressCallback& progress = {}, const LabelOptions& labels = {});

  // The posterior mean at y (for flow and score heads: the average over config().mean_samples fixed
  // base draws, see Head::mean).
  Vector mean(const Vector& y, const Mask& mask = Mask());
  // n draws from q(x | y), state_size x n.
  Matrix sample(const Vector& y, Index n, Rng& rng, const Mask& mask = Mask());
  // log q(x_j | y) per column of x (physical units, so including -sum log x_std). Throws
  // InvalidArgument for the score head, which has no tractable density.
  Vector log_prob(const Matrix& x, const Vector& y, const Mask& mask = Mask());
  // Jacobian-vector (d mean/dy) dy and vector-Jacobian (d mean/dy)^T a products of mean() with
  // respect to y (zero for missing entries of y). Both are averages over the mean's base draws, summed
  // in mean_draw_blocks() fixed blocks of kMeanDrawBlock draws (one product per block) and added in
  // block order (blocked_sum, core/communicator.h). With a communicator of several ranks the blocks
  // are split over its ranks: every rank calls with the same arguments (collective) and gets the same
  // bits, the same as on one rank and for any number of threads. design/parallel.md.
  Vector mean_jvp(const Vector& y, const Vector& dy, const Mask& mask = Mask(),
                  const Communicator& comm = serial_communicator());
  Vector mean_vjp(const Vector& y, const Vector& a, const Mask& mask = Mask(),
                  const Communicator& comm = serial_communicator());
  // Base draws per block of mean_jvp / mean_vjp, and the number of blocks: ceil(draws / 50) for the
  // flow and score heads (config().mean_samples draws), 1 for the Gaussian head (its exact mean is one
  // zero draw), so splitting over ranks pays only when it is more than one.
  static constexpr Index kMeanDrawBlock = 50;
  Index mean_draw_blocks() const;
  // The posterior at y as the project's Posterior: GaussianPosterior (mean and covariance L L^T in
  // physical units) for the Gaussian head, SamplePosterior of n draws otherwise; Provenance filled
  // (method "amortized_<head>", iterations = epochs trained, final_cost = best validation loss,
  // converged = training finished without a non-finite loss, config hash, version).
  std::unique_ptr<Posterior> posterior(const Vector& y, Index n, Rng& rng, const Mask& mask = Mask());

  // Mean training loss over a dataset in normalised units (the quantity train() minimises, with the
  // derivative-informed terms when data.labels is not empty); with gradient = true it adds its
  // gradient to parameters().gradients(). For tests and diagnostics.
  double loss(const Dataset& data, Rng& rng, bool gradient, const LabelOptions& labels = {});
  // Score head only: the sampler and number of steps used by sample() and posterior().
  void set_sampler(Sampler sampler, Index steps);
  Provenance provenance() const;

  struct Impl;  // opaque (networks, parameters, normalisation); defined in the library sources

 private:
  AmortizedPosterior() = default;
  std::unique_ptr<Impl> impl_;
};

}  // namespace varflow::amortized
