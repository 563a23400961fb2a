#include "varflow/amortized/problems.h"

#include <cassert>
#include <algorithm>
#include <limits>
#include <optional>
#include <cmath>
#include <exception>
#include <vector>
#include <ostream>
#include <numbers>

#include <Eigen/Cholesky>

#include "varflow/core/error.h"
#include "varflow/core/stopwatch.h"
#include "varflow/core/registry.h"
#include "varflow/covariance/covariances.h"
#include "varflow/model/lorenz96.h"
#include "varflow/obs/operators.h"
#include "varflow/var/exact_sensitivity.h"
#include "varflow/var/incremental_4dvar.h"

namespace varflow::amortized {

void Dataset::validate(const ProblemShape& shape) const {
  const char* w = "Dataset";
  check_size(w, "rows of x", x.rows(), shape.state_size);
  check_size(w, "rows of y", y.rows(), shape.obs_size);
  check_size(w, "columns of y", y.cols(), x.cols());
  for (Index j = 0; j < x.cols(); ++j) {
    for (Index i = 0; i < x.rows(); ++i) {
      if (!std::isfinite(x(i, j))) throw InvalidArgument(format_message(w, ": x(", i, ", ", j, ") = ", x(i, j), " is not finite"));
    }
    for (Index i = 0; i < y.rows(); ++i) {
      const double v = y(i, j);
      if (std::isinf(v) || (std::isnan(v) && !shape.gridded())) {
        throw InvalidArgument(format_message(w, ": y(", i, ", ", j, ") = ", v,
                                             std::isinf(v) ? " is infinite" : " is missing, but these observations are not gridded"));
      }
    }
  }
  if (!oracle_gain.empty()) {
    check_size(w, "size of oracle_gain.y_ref", oracle_gain.y_ref.size(), shape.obs_size);
    check_size(w, "rows of oracle_gain.gain", oracle_gain.gain.rows(), shape.state_size);
    check_size(w, "columns of oracle_gain.gain", oracle_gain.gain.cols(), shape.obs_size);
    if (!oracle_gain.gain.allFinite()) throw InvalidArgument(format_message(w, ": oracle_gain.gain is not finite"));
  }
  if (labels.empty()) return;
  const Index n = x.cols(), k = labels.probes;
  if (labels.variance.size() != 0) {
    check_size(w, "rows of labels.variance", labels.variance.rows(), shape.state_size);
    check_size(w, "columns of labels.variance", labels.variance.cols(), n);
  }
  check_size(w, "rows of labels.mean", labels.mean.rows(), shape.state_size);
  check_size(w, "columns of labels.mean", labels.mean.cols(), n);
  check_at_least(w, "labels.probes", k, 0);
  check_size(w, "rows of labels.dy", labels.dy.rows(), shape.obs_size);
  check_size(w, "columns of labels.dy", labels.dy.cols(), n * k);
  check_size(w, "rows of labels.dx", labels.dx.rows(), shape.state_size);
  check_size(w, "columns of labels.dx", labels.dx.cols(), n * k);
  for (Index j = 0; j < n; ++j) {
    if (std::isnan(labels.mean(0, j))) continue;  // no labels for this pair
    const auto bad = [&](const char* what, const Matrix& m, Index col) {
      for (Index i = 0; i < m.rows(); ++i) {
        if (!std::isfinite(m(i, col))) {
          throw InvalidArgument(format_message(w, ": labels.", what, "(", i, ", ", col, ") = ", m(i, col), " is not finite"));
        }
      }
    };
    bad("mean", labels.mean, j);
    if (labels.variance.size() != 0) {
      bad("variance", labels.variance, j);
      for (Index i = 0; i < labels.variance.rows(); ++i) {
        if (!(labels.variance(i, j) > 0.0)) {
          throw InvalidArgument(format_message(w, ": labels.variance(", i, ", ", j, ") = ", labels.variance(i, j), " must be > 0"));
        }
      }
    }
    for (Index p = 0; p < k; ++p) {
      bad("dy", labels.dy, j * k + p);
      bad("dx", labels.dx, j * k + p);
    }
  }
}

Index OracleLabels::labelled() const {
  Index count = 0;
  for (Index j = 0; j < mean.cols(); ++j) count += std::isnan(mean(0, j)) ? 0 : 1;
  return count;
}

void prepare_labels(Dataset& data, Index count, Index probes, Rng& rng) {
  check_at_least("prepare_labels", "probes", probes, 0);
  if (count < 0 || count > data.size()) {
    throw InvalidArgument(format_message("prepare_labels: count = ", count, " must be in [0, ", data.size(), "]"));
  }
  OracleLabels& l = data.labels;
  l.probes = probes;
  l.mean = Matrix::Constant(data.x.rows(), data.size(), std::nan(""));
  l.dy = Matrix::Zero(data.y.rows(), data.size() * probes);
  l.dx = Matrix::Zero(data.x.rows(), data.size() * probes);
  for (Index j = 0; j < count; ++j) {
    for (Index p = 0; p < probes; ++p) {
      for (Index i = 0; i < data.y.rows(); ++i) {
        const double v = rng.normal();
        l.dy(i, j * probes + p) = std::isnan(data.y(i, j)) ? 0.0 : v;
      }
    }
  }
}

Simulator::PairLabels Simulator::label_pair(const Vector&, Index, const Matrix&) const {
  throw InvalidArgument(format_message("problem ", name(),
                                       " has no oracle for derivative labels (labels.pairs must be 0)"));
}

Simulator::LabelReport Simulator::label(Dataset& data, Index count, Index probes, Rng& rng, const Communicator& comm,
                                        const ItemProgress& progress) const {
  if (!has_oracle_labels()) Simulator::label_pair(Vector(), 0, Matrix());  // throws: no oracle
  data.validate(shape());
  prepare_labels(data, count, probes, rng);
  OracleLabels& l = data.labels;
  // Each pair's record: 1 and its mean, then J dy for its probes (bit for bit across ranks); or 0
  // and the message of its failed oracle solve.
  const std::vector<std::string> records = distributed_map(
      comm, count, "labels", [](Index j) { return format_message("pair ", j); },
      [&](Index j) {
        RecordWriter w;
        try {
          const PairLabels p = label_pair(data.y.col(j), j, l.dy.middleCols(j * probes, probes));
          assert(p.mean.size() == data.x.rows() && p.dx.rows() == data.x.rows() && p.dx.cols() == probes);
          w.put(1.0);
          w.put(p.mean);
          w.put(p.dx);
        } catch (const NumericalError& e) {
          w.put(0.0);
          w.put(std::string(e.what()));
        }
        return w.bytes();
      },
      ItemThreads::kOpenMp, progress);
  LabelReport report;
  for (Index j = 0; j < count; ++j) {
    RecordReader in(records[static_cast<std::size_t>(j)]);
    if (in.get_double() == 1.0) {
      l.mean.col(j) = in.get_vector();
      l.dx.middleCols(j * probes, probes) = in.get_matrix();
      ++report.labelled;
    } else {
      const std::string message = in.get_string();
      if (report.failed++ == 0) report.first_failure = message;
      l.mean.col(j).setConstant(std::numeric_limits<double>::quiet_NaN());  // no labels for this pair
      l.dy.middleCols(j * probes, probes).setZero();
      l.dx.middleCols(j * probes, probes).setZero();
    }
  }
  if (count > 0 && report.labelled == 0) {
    throw NumericalError(format_message("labels: the oracle failed on every one of the ", count,
                                        " pairs; the first: ", report.first_failure));
  }
  return report;
}

void Simulator::check_variance_labels() const {
  if (has_variance_labels()) return;
  throw InvalidArgument(format_message("problem ", name(), " has no oracle variances (labels.variance_weight must be 0)"));
}

Vector Simulator::label_variance(const Vector&, const Vector&) const {
  check_variance_labels();
  throw std::logic_error(format_message("problem ", name(), " says it has variance labels but does not implement label_variance"));
}

Simulator::LabelReport Simulator::label_variances(Dataset& data, const Communicator& comm,
                                                  const ItemProgress& progress) const {
  check_variance_labels();
  OracleLabels& l = data.labels;
  if (l.empty()) throw InvalidArgument("label_variances: the pairs carry no labels (call label() first)");
  // The pairs up to the last labelled one (label() labels the first ones); the rest stay NaN.
  Index n = data.size();
  while (n > 0 && std::isnan(l.mean(0, n - 1))) --n;
  // Each pair's record: 1 and its variances, 0 and the failure's message, or 2 for a pair without labels.
  const std::vector<std::string> records = distributed_map(
      comm, n, "variance labels", [](Index j) { return format_message("pair ", j); },
      [&](Index j) {
        RecordWriter w;
        if (std::isnan(l.mean(0, j))) {
          w.put(2.0);
          return w.bytes();
        }
        try {
          const Vector v = label_variance(data.y.col(j), l.mean.col(j));
          assert(v.size() == data.x.rows());
          if (!(v.array() > 0.0).all() || !v.allFinite()) {
            throw NumericalError(format_message("variance labels: pair ", j, " has a variance that is not positive and finite"));
          }
          w.put(1.0);
          w.put(v);
        } catch (const NumericalError& e) {
          w.put(0.0);
          w.put(std::string(e.what()));
        }
        return w.bytes();
      },
      ItemThreads::kOpenMp, progress);
  l.variance = Matrix::Constant(data.x.rows(), data.size(), std::nan(""));
  LabelReport report;
  for (Index j = 0; j < n; ++j) {
    RecordReader in(records[static_cast<std::size_t>(j)]);
    const double kind = in.get_double();
    if (kind == 1.0) {
      l.variance.col(j) = in.get_vector();
      ++report.labelled;
    } else if (kind == 0.0) {
      const std::string message = in.get_string();
      if (report.failed++ == 0) report.first_failure = message;
      l.mean.col(j).setConstant(std::numeric_limits<double>::quiet_NaN());  // no labels for this pair
      l.dy.middleCols(j * l.probes, l.probes).setZero();
      l.dx.middleCols(j * l.probes, l.probes).setZero();
    }
  }
  if (report.labelled == 0 && report.failed > 0) {
    throw NumericalError(format_message("variance labels: the oracle failed on every one of the ", report.failed,
                                        " labelled pairs; the first: ", report.first_failure));
  }
  return report;
}

void Simulator::linearize(Dataset& data) const {
  if (!has_oracle_labels()) {
    throw InvalidArgument(format_message("problem ", name(), " has no oracle for linear_gain = oracle (use linear_gain: none)"));
  }
  data.validate(shape());
  const Index m = data.y.rows();
  Vector y_ref = Vector::Constant(m, std::nan(""));
  for (Index i = 0; i < m; ++i) {
    double sum = 0.0;
    Index count = 0;
    for (Index j = 0; j < data.size(); ++j) {
      if (!std::isnan(data.y(i, j))) { sum += data.y(i, j); ++count; }
    }
    if (count > 0) y_ref[i] = sum / static_cast<double>(count);
  }
  Matrix probes = Matrix::Zero(m, m);
  for (Index i = 0; i < m; ++i) probes(i, i) = std::isnan(y_ref[i]) ? 0.0 : 1.0;
  PairLabels l;
  try {
    l = label_pair(y_ref, 0, probes);
  } catch (const NumericalError& e) {
    throw NumericalError(format_message("linear_gain = oracle: the oracle at the mean observation failed: ", e.what()));
  }
  assert(l.dx.rows() == data.x.rows() && l.dx.cols() == m);
  if (!l.dx.allFinite()) {
    throw NumericalError("linear_gain = oracle: the oracle's J at the mean observation is not finite");
  }
  data.oracle_gain = OracleGain{std::move(y_ref), std::move(l.dx)};
}

OracleReport add_oracle_information(const Simulator& problem, Dataset& data, const LabelOptions& labels, bool gain,
                                    Rng& rng, const Communicator& comm, std::ostream* log, const std::string& prefix,
                                    const std::function<ItemProgress(const std::string& stage)>& progress) {
  OracleReport r;
  const auto stage_progress = [&](const std::string& stage) { return progress ? progress(stage) : ItemProgress{}; };
  if (labels.enabled()) {
    if (labels.variance_weight > 0.0) problem.check_variance_labels();  // before the labels' solves
    const Index count = std::min(labels.pairs, data.size());
    const Stopwatch clock;
    r.labels = problem.label(data, count, labels.probes, rng, comm, stage_progress("labels"));
    r.label_seconds = clock.seconds();
    if (log) {
      *log << prefix << "labelled " << r.labels.labelled << " pairs with the oracle (mean and J on " << labels.probes
           << " probes each) in " << r.label_seconds << " s\n";
      if (r.labels.failed > 0) {
        *log << prefix << r.labels.failed << " of " << count
             << " pairs carry no label (their oracle solve failed; the first: " << r.labels.first_failure << ")\n";
      }
    }
    if (labels.variance_weight > 0.0) {
      const Stopwatch variance_clock;
      r.variances = problem.label_variances(data, comm, stage_progress("variances"));
      r.variance_seconds = variance_clock.seconds();
      if (log) {
        *log << prefix << "labelled " << r.variances.labelled << " pairs with the oracle's marginal variances in "
             << r.variance_seconds << " s\n";
        if (r.variances.failed > 0) {
          *log << prefix << r.variances.failed << " pairs lost their labels (their variances failed; the first: "
               << r.variances.first_failure << ")\n";
        }
      }
    }
  }
  if (gain) {
    const Stopwatch clock;
    problem.linearize(data);
    r.gain_seconds = clock.seconds();
    if (log) {
      *log << prefix << "oracle gain at the mean observation (" << data.y.rows() << " sensitivity solves) in "
           << r.gain_seconds << " s\n";
    }
  }
  return r;
}

// ---- two moons -------------------------------------------------------------------------------------

Eigen::Vector2d TwoMoons::raw_mean() { return {0.5, 0.25}; }

Eigen::Vector2d TwoMoons::raw_std() {
  // E[x1^2] = (E cos^2 + E (1 - cos)^2) / 2 = (1/2 + 3/2) / 2 = 1;  E[x1] = 1/2.
  // E[x2^2] = (E sin^2 + E (1/2 - sin)^2) / 2 = (1/2 + 3/4 - 2/pi) / 2;  E[x2] = 1/4.
  const double pi = std::numbers::pi, s2 = kMoonNoise * kMoonNoise;
  const double v1 = 1.0 - 0.25 + s2;
  const double v2 = (0.5 + 0.75 - 2.0 / pi) / 2.0 - 0.0625 + s2;
  return {std::sqrt(v1), std::sqrt(v2)};
}

std::string TwoMoons::describe() const {
  return format_message("two-moons: standardised moons (noise ", kMoonNoise, "), y = x1 + x2 + N(0, ", kObsNoise, "^2)");
}

Matrix TwoMoons::sample_prior(Index n, Rng& rng, std::vector<int>* moon) {
  Matrix x(2, n);
  const Eigen::Vector2d m = raw_mean(), s = raw_std();
  if (moon) moon->resize(static_cast<std::size_t>(n));
  for (Index j = 0; j < n; ++j) {
    const double t = std::numbers::pi * rng.uniform();
    const int which = rng.uniform() < 0.5 ? 0 : 1;
    double a = which == 0 ? std::cos(t) : 1.0 - std::cos(t);
    double b = which == 0 ? std::sin(t) : 0.5 - std::sin(t);
    a += kMoonNoise * rng.normal();
    b += kMoonNoise * rng.normal();
    x(0, j) = (a - m[0]) / s[0];
    x(1, j) = (b - m[1]) / s[1];
    if (moon) (*moon)[static_cast<std::size_t>(j)] = which;
  }
  return x;
}

double TwoMoons::distance_to_moon(const Eigen::Vector2d& xs, int moon) {
  const Eigen::Vector2d raw = xs.cwiseProduct(raw_std()) + raw_mean();
  // Closest point of the half circle: angle of the point about the moon's centre, clamped to the arc.
  const Eigen::Vector2d centre = moon == 0 ? Eigen::Vector2d(0.0, 0.0) : Eigen::Vector2d(1.0, 0.5);
  const Eigen::Vector2d d = raw - centre;
  double angle = std::atan2(moon == 0 ? d[1] : -d[1], moon == 0 ? d[0] : -d[0]);  // lower moon: rotated by pi
  if (angle < 0.0) angle = angle < -std::numbers::pi / 2.0 ? std::numbers::pi : 0.0;  // nearest end of the arc
  const Eigen::Vector2d p = moon == 0 ? Eigen::Vector2d(std::cos(angle), std::sin(angle))
                                      : Eigen::Vector2d(1.0 - std::cos(angle), 0.5 - std::sin(angle));
  return (raw - p).norm();
}

Dataset TwoMoons::simulate(Index n, Rng& rng) const {
  Dataset d;
  d.x = sample_prior(n, rng);
  d.y.resize(1, n);
  for (Index j = 0; j < n; ++j) d.y(0, j) = d.x(0, j) + d.x(1, j) + kObsNoise * rng.normal();
  return d;
}

// ---- linear Gaussian -------------------------------------------------------------------------------

LinearGaussian::LinearGaussian(Index n, double prior_variance, double noise_variance)
    : n_(n), pv_(prior_variance), nv_(noise_variance) {
  check_at_least("LinearGaussian", "n", n, 1);
  check_positive("LinearGaussian", "prior_variance", prior_variance);
  check_positive("LinearGaussian", "noise_variance", noise_variance);
}

std::string LinearGaussian::describe() const {
  return format_message("linear-gaussian: x ~ N(0, ", pv_, " I_", n_, "), y = x + N(0, ", nv_, " I)");
}

Dataset LinearGaussian::simulate(Index n, Rng& rng) const {
  Dataset d;
  d.x.resize(n_, n);
  d.y.resize(n_, n);
  const double sp = std::sqrt(pv_), sn = std::sqrt(nv_);
  for (Index j = 0; j < n; ++j) {
    for (Index i = 0; i < n_; ++i) {
      d.x(i, j) = sp * rng.normal();
      d.y(i, j) = d.x(i, j) + sn * rng.normal();
    }
  }
  return d;
}

Vector LinearGaussian::posterior_mean(const Vector& y) const { return y * (pv_ / (pv_ + nv_)); }
double LinearGaussian::posterior_variance() const { return pv_ * nv_ / (pv_ + nv_); }

Simulator::PairLabels LinearGaussian::label_pair(const Vector& y, Index, const Matrix& dy) const {
  return {posterior_mean(y), (pv_ / (pv_ + nv_)) * dy};
}

Vector LinearGaussian::label_variance(const Vector&, const Vector&) const {
  return Vector::Constant(n_, posterior_variance());
}

// ---- the window problem ---------------------------------------------------------------------------

namespace {
// The first `resolved` of `n` components, as an observation operator (all of them: the identity).
std::shared_ptr<const ObservationOperator> resolved_operator(Index n, Index resolved) {
  if (resolved == n) return std::make_shared<IdentityObservation>(n);
  std::vector<Index> first(static_cast<std::size_t>(resolved));
  for (Index i = 0; i < resolved; ++i) first[static_cast<std::size_t>(i)] = i;
  return std::make_shared<SubsetObservation>(n, std::move(first));
}

// The start of a spin-up: the model's rest state (ones when it has none) + 0.01 N(0, I).
Vector perturbed_rest_state(const ModelSpec& spec, Index n, Rng& rng) {
  Vector rest = spec.rest_state();
  if (rest.size() == 0) rest = Vector::Ones(n);
  return rest + 0.01 * rng.normal_vector(n);
}
}  // namespace

WindowProblem::WindowProblem(WindowProblemOptions options, std::shared_ptr<const Model> model)
    : o_(std::move(options)) {
  o_.validate();
  physics_ = o_.model.make();
  model_ = model ? std::move(model) : physics_;
  if (model_->state_size() != physics_->state_size()) {
    throw InvalidArgument(format_message("WindowProblem: the simulation model '", model_->name(), "' has state size ",
                                         model_->state_size(), ", but model ", o_.model.name, " has ",
                                         physics_->state_size()));
  }
  resolved_ = o_.model.resolved_size();
  if (o_.prior == WindowPrior::kGaussian) center_ = gaussian_center(o_);
  if (o_.prior == WindowPrior::kBackground && resolved_ != physics_->state_size()) {
    throw InvalidArgument(format_message("window problem: background.prior = background needs a single-scale model (its ",
                                         "background is a gridded slot of y), but model ", o_.model.name, " resolves ",
                                         resolved_, " of its ", physics_->state_size(), " variables"));
  }
}

std::string WindowProblem::name() const { return o_.model.name == "lorenz96" ? "lorenz96" : "window"; }

Vector WindowProblem::gaussian_center(const WindowProblemOptions& o) {
  o.validate();
  const auto physics = o.model.make();
  Rng rng(o.prior_seed);
  Vector state = perturbed_rest_state(o.model, physics->state_size(), rng);
  for (Index k = 0; k < o.spinup; ++k) physics->step(state);
  return state;
}

Index WindowProblem::observation_slots() const { return (o_.window - o_.obs_first) / o_.obs_every + 1; }

Index WindowProblem::background_size() const {
  return o_.prior == WindowPrior::kBackground ? physics_->state_size() : 0;
}

ProblemShape WindowProblem::shape() const {
  const Index slots = observation_slots() + (o_.prior == WindowPrior::kBackground ? 1 : 0);
  return {physics_->state_size(), slots * resolved_, slots, resolved_};
}

std::string WindowProblem::describe() const {
  std::string parameters;
  for (const auto& o : find_model(o_.model.name).options) {
    parameters += format_message(parameters.empty() ? "" : ", ", o.key, " = ", io::shortest_text(o_.model.parameter(o.key)));
  }
  // "lorenz96: n = 40, forcing = 8, ..." or "window: model lorenz63 (sigma = 10, ...), ...".
  const std::string model =
      name() == o_.model.name ? parameters : format_message("model ", o_.model.name, " (", parameters, ")");
  std::string out = format_message(name(), ": ", model, ", window ", o_.window,
                                   " steps, observed every ", o_.obs_every, " steps",
                                   o_.obs_first > 0 ? format_message(" from step ", o_.obs_first) : std::string(),
                                   " at every ", o_.obs_stride,
                                   "-th point", resolved_ < physics_->state_size() ? " of the resolved variables" : "",
                                   ", noise ", o_.obs_noise, ", missing ", o_.missing);
  if (o_.prior == WindowPrior::kGaussian) {
    out += format_message(", gaussian prior (sd ", o_.prior_sd, " about the attractor state of seed ", o_.prior_seed, ")");
  }
  if (o_.prior == WindowPrior::kBackground) {
    out += format_message(", background prior (sd ", o_.prior_sd, " about a climatological background, the first slot of y)");
  }
  if (model_ != physics_ && model_->name() != physics_->name()) out += format_message(", simulated with ", model_->name());
  return out;
}

Dataset WindowProblem::simulate(Index n, Rng& rng) const {
  const Model& physics = *physics_;
  const Model& model = *model_;
  const Index size = physics.state_size();
  const auto h = resolved_operator(size, resolved_);
  const ProblemShape sh = shape();
  Dataset d;
  d.x.resize(size, n);
  d.y.resize(sh.obs_size, n);
  // The climatology (and the background prior's backgrounds): one long run from a perturbed rest state.
  const bool climatology = o_.prior != WindowPrior::kGaussian;
  const bool background = o_.prior == WindowPrior::kBackground;
  const Index first_slot = background ? 1 : 0;
  Vector state;
  if (climatology) {
    state = perturbed_rest_state(o_.model, size, rng);
    for (Index k = 0; k < o_.spinup; ++k) physics.step(state);
  }
  Vector x, y;
  for (Index j = 0; j < n; ++j) {
    if (background) {
      for (Index k = 0; k < o_.decorrelation; ++k) physics.step(state);
      d.y.col(j).head(size) = state;
      d.x.col(j) = state + o_.prior_sd * rng.normal_vector(size);
    } else if (climatology) {
      for (Index k = 0; k < o_.decorrelation; ++k) physics.step(state);
      d.x.col(j) = state;
    } else {
      d.x.col(j) = center_ + o_.prior_sd * rng.normal_vector(size);
    }
    x = d.x.col(j);
    for (Index step = 0, slot = first_slot; step <= o_.window; ++step) {
      if (step >= o_.obs_first && (step - o_.obs_first) % o_.obs_every == 0) {
        h->apply(x, y);
        for (Index i = 0; i < resolved_; ++i) {
          const bool observed = i % o_.obs_stride == 0 && rng.uniform() >= o_.missing;
          const double noise = o_.obs_noise * rng.normal();
          d.y(slot * resolved_ + i, j) = observed ? y[i] + noise : std::nan("");
        }
        ++slot;
      }
      if (step < o_.window) model.step(x);
    }
  }
  return d;
}

AssimilationWindow WindowProblem::window(const Vector& y) const {
  if (o_.prior == WindowPrior::kClimatology) {
    throw InvalidArgument("WindowProblem::window: background.prior = climatology has no Gaussian background; use gaussian");
  }
  check_size("WindowProblem::window", "y", y.size(), shape().obs_size);
  const Index n = physics_->state_size();
  const Vector background = o_.prior == WindowPrior::kBackground ? Vector(y.head(n)) : center_;
  if (!background.allFinite()) {
    throw InvalidArgument("WindowProblem::window: the background (the first slot of y) has a missing or non-finite value");
  }
  return window(y, background, std::make_shared<DiagonalCovariance>(Vector::Constant(n, o_.prior_sd * o_.prior_sd)));
}

AssimilationWindow WindowProblem::window(const Vector& y, const Vector& background,
                                           std::shared_ptr<const Covariance> b) const {
  const ProblemShape sh = shape();
  check_size("WindowProblem::window", "y", y.size(), sh.obs_size);
  AssimilationWindow w;
  w.background = background;
  w.b = std::move(b);
  w.model = model_;
  w.steps = o_.window;
  const auto h = resolved_operator(physics_->state_size(), resolved_);
  const auto r = std::make_shared<DiagonalCovariance>(Vector::Constant(resolved_, o_.obs_noise * o_.obs_noise));
  const Index first = background_size();  // the background slot, when y has one, is not an observation
  for (Index slot = 0; slot < observation_slots(); ++slot) {
    Observations obs;
    obs.step = o_.obs_first + slot * o_.obs_every;
    obs.values = y.segment(first + slot * resolved_, resolved_);
    obs.mask.resize(resolved_);
    for (Index i = 0; i < resolved_; ++i) {
      obs.mask[i] = std::isfinite(obs.values[i]);
      if (!obs.mask[i]) obs.values[i] = 0.0;
    }
    obs.op = h;
    obs.r = r;
    w.observations.push_back(std::move(obs));
  }
  return w;
}

namespace {
// The 4D-Var MAP of a window by incremental 4D-Var, aiming at |g| <= 1e-10 |g0| and accepting the
// solvers' default 1e-8 (far below what a label needs) when the outer loops run out. Gauss-Newton
// first; on long, nonlinear windows it converges only linearly (8 steps of Lorenz-96: some pairs at
// |g| ~ 1e-6 |g0| after 60 loops), so when it fails and the model has a second-order adjoint the
// window is solved again with the Newton outer Hessian (quadratic near the MAP). A window that
// Gauss-Newton solves takes exactly the path it always took.
// The inner solves are inexact (relative residual 0.1, a constant forcing term in the sense of
// Dembo, Eisenstat & Steihaug 1982): the outer loops converge only linearly (~0.12 per loop on the
// step-5 windows), so inner residuals far below that buy nothing. Measured on those windows (Lorenz-96
// and its stencil emulator, 4 steps): 11.0 outer loops with inner residual 1e-10 and 11.8 with 0.1,
// but 233 TL sweeps instead of 46, and the same MAP to the 1e-10 gradient tolerance.
Vector window_map(const AssimilationWindow& window, Index pair, bool newton_fallback) {
  auto solve = [&](OuterHessian hessian, SolverSummary& summary) {
    GaussNewtonOptions options;
    const double accepted_tolerance = options.gradient_tolerance;
    options.gradient_tolerance = 1e-10;
    options.posterior = PosteriorMethod::kNone;
    options.hessian = hessian;
    options.inner_tolerance = 0.1;
    VarResult r = IncrementalFourDVar(options).solve(window, &summary);
    const bool accepted =
        summary.converged() || (summary.termination_type == TerminationType::kNoConvergence &&
                                summary.final_gradient_norm <= accepted_tolerance * summary.initial_gradient_norm);
    return accepted && r.analysis.allFinite() ? std::optional<Vector>(std::move(r.analysis)) : std::nullopt;
  };
  SolverSummary summary;
  if (auto x = solve(OuterHessian::kGaussNewton, summary)) return *x;
  std::string failure = summary.BriefReport();
  if (newton_fallback) {
    try {
      if (auto x = solve(OuterHessian::kNewton, summary)) return *x;
      failure = format_message(failure, "; with the Newton Hessian: ", summary.BriefReport());
    } catch (const InvalidArgument& e) {  // an operator without a second-order adjoint
      failure = format_message(failure, "; no Newton Hessian: ", e.what());
    }
  }
  throw NumericalError(format_message("window labels: 4D-Var of pair ", pair, " failed: ", failure));
}
}  // namespace

Simulator::PairLabels WindowProblem::label_pair(const Vector& y, Index pair, const Matrix& dy) const {
  if (!has_oracle_labels()) return Simulator::label_pair(y, pair, dy);
  PairLabels out;
  const AssimilationWindow w = window(y);
  out.mean = window_map(w, pair, model_->has_second_order());
  out.dx.resize(out.mean.size(), dy.cols());
  // J dy: the exact sensitivity (full Hessian at the MAP) when the model has a second-order adjoint;
  // otherwise (e.g. a neural emulator) central differences of the MAP in the probe direction.
  if (model_->has_second_order() && dy.cols() > 0) {
    const ExactObservationSensitivity sensitivity(FourDVarCost(w).linearize(out.mean));
    const Index nb = background_size();
    for (Index p = 0; p < dy.cols(); ++p) {
      try {
        const Vector v = dy.col(p).tail(dy.rows() - nb);
        out.dx.col(p) = nb > 0 ? sensitivity.apply(v, dy.col(p).head(nb)) : sensitivity.apply(v);
      } catch (const NumericalError& e) {
        throw NumericalError(format_message("window labels: the sensitivity of pair ", pair, " failed: ", e.what()));
      }
    }
    return out;
  }
  const double h = 1e-2 * o_.obs_noise;  // central-difference step (rms of the perturbation of y)
  for (Index p = 0; p < dy.cols(); ++p) {
    const Vector d = dy.col(p);
    const double scale = h / std::max(d.norm() / std::sqrt(static_cast<double>(d.size())), 1e-300);
    const Vector plus = window_map(window(y + scale * d), pair, false);
    const Vector minus = window_map(window(y - scale * d), pair, false);
    out.dx.col(p) = (plus - minus) / (2.0 * scale);
  }
  return out;
}

Vector WindowProblem::label_variance(const Vector& y, const Vector& mean) const {
  const AssimilationWindow w = window(y);
  const Linearization lin = FourDVarCost(w).linearize(mean);
  const Index n = mean.size();
  Matrix h(n, n);
  for (Index i = 0; i < n; ++i) {
    const Vector e = Vector::Unit(n, i);
    h.col(i) = w.b->inverse_multiply(e) + lin.observation_hessian_multiply(e);
  }
  h = 0.5 * (h + h.transpose());  // symmetric up to round-off
  const Eigen::LLT<Matrix> llt(h);
  if (llt.info() != Eigen::Success) {
    throw NumericalError("variance labels: the Gauss-Newton Hessian at the MAP is not positive definite");
  }
  return llt.solve(Matrix::Identity(n, n)).diagonal();
}

double TwoMoons::likelihood(double ax, double y) {
  return std::exp(-0.5 * (ax - y) * (ax - y) / (kObsNoise * kObsNoise));
}

TwoMoons::Summary TwoMoons::exact_summary(double y, const Matrix& prior_draws) {
  check_size("TwoMoons::exact_summary", "prior_draws rows", prior_draws.rows(), 2);
  double sw = 0.0, s1 = 0.0, s2 = 0.0, up = 0.0;
  for (Index j = 0; j < prior_draws.cols(); ++j) {
    const double ax = prior_draws(0, j) + prior_draws(1, j);
    const double w = likelihood(ax, y);
    sw += w;
    s1 += w * ax;
    s2 += w * ax * ax;
    if (distance_to_moon(prior_draws.col(j), 0) < distance_to_moon(prior_draws.col(j), 1)) up += w;
  }
  Summary r;
  r.mean = s1 / sw;
  r.sd = std::sqrt(std::max(0.0, s2 / sw - r.mean * r.mean));
  r.upper_share = up / sw;
  return r;
}

Matrix TwoMoons::exact_draws(double y, const Matrix& prior_draws, Index n, Rng& rng) {
  check_size("TwoMoons::exact_draws", "prior_draws rows", prior_draws.rows(), 2);
  check_at_least("TwoMoons::exact_draws", "n", n, 1);
  std::vector<double> cumulative(static_cast<std::size_t>(prior_draws.cols()));
  double total = 0.0;
  for (Index j = 0; j < prior_draws.cols(); ++j) {
    total += likelihood(prior_draws(0, j) + prior_draws(1, j), y);
    cumulative[static_cast<std::size_t>(j)] = total;
  }
  if (!(total > 0.0)) {
    throw NumericalError(format_message("TwoMoons::exact_draws: no prior draw is near y = ", y));
  }
  Matrix out(2, n);
  for (Index k = 0; k < n; ++k) {
    const double u = rng.uniform() * total;
    const auto it = std::upper_bound(cumulative.begin(), cumulative.end(), u);
    const auto j = static_cast<Index>(std::min<std::ptrdiff_t>(it - cumulative.begin(), prior_draws.cols() - 1));
    out.col(k) = prior_draws.col(j);
  }
  return out;
}

TwoMoons::Summary TwoMoons::sample_summary(const Matrix& draws) {
  check_size("TwoMoons::sample_summary", "draws rows", draws.rows(), 2);
  check_at_least("TwoMoons::sample_summary", "draws", draws.cols(), 2);
  const Vector ax = (draws.row(0) + draws.row(1)).transpose();
  Summary r;
  r.mean = ax.mean();
  r.sd = std::sqrt((ax.array() - r.mean).square().sum() / static_cast<double>(ax.size() - 1));
  for (Index j = 0; j < draws.cols(); ++j) {
    if (distance_to_moon(draws.col(j), 0) < distance_to_moon(draws.col(j), 1)) r.upper_share += 1.0;
  }
  r.upper_share /= static_cast<double>(draws.cols());
  return r;
}

namespace {

// ---- default setups (the registry entries below); each head adjusts them in its own defaults hook ----

AmortizedSetup two_moons_setup(HeadType /*head: the heads tune these in their own hooks*/) {
  AmortizedSetup s;
  auto& t = s.training;
  // The seed-000 setting: 6 spline couplings, 8 bins on [-5, 5]; trains in about half a minute.
  s.pairs = 6000;
  s.network.encoder.context = 16;
  s.network.encoder.width = 32;
  s.network.flow.width = 64;
  s.network.score.width = 64;
  s.network.score.blocks = 2;
  s.network.score.steps = 100;
  t.learning_rate = 3e-3;  // batch size and epochs: from the budget (TrainingOptions defaults)
  return s;
}

AmortizedSetup linear_gaussian_setup(HeadType /*head: the heads tune these in their own hooks*/) {
  AmortizedSetup s;
  auto& t = s.training;
  // Simulation is cheap and the networks are small: many pairs, no overfitting.
  s.pairs = 30000;
  s.network.encoder.context = 16;
  s.network.encoder.width = 32;
  s.network.flow.layers = 4;
  s.network.flow.coupling = CouplingType::kAffine;
  s.network.flow.width = 32;
  s.network.gaussian.width = 32;
  s.network.score.width = 64;
  s.network.score.blocks = 2;
  s.network.score.steps = 100;
  t.learning_rate = 2e-3;  // batch size and epochs: from the budget (TrainingOptions defaults)
  return s;
}

AmortizedSetup lorenz96_setup(HeadType /*head: the heads tune these in their own hooks*/) {
  AmortizedSetup s;
  auto& t = s.training;
  s.pairs = 20000;
  s.network.encoder.type = EncoderType::kConv;
  s.network.encoder.context = 64;
  s.network.encoder.width = 128;
  s.network.encoder.depth = 1;
  s.network.flow.coupling = CouplingType::kAffine;
  s.network.flow.width = 64;  // width 128 overfits 10000 pairs (best epoch 12 of 30)
  s.network.gaussian.covariance = CovarianceForm::kDiagonal;
  s.network.gaussian.width = 128;
  s.network.score.width = 128;
  s.network.score.blocks = 2;
  s.network.score.steps = 100;
  s.network.mean_samples = 200;
  t.learning_rate = 1e-3;  // batch size and epochs: from the budget (TrainingOptions defaults)
  return s;
}

// Any registered model: a dense encoder (a convolution assumes a periodic grid, which a model in
// general does not have) and a full Gaussian covariance. The default model is Lorenz-63, observed in
// x and z (stride 2) every 4 steps of a 16-step window, with a gaussian prior about its attractor.
AmortizedSetup window_setup(HeadType /*head: the heads tune these in their own hooks*/) {
  AmortizedSetup s;
  s.pairs = 10000;
  s.window_problem.model = ModelSpec{"lorenz63", ModelSpec::default_parameters("lorenz63")};
  s.window_problem.window = 16;
  s.window_problem.missing = 0.0;
  s.window_problem.prior = WindowPrior::kGaussian;
  s.network.encoder.context = 32;
  s.network.encoder.width = 64;
  s.network.flow.width = 64;
  s.network.gaussian.width = 64;
  s.network.score.width = 64;
  s.network.score.blocks = 2;
  s.network.score.steps = 100;
  s.training.learning_rate = 1e-3;
  return s;
}

std::vector<ProblemEntry> builtin_problems() {
  std::vector<ProblemEntry> p;
  p.push_back({"two-moons", "two moons, y = x1 + x2 + noise: a bimodal posterior at y = 0 (seed problem 000)",
               [](const AmortizedSetup&) { return std::unique_ptr<Simulator>(std::make_unique<TwoMoons>()); },
               two_moons_setup});
  p.push_back({"linear-gaussian", "x ~ N(0, 0.1 I), y = x + N(0, 0.1 I) in 10-D: the exact posterior is N(y/2, 0.05 I)",
               [](const AmortizedSetup&) { return std::unique_ptr<Simulator>(std::make_unique<LinearGaussian>()); },
               linear_gaussian_setup});
  p.push_back({"lorenz96", "a Lorenz-96 4D-Var window: the initial state from observations (keys in model, observations, background, truth, cycling)",
               [](const AmortizedSetup& s) {
                 if (s.window_problem.model.name != "lorenz96") {
                   throw InvalidArgument(format_message("problem lorenz96: model.name = ", s.window_problem.model.name,
                                                        " is not lorenz96; use the problem 'window' for other models"));
                 }
                 return std::unique_ptr<Simulator>(std::make_unique<WindowProblem>(s.window_problem));
               },
               lorenz96_setup});
  p.push_back({"window", "a 4D-Var window of any registered model (model.name; default lorenz63): the initial state from observations (keys as lorenz96)",
               [](const AmortizedSetup& s) {
                 return std::unique_ptr<Simulator>(std::make_unique<WindowProblem>(s.window_problem));
               },
               window_setup});
  return p;
}

Registry<ProblemEntry>& registry() {
  static Registry<ProblemEntry> problems("problem", builtin_problems());
  return problems;
}

}  // namespace

void register_problem(ProblemEntry entry) {
  if (!entry.make || !entry.default_setup) {
    throw InvalidArgument(
        format_message("register_problem: problem ", entry.name, " needs a simulator factory and a default setup"));
  }
  registry().add(std::move(entry), "register_problem");
}

const ProblemEntry& find_problem(const std::string& name, const std::string& where) {
  return registry().get(name, where);
}

std::vector<std::string> problem_names() { return registry().names(); }

std::unique_ptr<Simulator> make_problem(const std::string& name, const WindowProblemOptions& lorenz96) {
  AmortizedSetup s;
  s.window_problem = lorenz96;
  return find_problem(name).make(s);
}

}  // namespace varflow::amortized
