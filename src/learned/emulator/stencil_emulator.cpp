// The stencil-network emulator: network, Model step / TL / AD, training and model file.
#include "varflow/emulator/stencil_emulator.h"

#include <cmath>

#include "varflow/core/error.h"
#include "varflow/core/hash.h"
#include "varflow/emulator/product_layer.h"
#include "varflow/io/netcdf_file.h"

namespace varflow::emulator {

namespace {
constexpr const char* kFileType = "varflow_stencil_emulator";
constexpr long long kFormatVersion = 1;
}  // namespace

void StencilEmulatorConfig::validate() const {
  check_at_least("StencilEmulatorConfig", "grid", grid, 3);
  check_at_least("StencilEmulatorConfig", "radius", radius, 0);
  check_at_least("StencilEmulatorConfig", "hidden", hidden, 1);
  check_at_least("StencilEmulatorConfig", "layers", layers, 0);
  if (2 * radius + 1 > grid) {
    throw InvalidArgument(format_message("StencilEmulatorConfig: radius = ", radius, " gives a window of ",
                                         2 * radius + 1, " points, more than grid = ", grid));
  }
  nn::activation_from_string(activation, "StencilEmulatorConfig: activation");
  if (architecture != "polynomial" && architecture != "mlp") {
    throw InvalidArgument(format_message("StencilEmulatorConfig: architecture = '", architecture,
                                         "' is not one of polynomial, mlp"));
  }
  if (!(dt > 0.0) || !std::isfinite(dt)) {
    throw InvalidArgument(format_message("StencilEmulatorConfig: dt = ", dt, " must be positive and finite"));
  }
}

namespace {
// The stencil network of `config` (architectures in the header), weights unbound.
std::unique_ptr<nn::Sequential> build_network(const StencilEmulatorConfig& config) {
  const Index n = config.grid, h = config.hidden;
  auto net = std::make_unique<nn::Sequential>();
  if (config.architecture == "polynomial") {
    net->emplace<nn::PeriodicConv1d>(1, 2 * h, n, 2 * config.radius + 1);
    net->emplace<ProductLayer>(h, n);
    for (Index l = 0; l < config.layers; ++l) {
      net->emplace<nn::PeriodicConv1d>(h, 2 * h, n, 1);
      net->emplace<ProductLayer>(h, n);
    }
  } else {
    const nn::Activation act = nn::activation_from_string(config.activation);
    net->emplace<nn::PeriodicConv1d>(1, h, n, 2 * config.radius + 1);
    net->emplace<nn::ActivationLayer>(act, h * n);
    for (Index l = 0; l < config.layers; ++l) {
      net->emplace<nn::PeriodicConv1d>(h, h, n, 1);
      net->emplace<nn::ActivationLayer>(act, h * n);
    }
  }
  net->emplace<nn::PeriodicConv1d>(h, 1, n, 1, nn::Init::kSmall);
  return net;
}
}  // namespace

StencilEmulator::StencilEmulator(StencilEmulatorConfig config) : config_(std::move(config)) {
  config_.validate();
  net_ = build_network(config_);
  params_.add("stencil", *net_);
  params_.bind();
}

StencilEmulator::Lease::Lease(const StencilEmulator& owner) : owner_(owner) {
  {
    const std::lock_guard<std::mutex> lock(owner_.pool_mutex_);
    if (!owner_.free_replicas_.empty()) {
      replica_ = std::move(owner_.free_replicas_.back());
      owner_.free_replicas_.pop_back();
      return;
    }
  }
  replica_ = std::make_unique<Replica>();
  replica_->net = build_network(owner_.config_);
  replica_->params.add("stencil", *replica_->net);
  // bind_shared only records where the owner's values live; a replica never writes them.
  replica_->params.bind_shared(const_cast<nn::ParameterSet&>(owner_.params_));
}

StencilEmulator::Lease::~Lease() {
  const std::lock_guard<std::mutex> lock(owner_.pool_mutex_);
  owner_.free_replicas_.push_back(std::move(replica_));
}

std::string StencilEmulator::name() const {
  return format_message("stencil_emulator(", config_.physics, ", n=", config_.grid, ", r=", config_.radius,
                        ", ", config_.architecture, ", hidden=", config_.hidden, "x", config_.layers + 1,
                        config_.architecture == "mlp" ? ", " + config_.activation : std::string(),
                        ", dt=", config_.dt, ")");
}

void StencilEmulator::initialize(Rng& rng) { net_->initialize(rng); }

void StencilEmulator::set_normalization(double x_mean, double x_std, double increment_std) {
  if (!std::isfinite(x_mean) || !(x_std > 0.0) || !std::isfinite(x_std) || !(increment_std > 0.0) ||
      !std::isfinite(increment_std)) {
    throw InvalidArgument(format_message("StencilEmulator::set_normalization: x_mean = ", x_mean, ", x_std = ", x_std,
                                         ", increment_std = ", increment_std,
                                         " (the mean must be finite, the scales positive and finite)"));
  }
  x_mean_ = x_mean;
  x_std_ = x_std;
  increment_std_ = increment_std;
}

void StencilEmulator::forward_normalized(const Matrix& x, Matrix& out) {
  const Matrix z = (x.array() - x_mean_) / x_std_;
  net_->forward(z, out);
}

void StencilEmulator::backward_normalized(const Matrix& d_out) {
  Matrix dz;
  net_->backward(d_out, dz, true);
}

void StencilEmulator::do_step(Vector& x) const {
  Lease lease(*this);
  const Matrix z = (x.array() - x_mean_) / x_std_;
  Matrix out;
  lease.net().forward(z, out);
  x += increment_std_ * out.col(0);
}

void StencilEmulator::do_step_tangent(const Vector& x, Vector& dx) const {
  Lease lease(*this);
  const Matrix z = (x.array() - x_mean_) / x_std_;
  Matrix out, dout;
  lease.net().forward(z, out);
  const Matrix dz = dx / x_std_;
  lease.net().tangent(dz, dout);
  dx += increment_std_ * dout.col(0);
}

void StencilEmulator::do_step_adjoint(const Vector& x, Vector& ax) const {
  Lease lease(*this);
  const Matrix z = (x.array() - x_mean_) / x_std_;
  Matrix out, dz;
  lease.net().forward(z, out);
  const Matrix dout = ax;
  lease.net().backward(dout, dz, false);
  ax += (increment_std_ / x_std_) * dz.col(0);
}

// The chain rule of the normalisation: M'(x)^T a = a + (s_inc / s_x) g'(z)^T a with z = (x - mu) / s_x,
// so (d/dx [M'(x)^T a]) dx = (s_inc / s_x) (d/dz [g'(z)^T a]) (dx / s_x).
void StencilEmulator::do_step_second_order_adjoint(const Vector& x, const Vector& dx, const Vector& ax_next,
                                                   Vector& out) const {
  Lease lease(*this);
  const Matrix z = (x.array() - x_mean_) / x_std_;
  Matrix y, a_in, da_in;
  lease.net().forward(z, y);
  const Matrix dz = dx / x_std_;
  const Matrix a = ax_next;
  lease.net().second_order_backward(dz, a, Matrix::Zero(a.rows(), 1), a_in, da_in);
  out = (increment_std_ / x_std_) * da_in.col(0);
}

std::string StencilEmulator::checksum() const {
  std::uint64_t h = fnv1a(format_message(kFileType, " ", config_.grid, " ", config_.radius, " ", config_.hidden,
                                             " ", config_.layers, " ", config_.architecture, " ", config_.activation, " ", config_.dt, " ",
                                             config_.physics));
  const double norm[3] = {x_mean_, x_std_, increment_std_};
  h = fnv1a(norm, sizeof(norm), h);
  h = fnv1a(Vector(params_.values()), h);
  return hex64(h);
}

void StencilEmulator::save(const std::filesystem::path& file) const {
  NetcdfWriter w(file);
  w.attribute("varflow_file_type", std::string(kFileType));
  w.attribute("format_version", kFormatVersion);
  w.attribute("title", std::string("varflow stencil emulator (a learned model step)"));
  w.attribute("grid", static_cast<long long>(config_.grid));
  w.attribute("radius", static_cast<long long>(config_.radius));
  w.attribute("hidden", static_cast<long long>(config_.hidden));
  w.attribute("layers", static_cast<long long>(config_.layers));
  w.attribute("activation", config_.activation);
  w.attribute("architecture", config_.architecture);
  w.attribute("dt", config_.dt);
  w.attribute("physics", config_.physics);
  w.attribute("x_mean", x_mean_);
  w.attribute("x_std", x_std_);
  w.attribute("increment_std", increment_std_);
  w.attribute("layout", params_.layout());
  w.attribute("checksum", checksum());
  w.add_dimension("parameter", params_.size());
  w.write("weights", "parameter", Vector(params_.values()), "stencil network weights (layout attribute)");
  w.commit();
}

std::unique_ptr<StencilEmulator> StencilEmulator::load(const std::filesystem::path& file) {
  const std::string where = format_message("emulator file '", file.string(), "'");
  const NetcdfReader r(file, where);
  const std::string type = r.string_attribute("varflow_file_type").value_or("");
  if (type != kFileType) {
    throw InvalidArgument(format_message(where, ": not a varflow stencil emulator (varflow_file_type = '", type,
                                         "', expected '", kFileType, "')"));
  }
  const double version = r.require_double("format_version");
  if (version != static_cast<double>(kFormatVersion)) {
    throw InvalidArgument(format_message(where, ": format_version = ", version, ", this build reads ", kFormatVersion));
  }
  StencilEmulatorConfig c;
  c.grid = static_cast<Index>(r.require_double("grid"));
  c.radius = static_cast<Index>(r.require_double("radius"));
  c.hidden = static_cast<Index>(r.require_double("hidden"));
  c.layers = static_cast<Index>(r.require_double("layers"));
  c.activation = r.require_string("activation");
  c.architecture = r.require_string("architecture");
  c.dt = r.require_double("dt");
  c.physics = r.require_string("physics");
  auto e = std::make_unique<StencilEmulator>(c);
  if (r.require_string("layout") != e->params_.layout()) {
    throw InvalidArgument(format_message(where, ": attribute 'layout' does not match the network the configuration "
                                                "describes"));
  }
  e->set_normalization(r.require_double("x_mean"), r.require_double("x_std"), r.require_double("increment_std"));
  e->params_.values() = r.read_vector("weights", e->params_.size());
  const std::string stored = r.require_string("checksum"), actual = e->checksum();
  if (stored != actual) {
    throw InvalidArgument(format_message(where, ": checksum = ", stored, " but the contents hash to ", actual,
                                         " (file corrupted or edited)"));
  }
  return e;
}

TrajectoryPairs simulate_pairs(const Model& physics, const Vector& x0, Index count, Index spinup, Index stride,
                               Rng& rng, Index step_multiple) {
  check_at_least("simulate_pairs", "count", count, 1);
  check_at_least("simulate_pairs", "step_multiple", step_multiple, 1);
  check_at_least("simulate_pairs", "spinup", spinup, 0);
  check_at_least("simulate_pairs", "stride", stride, 1);
  const Index n = physics.state_size();
  if (x0.size() != n) {
    throw InvalidArgument(format_message("simulate_pairs: x0 has ", x0.size(), " values, the model ", n));
  }
  Vector x = x0 + 0.01 * rng.normal_vector(n);
  for (Index k = 0; k < spinup; ++k) physics.step(x);
  TrajectoryPairs p{Matrix(n, count), Matrix(n, count)};
  for (Index j = 0; j < count; ++j) {
    p.states.col(j) = x;
    for (Index k = 0; k < step_multiple; ++k) physics.step(x);
    p.next.col(j) = x;
    for (Index k = step_multiple; k < stride; ++k) physics.step(x);
  }
  return p;
}

TrajectoryPairs leading_rows(const TrajectoryPairs& pairs, Index rows) {
  if (rows < 1 || rows > pairs.states.rows()) {
    throw InvalidArgument(format_message("leading_rows: rows = ", rows, " must be in [1, ", pairs.states.rows(), "]"));
  }
  return {pairs.states.topRows(rows), pairs.next.topRows(rows)};
}

namespace {

// Mean squared error of the normalised increments; items index the columns of inputs / targets.
class IncrementObjective final : public nn::TrainingObjective {
 public:
  IncrementObjective(StencilEmulator& e, const Matrix& inputs, const Matrix& targets)
      : e_(e), inputs_(inputs), targets_(targets) {}
  nn::ParameterSet& parameters() override { return e_.parameters(); }
  double batch_loss(const std::vector<Index>& items, bool gradient, Rng&) override {
    const Index b = static_cast<Index>(items.size()), n = inputs_.rows();
    Matrix x(n, b), t(n, b), out;
    for (Index j = 0; j < b; ++j) {
      x.col(j) = inputs_.col(items[static_cast<std::size_t>(j)]);
      t.col(j) = targets_.col(items[static_cast<std::size_t>(j)]);
    }
    e_.forward_normalized(x, out);
    const Matrix diff = out - t;
    const double scale = 1.0 / static_cast<double>(n * b);
    if (gradient) e_.backward_normalized((2.0 * scale) * diff);
    return scale * diff.squaredNorm();
  }

