#include "varflow/amortized/amortized_posterior.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <numeric>

#include <omp.h>

#include "impl.h"
#include "varflow/core/error.h"
#include "varflow/covariance/covariances.h"
#include "varflow/version.h"

namespace varflow::amortized {

Index local_constant_channels(const ProblemShape& shape) { return 2 + 2 * shape.obs_slots; }

Matrix local_constants(const Normalization& norm, const ProblemShape& shape) {
  const Index n = shape.obs_grid, slots = shape.obs_slots;
  const double centre = norm.x_mean.mean();
  const double spread = norm.x_mean.size() > 1
                            ? std::sqrt((norm.x_mean.array() - centre).square().sum() / static_cast<double>(norm.x_mean.size() - 1))
                            : 0.0;
  const double scale = spread > 1e-12 ? spread : 1.0;
  Matrix c(local_constant_channels(shape), n);
  c.row(0) = ((norm.x_mean.array() - centre) / scale).transpose();
  c.row(1) = norm.x_std.array().log().transpose();
  for (Index s = 0; s < slots; ++s) {
    c.row(2 + s) = ((norm.y_mean.segment(s * n, n).array() - centre) / scale).transpose();
    c.row(2 + slots + s) = norm.y_std.segment(s * n, n).array().log().transpose();
  }
  return c;
}

Matrix gain_channel_map(const Normalization& norm, const ProblemShape& shape) {
  const Index n = shape.obs_grid, slots = shape.obs_slots;
  Matrix a = Matrix::Zero(n, 2 * slots * n);
  if (norm.gain.size() == 0) return a;
  // For a present y_j: y_j - y_ref_j = y_std_j v_j + (y_mean_j - y_ref_j), v the value channel and
  // the mask channel 1; a missing y_j (both channels 0) contributes nothing, as in gain_shift.
  for (Index s = 0; s < slots; ++s) {
    for (Index i = 0; i < n; ++i) {
      const Index j = s * n + i;
      if (std::isnan(norm.y_ref[j])) continue;  // never observed in training: the gain does not act
      const Vector column = norm.gain.col(j).cwiseQuotient(norm.x_std);
      a.col(2 * s * n + i) = column * norm.y_std[j];
      a.col((2 * s + 1) * n + i) = column * (norm.y_mean[j] - norm.y_ref[j]);
    }
  }
  return a;
}

EncoderNetwork make_encoder(const EncoderOptions& o, const ProblemShape& shape) {
  if (o.type == EncoderType::kMlp) {
    // Gridded observations may be missing (NaN): [value, mask] channels in front of the MLP.
    const Index inputs = shape.gridded() ? 2 * shape.obs_size : shape.obs_size;
    auto mlp = nn::make_mlp(inputs, o.width, o.depth, o.context, o.activation);
    if (!o.linear_skip && !shape.gridded()) return {std::move(mlp)};
    auto s = std::make_unique<nn::Sequential>();
    if (shape.gridded()) s->emplace<nn::MaskChannels>(shape.obs_slots, shape.obs_grid);
    if (o.linear_skip) {
      s->emplace<nn::LinearSkip>(std::move(mlp));
    } else {
      s->add(std::move(mlp));
    }
    return {std::move(s)};
  }
  const nn::Init hidden = o.activation == nn::Activation::kRelu ? nn::Init::kHe : nn::Init::kLecun;
  if (o.type == EncoderType::kLocal) {
    // Fully convolutional: [value, mask] channels per slot and the constant channels of
    // local_constants() -> conv_layers periodic convolutions -> a pointwise convolution to 2 channels
    // (mean and log-sd per grid point).
    auto s = std::make_unique<nn::Sequential>();
    const Index n = shape.obs_grid;
    s->emplace<nn::MaskChannels>(shape.obs_slots, n);
    Index channels = 2 * shape.obs_slots;
    nn::LinearChannels* gain = nullptr;
    if (o.gain_channel) {
      auto g = std::make_unique<nn::LinearChannels>(channels * n, 1, n);
      gain = g.get();
      s->add(std::move(g));
      channels += 1;
    }
    auto constants = std::make_unique<nn::ConstantChannels>(channels * n, local_constant_channels(shape), n);
    nn::ConstantChannels* handle = constants.get();
    s->add(std::move(constants));
    channels += local_constant_channels(shape);
    for (Index l = 0; l < o.conv_layers; ++l) {
      s->emplace<nn::PeriodicConv1d>(channels, o.channels, n, o.kernel, hidden);
      s->emplace<nn::ActivationLayer>(o.activation, o.channels * n);
      channels = o.channels;
    }
    s->emplace<nn::PeriodicConv1d>(channels, 2, n, 1, nn::Init::kSmall);
    return {std::move(s), handle, gain};
  }
  // Convolutional encoder: [value, mask] channels per slot -> periodic convolutions -> dense layers.
  // With linear_skip the layers after the mask channels sit in a LinearSkip (a dense linear path
  // from the values and masks to the context).
  auto s = std::make_unique<nn::Sequential>();
  const Index n = shape.obs_grid;
  s->emplace<nn::MaskChannels>(shape.obs_slots, n);
  auto body = std::make_unique<nn::Sequential>();
  nn::Sequential& b = o.linear_skip ? *body : *s;
  Index channels = 2 * shape.obs_slots;
  for (Index l = 0; l < o.conv_layers; ++l) {
    b.emplace<nn::PeriodicConv1d>(channels, o.channels, n, o.kernel, hidden);
    b.emplace<nn::ActivationLayer>(o.activation, o.channels * n);
    channels = o.channels;
  }
  Index prev = channels * n;
  for (Index l = 0; l < o.depth; ++l) {
    b.emplace<nn::Dense>(prev, o.width, hidden);
    b.emplace<nn::ActivationLayer>(o.activation, o.width);
    prev = o.width;
  }
  b.emplace<nn::Dense>(prev, o.context);
  if (o.linear_skip) s->emplace<nn::LinearSkip>(std::move(body));
  return {std::move(s)};
}

// ---- Impl ------------------------------------------------------------------------------------------

AmortizedPosterior::Impl::Impl(const AmortizedConfig& c, const ProblemShape& s, std::string p)
    : config(c), shape(s), problem(std::move(p)) {
  config.validate(shape);
  auto r = make_replica();
  r->params.bind();
  replicas.push_back(std::move(r));
  norm.x_mean = Vector::Zero(shape.state_size);
  norm.x_std = Vector::Ones(shape.state_size);
  norm.y_mean = Vector::Zero(shape.obs_size);
  norm.y_std = Vector::Ones(shape.obs_size);
  sync_constants();
}

std::unique_ptr<Replica> AmortizedPosterior::Impl::make_replica() const {
  auto r = std::make_unique<Replica>();
  auto encoder_network = make_encoder(config.encoder, shape);
  r->encoder = std::move(encoder_network.net);
  r->constants = encoder_network.constants;
  r->gain = encoder_network.gain;
  r->head = make_head(config, shape.state_size);
  r->params.add("encoder", *r->encoder);
  r->params.add("head", *r->head);
  return r;
}

void AmortizedPosterior::Impl::set_constants(Replica& r) const {
  if (r.constants) r.constants->set_constants(local_constants(norm, shape));
  if (r.gain) r.gain->set_map(gain_channel_map(norm, shape));
}

void AmortizedPosterior::Impl::sync_constants() {
  for (auto& r : replicas) set_constants(*r);
}

void AmortizedPosterior::Impl::ensure_replicas(int count) {
  while (static_cast<int>(replicas.size()) < count) {
    auto r = make_replica();
    r->params.bind_shared(params());
    set_constants(*r);
    replicas.push_back(std::move(r));
  }
}

int AmortizedPosterior::Impl::shards(Index columns, Index min_columns) {
  const Index by_size = std::max<Index>(1, columns / std::max<Index>(min_columns, 1));
  return static_cast<int>(std::min<Index>(omp_get_max_threads(), by_size));
}

namespace {
// Column range [begin, end) of shard r of s over n columns.
inline Index shard_begin(Index n, int r, int s) { return n * r / s; }
constexpr Index kMinShardColumns = 32;  // fewer columns per thread than this are not worth a replica
}  // namespace

Vector AmortizedPosterior::Impl::prepare_y(const Vector& y, const Mask& mask, const char* where) const {
  check_size(where, "y", y.size(), shape.obs_size);
  if (mask.size() != 0) check_size(where, "mask", mask.size(), shape.obs_size);
  Vector out(y.size());
  for (Index i = 0; i < y.size(); ++i) {
    const bool missing = std::isnan(y[i]) || (mask.size() != 0 && !mask[i]);
    if (std::isinf(y[i])) throw InvalidArgument(format_message(where, ": y[", i, "] = ", y[i], " is not finite"));
    if (missing && !shape.gridded()) {
      throw InvalidArgument(format_message(where, ": y[", i, "] is missing, but the ", to_string(config.encoder.type),
                                           " encoder of this model needs every observation"));
    }
    out[i] = missing ? std::nan("") : (y[i] - norm.y_mean[i]) / norm.y_std[i];
  }
  return out;
}

NormalizedLabels AmortizedPosterior::Impl::normalize_labels(const OracleLabels& l, const Matrix& y,
                                                            const LabelOptions& weights) const {
  NormalizedLabels out;
  if (l.empty()) return out;
  out.mean = normalize_x(l.mean, y);
  out.dy = l.dy.array().colwise() / norm.y_std.array();
  out.dx_norm2 = (l.dx.array().colwise() / norm.x_std.array()).matrix().colwise().squaredNorm().transpose();
  // The probes of unlabelled pairs are zero, so the gain's share of them is too.
  out.dx = norm.gain.size() == 0 ? Matrix(l.dx) : Matrix(l.dx - norm.gain * l.dy);
  out.dx.array().colwise() /= norm.x_std.array();
  out.probes = l.probes;
  out.weights = weights;
  // Variances in the residual's normalised units (the gain's shift is deterministic given y).
  if (weights.variance_weight > 0.0 && l.variance.size() != 0) {
    out.log_variance = l.variance.array().log().matrix();
    out.log_variance.colwise() -= (2.0 * norm.x_std.array().log()).matrix();
  }
  return out;
}

Matrix AmortizedPosterior::Impl::normalize_y(const Matrix& y) const {
  return (y.colwise() - norm.y_mean).array().colwise() / norm.y_std.array();
}
namespace {
// v with the components the oracle gain does not act on set to zero: those missing in y (NaN; y in
// any scaling) or never observed in training (NaN in y_ref). The one rule for the gain's shift, JVP
// and VJP.
Vector zero_unobserved(Vector v, const Vector& y, const Vector& y_ref) {
  for (Index i = 0; i < v.size(); ++i) {
    if (std::isnan(y[i]) || std::isnan(y_ref[i])) v[i] = 0.0;
  }
  return v;
}
// gain (y - y_ref) for each column of y, as `cols` columns (one column of y is repeated).
Matrix gain_shift(const Normalization& norm, const Matrix& y, Index cols) {
  assert(y.cols() == cols || y.cols() == 1);
  Matrix d(y.rows(), y.cols());
  for (Index j = 0; j < y.cols(); ++j) d.col(j) = zero_unobserved(y.col(j) - norm.y_ref, y.col(j), norm.y_ref);
  const Matrix shift = norm.gain * d;
  return shift.cols() == cols ? shift : Matrix(shift.replicate(1, cols));
}
}  // namespace

Matrix AmortizedPosterior::Impl::normalize_x(const Matrix& x, const Matrix& y) const {
  Matrix r = x.colwise() - norm.x_mean;
  if (norm.gain.size() != 0) r -= gain_shift(norm, y, r.cols());
  return r.array().colwise() / norm.x_std.array();
}
Matrix AmortizedPosterior::Impl::denormalize_x(const Matrix& xn, const Matrix& y) const {
  Matrix x = (xn.array().colwise() * norm.x_std.array()).matrix().colwise() + norm.x_mean;
  if (norm.gain.size() != 0) x += gain_shift(norm, y, x.cols());
  return x;
}
Vector AmortizedPosterior::Impl::observed(const Vector& yn) const {
  return yn.cwiseProduct(norm.y_std) + norm.y_mean;
}
Vector AmortizedPosterior::Impl::gain_jvp(const Vector& y, const Vector& dy) const {
  if (norm.gain.size() == 0) return Vector::Zero(shape.state_size);
  return norm.gain * zero_unobserved(dy, y, norm.y_ref);
}
Vector AmortizedPosterior::Impl::gain_vjp(const Vector& y, const Vector& a) const {
  if (norm.gain.size() == 0) return Vector::Zero(shape.obs_size);
  return zero_unobserved(norm.gain.transpose() * a, y, norm.y_ref);
}

void AmortizedPosterior::Impl::check_labels_supported(const Dataset& data, const LabelOptions& weights) {
  if (!data.labels.empty()) head().check_mean_penalty_supported();
  if (weights.variance_weight > 0.0 && !data.labels.empty()) {
    head().check_variance_penalty_supported();
    if (data.labels.variance.size() == 0) {
      throw InvalidArgument(format_message("labels.variance_weight = ", weights.variance_weight,
                                           " > 0, but the pairs carry no variance labels (Simulator::label_variances)"));
    }
  }
}

// ---- AmortizedPosterior ----------------------------------------------------------------------------

AmortizedPosterior::AmortizedPosterior(const AmortizedConfig& config, const ProblemShape& shape, Rng& rng,
                                       std::string problem)
    : impl_(std::make_unique<Impl>(config, shape, std::move(problem))) {
  impl_->encoder().initialize(rng);
  impl_->head().initialize(rng);
}

AmortizedPosterior::~AmortizedPosterior() = default;
AmortizedPosterior::AmortizedPosterior(AmortizedPosterior&&) noexcept = default;
AmortizedPosterior& AmortizedPosterior::operator=(AmortizedPosterior&&) noexcept = default;

const AmortizedConfig& AmortizedPosterior::config() const { return impl_->config; }
const ProblemShape& AmortizedPosterior::shape() const { return impl_->shape; }
const std::string& AmortizedPosterior::problem() const { return impl_->problem; }
const std::vector<std::pair<std::string, std::string>>& AmortizedPosterior::problem_definition() const {
  return impl_->problem_definition;
}
void AmortizedPosterior::set_problem_definition(std::vector<std::pair<std::string, std::string>> entries) {
  impl_->problem_definition = std::move(entries);
}
const Normalization& AmortizedPosterior::normalization() const { return impl_->norm; }
const nn::TrainingSummary& AmortizedPosterior::training_summary() const { return impl_->summary; }
bool AmortizedPosterior::trained() const { return impl_->trained; }
Index AmortizedPosterior::parameter_count() const { return impl_->params().size(); }
nn::ParameterSet& AmortizedPosterior::parameters() { return impl_->params(); }

std::string AmortizedPosterior::describe() const {
  return format_message("encoder (", to_string(impl_->config.encoder.type), "): ", impl_->encoder().describe(), "\n",
                        impl_->head().describe(), "\n", impl_->params().size(), " parameters");
}

namespace {

// Mean and standard deviation per row over the finite entries; rows with fewer than two finite
// entries or a tiny spread get mean 0 (if none) and standard deviation 1.
void row_moments(const Matrix& m, Vector& mean, Vector& sd) {
  mean = Vector::Zero(m.rows());
  sd = Vector::Ones(m.rows());
  for (Index i = 0; i < m.rows(); ++i) {
    double s = 0.0, s2 = 0.0;
    Index count = 0;
    for (Index j = 0; j < m.cols(); ++j) {
      if (std::isfinite(m(i, j))) { s += m(i, j); ++count; }
    }
    if (count == 0) continue;
    mean[i] = s / static_cast<double>(count);
    for (Index j = 0; j < m.cols(); ++j) {
      if (std::isfinite(m(i, j))) s2 += (m(i, j) - mean[i]) * (m(i, j) - mean[i]);
    }
    const double v = count > 1 ? s2 / static_cast<double>(count - 1) : 0.0;
    if (std::sqrt(v) > 1e-12) sd[i] = std::sqrt(v);
  }
}

// The training objective over normalised pairs, data-parallel: a batch is split into one shard per
// thread, each replica computes the mean loss of its shard and its gradient, and the results are
// combined in shard order (deterministic for a given number of threads). With labels, the shard's
// labelled pairs add the derivative-informed terms of LabelOptions (config.h).
class PairsObjective final : public nn::TrainingObjective {
 public:
  PairsObjective(AmortizedPosterior::Impl& impl, const Matrix& xn, const Matrix& yn, const NormalizedLabels& labels)
      : impl_(impl), xn_(xn), yn_(yn), labels_(labels) {}
  nn::ParameterSet& parameters() override { return impl_.params(); }
  double batch_loss(const std::vector<Index>& items, bool gradient, Rng& rng) override {
    const Index b = static_cast<Index>(items.size());
    const int s = AmortizedPosterior::Impl::shards(b, kMinShardColumns);
    if (s == 1) return shard_loss(*impl_.replicas[0], items, 0, b, gradient, rng);
    impl_.ensure_replicas(s);
    std::vector<Rng> rngs;
    for (int r = 0; r < s; ++r) rngs.emplace_back(rng.engine()());
    auto main_grad = impl_.params().gradients();
    const Vector saved = gradient ? main_grad : Vector();
    std::vector<double> losses(static_cast<std::size_t>(s)), weights(static_cast<std::size_t>(s));
    for (int r = 0; r < s; ++r) {
      weights[static_cast<std::size_t>(r)] =
          static_cast<double>(shard_begin(b, r + 1, s) - shard_begin(b, r, s)) / static_cast<double>(b);
    }
    // The gradients are combined by the same threads, each over its own range of parameters (the
    // same operations per element as one pass, so the same bits): a serial pass would leave the
    // other threads spinning meanwhile, which slows it on cores that share a physical core.
    const Index p = main_grad.size();
#pragma omp parallel num_threads(s)
    {
#pragma omp for schedule(static, 1)
      for (int r = 0; r < s; ++r) {
        Replica& rep = *impl_.replicas[static_cast<std::size_t>(r)];
        if (gradient) rep.params.zero_gradients();
        losses[static_cast<std::size_t>(r)] = shard_loss(rep, items, shard_begin(b, r, s), shard_begin(b, r + 1, s),
                                                         gradient, rngs[static_cast<std::size_t>(r)]);
      }
      if (gradient) {
#pragma omp for schedule(static)
        for (int t = 0; t < s; ++t) {
          const Index begin = shard_begin(p, t, s), count = shard_begin(p, t + 1, s) - begin;
          auto g = main_grad.segment(begin, count);
          g *= weights[0];
          for (int r = 1; r < s; ++r) {
            g += weights[static_cast<std::size_t>(r)] *
                 impl_.replicas[static_cast<std::size_t>(r)]->params.gradients().segment(begin, count);
          }
          g += saved.segment(begin, count);
        }
      }
    }
    double total = 0.0;
    for (int r = 0; r < s; ++r) total += weights[static_cast<std::size_t>(r)] * losses[static_cast<std::size_t>(r)];
    return total;
  }

