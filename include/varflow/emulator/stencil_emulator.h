#pragma once
// A neural emulator of a forecast model on a periodic 1-D grid (e.g. Lorenz-96): a Model whose step is
//   x_{k+1} = x_k + s_inc * g((x_k - mu) / s_x),
// with g a local, translation-equivariant stencil network: a periodic convolution over the window
// x_{i-r} .. x_{i+r} (shared weights) into hidden channels, pointwise (kernel 1) hidden layers
// (products of channel pairs, or an activation; see StencilEmulatorConfig::architecture) and a
// pointwise linear read-out to one channel. Each increment x_{k+1,i} - x_{k,i} is thus
// a function of its 2r+1 neighbours only, the same at every grid point (the structure of the
// physics step: one RK4 step of Lorenz-96 depends on x_{i-8} .. x_{i+4}, dominated by the nearest).
//
// TL and AD are the exact Jacobian-vector and vector-Jacobian products of the network with respect to
// the input state (the layers' tangent() and backward(accumulate = false)), so the emulator plugs
// into the unchanged 4D-Var solvers and passes the Model conformance suite. The second-order adjoint
// (both architectures) is the network's forward-over-reverse pass (nn::Layer::second_order_backward)
// with the chain rule of the normalisation: with z = (x - mu) / s_x and M'(x)^T a = a + (s_inc / s_x)
// g'(z)^T a,
//   (d/dx [M'(x)^T a]) dx = (s_inc / s_x^2) (d/dz [g'(z)^T a]) dx,
// so full-Hessian 4D-Var sensitivities (var/exact_sensitivity.h) work with the emulator.
//
// Threading: Model calls are const and concurrent. The layers cache their inputs, so each call leases
// a replica of the network (its own layer caches, the shared weights; ParameterSet::bind_shared) from
// a pool that grows to the number of concurrent callers. Training (train_emulator, forward_normalized,
// backward_normalized) uses the owner network and must not run concurrently with Model calls.
//
// File format (save / load): netCDF, global attributes varflow_file_type = "varflow_stencil_emulator",
// format_version, grid, radius, hidden, layers, activation, dt, name of the physics model,
// x_mean, x_std, increment_std, checksum (FNV-1a 64 over configuration, normalisation and weights);
// variable `weights(parameter)` and the block layout as attribute `layout`. Load verifies version,
// layout and checksum and names the file and field on any mismatch.
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>
#include <string>

#include "varflow/core/random.h"
#include "varflow/core/types.h"
#include "varflow/model/model.h"
#include "varflow/nn/layers.h"
#include "varflow/nn/parameters.h"
#include "varflow/nn/trainer.h"

namespace varflow::emulator {

struct StencilEmulatorConfig {
  Index grid = 40;        // state size n (periodic grid)
  Index radius = 4;       // stencil half-width r: the window x_{i-r} .. x_{i+r}
  Index hidden = 32;      // channels of the hidden layers
  Index layers = 2;       // pointwise hidden layers after the stencil layer (>= 0)
  std::string activation = "tanh";
  // "polynomial": conv(1 -> 2h, window) -> product -> `layers` x [conv(h -> 2h, 1) -> product] ->
  //   conv(h -> 1, 1): a polynomial of degree 2^(layers+1) in the window (activation unused);
  // "mlp": conv(1 -> h, window) -> act -> `layers` x [conv(h -> h, 1) -> act] -> conv(h -> 1, 1).
  std::string architecture = "polynomial";
  double dt = 0.05;       // the time step the emulator was trained for (a label; used in name())
  std::string physics = "lorenz96";  // what it emulates (a label)

  // Throws InvalidArgument naming the field, its value and the rule.
  void validate() const;
};

class StencilEmulator final : public Model {
 public:
  // Builds the network with zero weights; call initialize() or load weights before use.
  explicit StencilEmulator(StencilEmulatorConfig config);

  Index state_size() const override { return config_.grid; }
  bool has_second_order() const override { return net_->has_second_order(); }
  std::string name() const override;
  const StencilEmulatorConfig& config() const { return config_; }

