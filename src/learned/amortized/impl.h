#pragma once
// Internal state of AmortizedPosterior, shared by its implementation and the model-file code.
#include <memory>
#include <vector>

#include "varflow/amortized/amortized_posterior.h"

namespace varflow::amortized {

// One copy of the networks. Replica 0 owns the parameter values; the others share them (with
// gradients and layer caches of their own), so that each OpenMP thread works on its own shard of a
// batch in one parallel region: coarse-grained data parallelism, robust for small networks where a
// fork/join per matrix product would cost more than it saves.
struct Replica {
  std::unique_ptr<nn::Sequential> encoder;
  nn::ConstantChannels* constants = nullptr;  // in `encoder` (local encoder), else null; not owned
  nn::LinearChannels* gain = nullptr;         // in `encoder` (encoder.gain_channel), else null; not owned
  std::unique_ptr<Head> head;
  nn::ParameterSet params;
};

// Oracle labels in normalised units (mean and dx divided by x_std, dy by y_std), with the weights
// of the derivative-informed loss terms (config.h, LabelOptions).
struct NormalizedLabels {
  Matrix mean, dy, dx;
  // Per probe column: |J dy|^2 of the full label (before the oracle gain's share is taken off dx),
  // the scale of its relative J term, so that a gain that explains a label does not inflate its weight.
  Vector dx_norm2;
  // log of the variance labels (state_size x pairs, NaN for unlabelled pairs); empty when the
  // variance term is off (weights.variance_weight = 0) or the pairs carry none.
  Matrix log_variance;
  Index probes = 0;
  LabelOptions weights;
  bool empty() const { return mean.size() == 0; }
};

struct AmortizedPosterior::Impl {
  AmortizedConfig config;
  ProblemShape shape;
  std::string problem;
  std::vector<std::pair<std::string, std::string>> problem_definition;  // Simulator::definition()
  Normalization norm;
  bool trained = false;
  nn::TrainingSummary summary;
  std::vector<std::unique_ptr<Replica>> replicas;  // [0] owns the parameters

  // Builds and binds replica 0 (parameters zero until initialised).
  Impl(const AmortizedConfig& c, const ProblemShape& s, std::string p);
  nn::Sequential& encoder() { return *replicas[0]->encoder; }
  Head& head() { return *replicas[0]->head; }
  nn::ParameterSet& params() { return replicas[0]->params; }
  // Makes sure replicas 0 .. count-1 exist (call outside parallel regions).
  void ensure_replicas(int count);
  // A new replica: encoder, head and their parameter blocks, not yet bound (replica 0 binds its own
  // values, the others bind_shared them).
  std::unique_ptr<Replica> make_replica() const;
  // Number of shards for `columns` columns of work: one per OpenMP thread, each at least
  // `min_columns` wide.
  static int shards(Index columns, Index min_columns);

  // y in physical units with NaN or mask=false for missing -> normalised, NaN for missing.
  // Throws InvalidArgument on a wrong size, an infinite value or a missing value an MLP encoder
  // cannot take.
  Vector prepare_y(const Vector& y, const Mask& mask, const char* where) const;
  Matrix normalize_y(const Matrix& y) const;
  // x (physical units) given y (physical units, NaN = missing; one column per column of x, or one
  // column for all) -> normalised: (x - gain (y - y_ref) - x_mean) / x_std; and back.
  Matrix normalize_x(const Matrix& x, const Matrix& y) const;
  Matrix denormalize_x(const Matrix& xn, const Matrix& y) const;
  // prepare_y's output back in physical units, NaN where missing (masked entries included).
  Vector observed(const Vector& yn) const;
  // gain (dy with the missing components of y (NaN) zeroed): the oracle gain's share of a mean JVP;
  // zero without a gain. y: any scaling of the observation with NaN where missing (e.g. prepare_y's).
  Vector gain_jvp(const Vector& y, const Vector& dy) const;
  // gain^T a, zero on missing components of y: its share of a mean VJP.
  Vector gain_vjp(const Vector& y, const Vector& a) const;
  NormalizedLabels normalize_labels(const OracleLabels& labels, const Matrix& y, const LabelOptions& weights) const;
  // InvalidArgument when data carries labels and the head cannot use them, or the variance term is
  // on (weights.variance_weight > 0) without variance labels or a head that can use them.
  void check_labels_supported(const Dataset& data, const LabelOptions& weights);
  // Local encoder: sets the constant channels (and the gain channel) of a replica's encoder (of
  // every replica) from norm; a no-op for the other encoders. Call whenever norm changes.
  void set_constants(Replica& r) const;
  void sync_constants();
};

// The local encoder's constant channels (2 + 2 obs_slots of obs_grid values) from the
// normalisation: the state mean (the prior centre; standardised over the grid), log of the state
// sd, the observation means per slot (on the state mean's scale) and the log observation sds.
Index local_constant_channels(const ProblemShape& shape);
Matrix local_constants(const Normalization& norm, const ProblemShape& shape);
// An encoder network with typed handles to the layers its owner sets (not owned; null when absent).
struct EncoderNetwork {
  std::unique_ptr<nn::Sequential> net;
  nn::ConstantChannels* constants = nullptr;  // local encoder: the channels set from the normalisation
  nn::LinearChannels* gain = nullptr;         // encoder.gain_channel: the map set from the stored gain
};
// encoder.gain_channel: the map from the mask channels' output (value and mask channels per slot,
// normalised y) to K (y - y_ref) in the residual's normalised units, a (obs_grid x 2 obs_slots
// obs_grid) matrix; zero before a gain is stored.
Matrix gain_channel_map(const Normalization& norm, const ProblemShape& shape);
// Encoder for a configuration and shape (documented in design/amortized.md).
EncoderNetwork make_encoder(const EncoderOptions& o, const ProblemShape& shape);

}  // namespace varflow::amortized