 private:
  double shard_loss(Replica& rep, const std::vector<Index>& items, Index begin, Index end, bool gradient, Rng& rng) {
    const Index b = end - begin;
    // The labelled pairs of the shard (local column, item).
    std::vector<std::pair<Index, Index>> labelled;
    if (!labels_.empty()) {
      for (Index j = 0; j < b; ++j) {
        const Index item = items[static_cast<std::size_t>(begin + j)];
        if (!std::isnan(labels_.mean(0, item))) labelled.emplace_back(j, item);
      }
    }
    const Index k = labels_.probes;
    const Index extra = k * static_cast<Index>(labelled.size());
    Matrix xb(xn_.rows(), b), yb(yn_.rows(), b + extra), ctx, dctx, dy;
    for (Index j = 0; j < b; ++j) {
      xb.col(j) = xn_.col(items[static_cast<std::size_t>(begin + j)]);
      yb.col(j) = yn_.col(items[static_cast<std::size_t>(begin + j)]);
    }
    // Probe columns: y + h v for every probe v of every labelled pair (column b + l k + p).
    std::vector<double> steps(static_cast<std::size_t>(extra));
    for (std::size_t l = 0; l < labelled.size(); ++l) {
      const auto [j, item] = labelled[l];
      for (Index p = 0; p < k; ++p) {
        const Index c = static_cast<Index>(l) * k + p;
        const auto v = labels_.dy.col(item * k + p);
        const double rms = v.norm() / std::sqrt(static_cast<double>(v.size()));
        const double h = labels_.weights.step / std::max(rms, 1e-300);
        steps[static_cast<std::size_t>(c)] = h;
        yb.col(b + c) = yb.col(j) + h * v;
      }
    }
    rep.encoder->forward(yb, ctx);
    double loss = 0.0;
    if (labelled.empty()) {
      loss = rep.head->loss(xb, ctx, rng, gradient, gradient ? &dctx : nullptr);
    } else {
      const LabelOptions& w = labels_.weights;
      const double inv_b = 1.0 / static_cast<double>(b);
      const auto penalty = [&](const Matrix& m, Matrix* grad) {
        const double d = static_cast<double>(m.rows());
        if (grad) *grad = Matrix::Zero(m.rows(), m.cols());
        double value = 0.0;
        for (std::size_t l = 0; l < labelled.size(); ++l) {
          const auto [j, item] = labelled[l];
          if (w.mean_weight > 0.0) {
            const Vector r = m.col(j) - labels_.mean.col(item);
            value += w.mean_weight * 0.5 * r.squaredNorm() * inv_b;
            if (grad) grad->col(j) += (w.mean_weight * inv_b) * r;
          }
          if (w.jacobian_weight <= 0.0) continue;
          for (Index p = 0; p < k; ++p) {
            const Index c = static_cast<Index>(l) * k + p;
            const double h = steps[static_cast<std::size_t>(c)];
            const auto target = labels_.dx.col(item * k + p);
            const double norm2 = std::max(labels_.dx_norm2[item * k + p], 1e-12 * d);
            const Vector r = (m.col(b + c) - m.col(j)) / h - target;
            const double scale = w.jacobian_weight * d / (norm2 * static_cast<double>(k)) * inv_b;
            value += 0.5 * scale * r.squaredNorm();
            if (grad) {
              grad->col(b + c) += (scale / h) * r;
              grad->col(j) -= (scale / h) * r;
            }
          }
        }
        return value;
      };
      // Variance labels: w_v 0.5 |log v_net - log v_oracle|^2 per labelled pair (its first b columns).
      Head::VariancePenalty variance_penalty;
      if (labels_.log_variance.size() != 0) {
        variance_penalty = [&](const Matrix& log_v, Matrix* grad) {
          if (grad) *grad = Matrix::Zero(log_v.rows(), log_v.cols());
          double value = 0.0;
          for (const auto& [j, item] : labelled) {
            const Vector r = log_v.col(j) - labels_.log_variance.col(item);
            value += w.variance_weight * 0.5 * r.squaredNorm() * inv_b;
            if (grad) grad->col(j) = (w.variance_weight * inv_b) * r;
          }
          return value;
        };
      }
      loss = rep.head->loss_with_moment_penalties(xb, ctx, rng, gradient, gradient ? &dctx : nullptr, penalty,
                                                  variance_penalty, w.draws);
    }
    if (gradient) rep.encoder->backward(dctx, dy, true);
    return loss;
  }
  AmortizedPosterior::Impl& impl_;
  const Matrix& xn_;
  const Matrix& yn_;
  const NormalizedLabels& labels_;
};

}  // namespace

nn::TrainingSummary AmortizedPosterior::train(const Dataset& data, const nn::TrainingOptions& options, Rng& rng,
                                              const nn::ProgressCallback& progress, const LabelOptions& label_options,
                                              const nn::Checkpointing& checkpointing, const Communicator& comm) {
  options.validate();
  label_options.validate();
  data.validate(impl_->shape);
  impl_->check_labels_supported(data, label_options);
  const Index n = data.size();
  const Index n_val = std::max<Index>(1, static_cast<Index>(std::llround(options.validation_fraction * static_cast<double>(n))));
  const Index n_train = n - n_val;
  if (n_train < 1) {
    throw InvalidArgument(format_message("AmortizedPosterior::train: pairs = ", n,
                                         " are too few to hold out a validation split"));
  }
  Impl& im = *impl_;
  if (!im.trained) {
    if (im.config.linear_gain == LinearGain::kOracle) {
      if (data.oracle_gain.empty()) {
        throw InvalidArgument("AmortizedPosterior::train: linear_gain = oracle, but the pairs carry no oracle gain "
                              "(Simulator::linearize): train from a problem with an oracle, or set linear_gain: none");
      }
      im.norm.y_ref = data.oracle_gain.y_ref;
      im.norm.gain = data.oracle_gain.gain;
    }
    Matrix residual = data.x.leftCols(n_train);  // what the head models: x - gain (y - y_ref)
    if (im.norm.gain.size() != 0) residual -= gain_shift(im.norm, data.y.leftCols(n_train), n_train);
    row_moments(residual, im.norm.x_mean, im.norm.x_std);
    row_moments(data.y.leftCols(n_train), im.norm.y_mean, im.norm.y_std);
    im.sync_constants();
  }
  const Matrix xn = im.normalize_x(data.x, data.y), yn = im.normalize_y(data.y);
  const NormalizedLabels labels = im.normalize_labels(data.labels, data.y, label_options);
  if (!im.trained) {
    // Data-dependent initialisation (ActNorm) from up to 2048 training pairs.
    const Index m = std::min<Index>(n_train, 2048);
    Matrix ctx;
    im.encoder().forward(yn.leftCols(m), ctx);
    im.head().initialize_from_data(xn.leftCols(m), ctx);
  }
  PairsObjective objective(im, xn, yn, labels);
  im.summary = nn::fit(objective, n_train, n_val, options, rng, progress, checkpointing, comm);
  if (im.summary.epochs_run > 0) im.trained = true;
  return im.summary;
}

nn::TrainingSummary AmortizedPosterior::train(const Simulator& simulator, Index pairs,
                                              const nn::TrainingOptions& options, Rng& rng,
                                              const nn::ProgressCallback& progress, const LabelOptions& labels) {
  check_at_least("AmortizedPosterior::train", "pairs", pairs, 2);
  if (!(simulator.shape() == impl_->shape)) {
    throw InvalidArgument(format_message("AmortizedPosterior::train: simulator ", simulator.name(),
                                         " does not have the shape of this model"));
  }
  options.validate();
  labels.validate();
  impl_->problem_definition = simulator.definition();
  check_labels_supported(impl_->config, labels, impl_->shape.state_size);  // before the oracle's solves
  Dataset data = simulator.simulate(pairs, rng);
  add_oracle_information(simulator, data, labels, impl_->config.linear_gain == LinearGain::kOracle && !impl_->trained,
                         rng);
  return train(data, options, rng, progress, labels);
}

double AmortizedPosterior::loss(const Dataset& data, Rng& rng, bool gradient, const LabelOptions& labels) {
  labels.validate();
  data.validate(impl_->shape);
  impl_->check_labels_supported(data, labels);
  std::vector<Index> items(static_cast<std::size_t>(data.size()));
  std::iota(items.begin(), items.end(), 0);
  const Matrix xn = impl_->normalize_x(data.x, data.y), yn = impl_->normalize_y(data.y);
  const NormalizedLabels normalized = impl_->normalize_labels(data.labels, data.y, labels);
  PairsObjective objective(*impl_, xn, yn, normalized);
  return objective.batch_loss(items, gradient, rng);
}

namespace {

// Runs f(replica, begin, end, shard) over shards of n columns, one replica per thread.
template <typename F>
void for_shards(AmortizedPosterior::Impl& im, Index n, F&& f) {
  const int s = AmortizedPosterior::Impl::shards(n, kMinShardColumns);
  if (s == 1) {
    f(*im.replicas[0], Index{0}, n, 0);
    return;
  }
  im.ensure_replicas(s);
#pragma omp parallel for num_threads(s) schedule(static, 1)
  for (int r = 0; r < s; ++r) f(*im.replicas[static_cast<std::size_t>(r)], shard_begin(n, r, s), shard_begin(n, r + 1, s), r);
}

}  // namespace

Vector AmortizedPosterior::mean(const Vector& y, const Mask& mask) {
  const Vector yn = impl_->prepare_y(y, mask, "AmortizedPosterior::mean");
  Matrix ctx;
  impl_->encoder().forward(yn, ctx);
  const Matrix z = impl_->head().mean_draws();
  const Index m = z.cols();
  Matrix x(z.rows(), m);
  for_shards(*impl_, m, [&](Replica& rep, Index b, Index e, int) {
    x.middleCols(b, e - b) = rep.head->push(z.middleCols(b, e - b), ctx.col(0).replicate(1, e - b));
  });
  return impl_->denormalize_x(x.rowwise().mean(), impl_->observed(yn));
}

Matrix AmortizedPosterior::sample(const Vector& y, Index n, Rng& rng, const Mask& mask) {
  check_at_least("AmortizedPosterior::sample", "n", n, 1);
  const Vector yn = impl_->prepare_y(y, mask, "AmortizedPosterior::sample");
  Matrix ctx;
  impl_->encoder().forward(yn, ctx);
  const int s = Impl::shards(n, kMinShardColumns);
  std::vector<Rng> rngs;
  if (s > 1) {
    for (int r = 0; r < s; ++r) rngs.emplace_back(rng.engine()());
  }
  Matrix x(impl_->shape.state_size, n);
  if (impl_->head().has_closed_form_moments()) {
    // One context for every draw: the moments once, then x = mu + L z per draw (the head's own
    // sample() would unpack mu and L again for each column). The same draws z, in the same order.
    const GaussianMoments g = impl_->head().closed_form_moments(ctx.col(0));
    const Vector sd = g.cholesky.diagonal();
    for_shards(*impl_, n, [&](Replica&, Index b, Index e, int r) {
      Rng& rr = s > 1 ? rngs[static_cast<std::size_t>(r)] : rng;
      const Matrix z = rr.normal_matrix(x.rows(), e - b);
      if (g.diagonal) {
        x.middleCols(b, e - b) = (z.array().colwise() * sd.array()).matrix().colwise() + g.mean;
      } else {
        x.middleCols(b, e - b) = (g.cholesky.triangularView<Eigen::Lower>() * z).colwise() + g.mean;
      }
    });
  } else {
    for_shards(*impl_, n, [&](Replica& rep, Index b, Index e, int r) {
      Rng& rr = s > 1 ? rngs[static_cast<std::size_t>(r)] : rng;
      x.middleCols(b, e - b) = rep.head->sample(ctx.col(0).replicate(1, e - b), rr);
    });
  }
  return impl_->denormalize_x(x, impl_->observed(yn));
}

Vector AmortizedPosterior::log_prob(const Matrix& x, const Vector& y, const Mask& mask) {
  check_size("AmortizedPosterior::log_prob", "rows of x", x.rows(), impl_->shape.state_size);
  const Vector yn = impl_->prepare_y(y, mask, "AmortizedPosterior::log_prob");
  if (!impl_->head().has_log_prob()) return impl_->head().log_prob(x, x);  // throws with a clear message
  Matrix ctx;
  impl_->encoder().forward(yn, ctx);
  const Matrix xn = impl_->normalize_x(x, impl_->observed(yn));
  Vector lp(x.cols());
  for_shards(*impl_, x.cols(), [&](Replica& rep, Index b, Index e, int) {
    lp.segment(b, e - b) = rep.head->log_prob(xn.middleCols(b, e - b), ctx.col(0).replicate(1, e - b));
  });
  return lp.array() - impl_->norm.x_std.array().log().sum();
}

namespace {

// Number of blocks of kMeanDrawBlock columns of the base draws z (the last one may be shorter).
Index draw_blocks(const Matrix& z) {
  return (z.cols() + AmortizedPosterior::kMeanDrawBlock - 1) / AmortizedPosterior::kMeanDrawBlock;
}

// sum_j product(replica, z_j) over the columns z_j of the base draws z, in blocks of kMeanDrawBlock
// columns: product(replica, block) returns rows x block.cols(), one column per draw. Each block is one
// call (whole blocks over the rank's OpenMP threads, one replica each) and the blocks are split over
// the ranks of comm and added in block order (blocked_sum), so the sum has the same bits for any
// number of threads and ranks.
template <typename F>
Vector sum_over_draw_blocks(AmortizedPosterior::Impl& im, const Communicator& comm, const Matrix& z, Index rows,
                            const char* what, F&& product) {
  const auto block_sum = [&](Replica& rep, Index b) -> Vector {
    const Index begin = b * AmortizedPosterior::kMeanDrawBlock;
    const Index count = std::min(AmortizedPosterior::kMeanDrawBlock, z.cols() - begin);
    return product(rep, Matrix(z.middleCols(begin, count))).rowwise().sum();
  };
  return blocked_sum(comm, draw_blocks(z), rows, what, [&](Index first, Index last) {
    const Index count = last - first;
    Matrix terms(rows, count);
    const int s = static_cast<int>(std::min<Index>(
        count, AmortizedPosterior::Impl::shards(count * AmortizedPosterior::kMeanDrawBlock, kMinShardColumns)));
    if (s <= 1) {
      for (Index b = first; b < last; ++b) terms.col(b - first) = block_sum(*im.replicas[0], b);
      return terms;
    }
    im.ensure_replicas(s);
#pragma omp parallel for num_threads(s) schedule(static, 1)
    for (int r = 0; r < s; ++r) {
      for (Index b = first + shard_begin(count, r, s); b < first + shard_begin(count, r + 1, s); ++b) {
        terms.col(b - first) = block_sum(*im.replicas[static_cast<std::size_t>(r)], b);
      }
    }
    return terms;
  });
}

}  // namespace

Index AmortizedPosterior::mean_draw_blocks() const { return draw_blocks(impl_->head().mean_draws()); }

Vector AmortizedPosterior::mean_jvp(const Vector& y, const Vector& dy, const Mask& mask, const Communicator& comm) {
  const Vector yn = impl_->prepare_y(y, mask, "AmortizedPosterior::mean_jvp");
  check_size("AmortizedPosterior::mean_jvp", "dy", dy.size(), yn.size());
  Vector dyn = dy.cwiseQuotient(impl_->norm.y_std);
  for (Index i = 0; i < yn.size(); ++i) {
    if (std::isnan(yn[i])) dyn[i] = 0.0;
  }
  check_finite("AmortizedPosterior::mean_jvp", "dy", dyn);
  Matrix ctx, dctx;
  impl_->encoder().forward(yn, ctx);
  impl_->encoder().tangent(dyn, dctx);
  const Matrix z = impl_->head().mean_draws();
  const Vector sum = sum_over_draw_blocks(
      *impl_, comm, z, z.rows(), "AmortizedPosterior::mean_jvp", [&](Replica& rep, const Matrix& zb) {
        return rep.head->push_jvp(zb, ctx.col(0).replicate(1, zb.cols()), dctx.col(0).replicate(1, zb.cols()));
      });
  return (sum / static_cast<double>(z.cols())).cwiseProduct(impl_->norm.x_std) + impl_->gain_jvp(yn, dy);
}

Vector AmortizedPosterior::mean_vjp(const Vector& y, const Vector& a, const Mask& mask, const Communicator& comm) {
  const Vector yn = impl_->prepare_y(y, mask, "AmortizedPosterior::mean_vjp");
  check_size("AmortizedPosterior::mean_vjp", "a", a.size(), impl_->shape.state_size);
  check_finite("AmortizedPosterior::mean_vjp", "a", a);
  Matrix ctx, gy;
  impl_->encoder().forward(yn, ctx);
  const Matrix z = impl_->head().mean_draws();
  const Vector an = a.cwiseProduct(impl_->norm.x_std) / static_cast<double>(z.cols());
  const Vector gctx = sum_over_draw_blocks(
      *impl_, comm, z, ctx.rows(), "AmortizedPosterior::mean_vjp", [&](Replica& rep, const Matrix& zb) {
        return rep.head->push_vjp(zb, ctx.col(0).replicate(1, zb.cols()), an.replicate(1, zb.cols()));
      });
  impl_->encoder().backward(gctx, gy, false);
  return gy.col(0).cwiseQuotient(impl_->norm.y_std) + impl_->gain_vjp(yn, a);
}

Provenance AmortizedPosterior::provenance() const {
  Provenance p;
  p.method = "amortized_" + to_string(impl_->config.head);
  p.iterations = static_cast<int>(impl_->summary.epochs_run);
  p.final_cost = impl_->summary.best_validation_loss;
  p.converged = impl_->trained && impl_->summary.ok();
  p.config_hash = config_hash(impl_->config);
  p.version = VARFLOW_VERSION_STRING;
  return p;
}

std::unique_ptr<Posterior> AmortizedPosterior::posterior(const Vector& y, Index n, Rng& rng, const Mask& mask) {
  std::unique_ptr<Posterior> out;
  if (impl_->head().has_closed_form_moments()) {
    const Vector yn = impl_->prepare_y(y, mask, "AmortizedPosterior::posterior");
    Matrix ctx;
    impl_->encoder().forward(yn, ctx);
    const GaussianMoments g = impl_->head().closed_form_moments(ctx.col(0));
    const Vector mean = impl_->denormalize_x(g.mean, impl_->observed(yn));
    const Matrix dl = impl_->norm.x_std.asDiagonal() * g.cholesky;  // physical-units Cholesky factor
    if (g.diagonal) {
      out = std::make_unique<GaussianPosterior>(mean, std::make_shared<DiagonalCovariance>(dl.diagonal().cwiseAbs2()));
    } else {
      Matrix c = dl * dl.transpose();
      c = 0.5 * (c + c.transpose()).eval();
      out = std::make_unique<GaussianPosterior>(mean, std::make_shared<DenseCovariance>(c));
    }
  } else {
    out = std::make_unique<SamplePosterior>(sample(y, n, rng, mask));
  }
  out->set_provenance(provenance());
  return out;
}

void AmortizedPosterior::set_sampler(Sampler sampler, Index steps) {
  for (auto& r : impl_->replicas) r->head->set_sampler(sampler, steps);  // a head without one refuses
  impl_->head().record_options(impl_->config);
}

}  // namespace varflow::amortized