  // Draws initial weights (LeCun; the read-out small, so the emulator starts near the identity).
  void initialize(Rng& rng);
  // The affine normalisation: inputs (x - x_mean) / x_std, increments increment_std * output.
  void set_normalization(double x_mean, double x_std, double increment_std);
  double x_mean() const { return x_mean_; }
  double x_std() const { return x_std_; }
  double increment_std() const { return increment_std_; }

  nn::ParameterSet& parameters() { return params_; }
  const nn::ParameterSet& parameters() const { return params_; }
  nn::Sequential& network() { return *net_; }

  // Normalised increments of a batch: out = g((x - mu) / s_x), x of size n x B (one state per column).
  // Caches for backward_normalized (training).
  void forward_normalized(const Matrix& x, Matrix& out);
  // Back-propagates dL/d(out) of the last forward_normalized, ADDING dL/dtheta to parameters().gradients().
  void backward_normalized(const Matrix& d_out);

  // FNV-1a 64 checksum (16 hex digits) of configuration, normalisation and weights.
  std::string checksum() const;
  // Writes the model file atomically (see the format above).
  void save(const std::filesystem::path& file) const;
  // Reads a model file; InvalidArgument naming the file and field on a wrong type, version, layout or
  // checksum.
  static std::unique_ptr<StencilEmulator> load(const std::filesystem::path& file);

 protected:
  void do_step(Vector& x) const override;
  void do_step_tangent(const Vector& x, Vector& dx) const override;
  void do_step_adjoint(const Vector& x, Vector& ax) const override;
  void do_step_second_order_adjoint(const Vector& x, const Vector& dx, const Vector& ax_next,
                                    Vector& out) const override;

 private:
  // A copy of the network on the owner's weights, for one Model call at a time.
  struct Replica {
    std::unique_ptr<nn::Sequential> net;
    nn::ParameterSet params;
  };
  // Holds a replica from the pool for its lifetime and gives it back on destruction.
  class Lease {
   public:
    explicit Lease(const StencilEmulator& owner);
    ~Lease();
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    nn::Sequential& net() { return *replica_->net; }

   private:
    const StencilEmulator& owner_;
    std::unique_ptr<Replica> replica_;
  };

  StencilEmulatorConfig config_;
  std::unique_ptr<nn::Sequential> net_;  // the owner: its parameters_ hold the weights
  nn::ParameterSet params_;
  double x_mean_ = 0.0, x_std_ = 1.0, increment_std_ = 1.0;
  mutable std::mutex pool_mutex_;                          // guards free_replicas_
  mutable std::vector<std::unique_ptr<Replica>> free_replicas_;
};

// Pairs (x_k, x_{k+1}) of a physics model: `count` states spaced `stride` steps along one trajectory
// started from `spinup` steps after x0 + 0.01 N(0, I) (x0 = forcing-like constant 8 for Lorenz-96 is
// the caller's choice). states and next are n x count.
struct TrajectoryPairs {
  Matrix states;
  Matrix next;
};
// With step_multiple m > 1, next is m steps after states (the pairs of an emulator at a time step of
// m physics steps); the states are then max(stride, m) steps apart.
TrajectoryPairs simulate_pairs(const Model& physics, const Vector& x0, Index count, Index spinup, Index stride,
                               Rng& rng, Index step_multiple = 1);
// The leading `rows` components of the pairs (the resolved variables of a multi-scale physics).
TrajectoryPairs leading_rows(const TrajectoryPairs& pairs, Index rows);

// The emulators' training schedule (step 3 of the cycle): a fixed budget of `epochs` with cosine
// decay from learning_rate, batches of 32, no weight decay and no early stopping.
nn::TrainingOptions fixed_budget_training(Index epochs, double learning_rate);

// Sets the emulator's normalisation from the pairs and fits the network to the normalised increments
// (mean squared error) with nn::fit (AdamW, cosine schedule, early stopping on the last
// options.validation_fraction of the pairs). A NaN loss is reported in the summary's status.
nn::TrainingSummary train_emulator(StencilEmulator& emulator, const TrajectoryPairs& pairs,
                                   const nn::TrainingOptions& options, Rng& rng,
                                   const nn::ProgressCallback& progress = {});

}  // namespace varflow::emulator