 private:
  StencilEmulator& e_;
  const Matrix& inputs_;
  const Matrix& targets_;
};

}  // namespace

nn::TrainingOptions fixed_budget_training(Index epochs, double learning_rate) {
  nn::TrainingOptions t;
  t.schedule = nn::LearningRateSchedule::kCosine;
  t.epochs = epochs;
  t.batch_size = 32;
  t.learning_rate = learning_rate;
  t.weight_decay = 0.0;
  t.patience = 0;
  return t;
}

nn::TrainingSummary train_emulator(StencilEmulator& emulator, const TrajectoryPairs& pairs,
                                   const nn::TrainingOptions& options, Rng& rng,
                                   const nn::ProgressCallback& progress) {
  options.validate();
  const Index n = emulator.state_size();
  if (pairs.states.rows() != n || pairs.next.rows() != n || pairs.states.cols() != pairs.next.cols() ||
      pairs.states.cols() < 2) {
    throw InvalidArgument(format_message("train_emulator: pairs are ", pairs.states.rows(), " x ", pairs.states.cols(),
                                         " and ", pairs.next.rows(), " x ", pairs.next.cols(),
                                         ", expected two matrices of ", n, " rows and the same >= 2 columns"));
  }
  const Matrix inc = pairs.next - pairs.states;
  const double mean = pairs.states.mean();
  const double sd = std::sqrt((pairs.states.array() - mean).square().mean());
  const double inc_sd = std::sqrt(inc.array().square().mean());
  emulator.set_normalization(mean, sd > 0.0 ? sd : 1.0, inc_sd > 0.0 ? inc_sd : 1.0);
  const Matrix targets = inc / emulator.increment_std();
  const Index total = pairs.states.cols();
  Index n_val = static_cast<Index>(std::floor(options.validation_fraction * static_cast<double>(total)));
  if (options.validation_fraction > 0.0 && n_val < 1) n_val = 1;
  IncrementObjective objective(emulator, pairs.states, targets);
  return nn::fit(objective, total - n_val, n_val, options, rng, progress);
}

}  // namespace varflow::emulator
