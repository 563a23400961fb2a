#pragma once
// Simulated inverse problems: a prior p(x) to draw from and a forward model y | x to simulate, which
// is all amortized (simulation-based) inference needs (Cranmer, Brehmer & Louppe 2020).
#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "varflow/amortized/config.h"
#include "varflow/core/communicator.h"
#include "varflow/core/random.h"
#include "varflow/core/types.h"
#include "varflow/covariance/covariance.h"
#include "varflow/var/window.h"

namespace varflow {
class Model;
}

namespace varflow::amortized {

// Oracle information per pair for derivative-informed training (design/amortized.md): the oracle's
// posterior mean m(y_j) (the exact one where the problem has it, otherwise the 4D-Var MAP) and its
// Jacobian J(y_j) = dm/dy applied to `probes` random directions. Physical units.
//   mean: state_size x n; a column of NaN marks a pair without labels (a labelled subset);
//   dy:   obs_size x (n probes), column j probes + p; 0 at missing entries of y_j;
//   dx:   state_size x (n probes), dx(:, j probes + p) = J(y_j) dy(:, j probes + p).
//   variance: state_size x n or empty, the oracle's marginal posterior variances (the Laplace
//             approximation's diagonal at the MAP; Simulator::label_variances), NaN for a pair
//             without labels. Empty when not computed.
struct OracleLabels {
  Matrix mean;
  Index probes = 0;
  Matrix dy, dx;
  Matrix variance;
  bool empty() const { return mean.size() == 0; }
  Index labelled() const;  // pairs with labels
};

// The oracle's linearisation of the posterior mean about a reference observation (LinearGain::kOracle,
// config.h): m(y) ~ m(y_ref) + gain (y - y_ref). y_ref (obs_size; NaN for a component no pair
// observes) and gain (state_size x obs_size, zero columns for those components). Empty: not computed.
struct OracleGain {
  Vector y_ref;
  Matrix gain;
  bool empty() const { return gain.size() == 0; }
};

// Pairs (x_j, y_j), one per column: x is state_size x n, y is obs_size x n. Missing observations
// are NaN (allowed only for gridded observations). `labels` is empty or has one column per pair.
struct Dataset {
  Matrix x;
  Matrix y;
  OracleLabels labels;
  OracleGain oracle_gain;  // Simulator::linearize; empty unless the network's linear_gain asks for it
  Index size() const { return x.cols(); }
  // Throws InvalidArgument naming the first bad column: wrong sizes, a non-finite state, a
  // non-finite observation where no missing values are allowed (or an infinite one anywhere), labels
  // of the wrong shape or with a non-finite value in a labelled pair.
  void validate(const ProblemShape& shape) const;
};

class Simulator {
 public:
  virtual ~Simulator() = default;
  virtual std::string name() const = 0;      // e.g. "two-moons"
  virtual std::string describe() const = 0;  // one line with the parameters
  virtual ProblemShape shape() const = 0;
  // n independent pairs from the joint p(x) p(y | x), drawn from rng.
  virtual Dataset simulate(Index n, Rng& rng) const = 0;

  // The settings that define the problem beyond its name, as key/value entries (e.g.
  // "observations.error_variance"); stored in model files so that validation rebuilds the same problem.
  // Empty when the name alone defines it.
  virtual std::vector<std::pair<std::string, std::string>> definition() const { return {}; }

  // Derivative-informed training: whether label_pair() computes oracle labels for this problem.
  virtual bool has_oracle_labels() const { return false; }
  // Fills data.labels for the first `count` pairs of data (the others get NaN columns) with
  // `probes` directions each, drawn from rng (standard normal on the present observations;
  // prepare_labels). The pairs are split over the ranks of `comm` (cyclically) and over each rank's
  // OpenMP threads, and gathered on every rank in pair order: the labels are the same for any number
  // of ranks and threads (design/parallel.md). Throws InvalidArgument when the problem has no oracle
  // (has_oracle_labels() false). A pair whose oracle solve fails (a NumericalError of label_pair,
  // e.g. a 4D-Var that does not converge) carries no label (a NaN mean column, zero probes) and is
  // counted in the report; the likelihood term still trains on it. When every pair fails, a
  // NumericalError naming the first. `progress`, when given, hears of each of this rank's pairs
  // (distributed_map).
  struct LabelReport {
    Index labelled = 0;         // pairs that carry labels
    Index failed = 0;           // pairs whose oracle solve failed (no label)
    std::string first_failure;  // the first failed pair's message, empty when none failed
  };
  LabelReport label(Dataset& data, Index count, Index probes, Rng& rng,
                    const Communicator& comm = serial_communicator(), const ItemProgress& progress = {}) const;

  // Variance labels (labels.variance_weight): whether label_variance() gives the oracle's marginal
  // posterior variances.
  virtual bool has_variance_labels() const { return false; }
  // Throws InvalidArgument naming the problem (and labels.variance_weight) when it has none.
  void check_variance_labels() const;
  // Fills data.labels.variance (after label()) for every pair that carries labels, at its label
  // mean, spread over ranks and threads as label() (the same result for any number of either). A
  // pair whose computation fails (a NumericalError, e.g. a Hessian that is not positive definite)
  // loses all its labels and is counted in the report; when every one fails, a NumericalError
  // naming the first. Throws InvalidArgument when the problem has no variance labels or data
  // carries no labels.
  LabelReport label_variances(Dataset& data, const Communicator& comm = serial_communicator(),
                              const ItemProgress& progress = {}) const;
  // The oracle's marginal posterior variances (state_size, positive) of observation y whose
  // posterior mean (label_pair's) is `mean`. Called concurrently. The default throws InvalidArgument.
  virtual Vector label_variance(const Vector& y, const Vector& mean) const;

  // The oracle's labels of one pair: its posterior mean m(y) (state_size) and J(y) applied to the
  // columns of dy (obs_size x probes, 0 at the missing entries of y) as the columns of dx
  // (state_size x probes). Called concurrently for different pairs. Only called when
  // has_oracle_labels(); the default throws InvalidArgument.
  struct PairLabels {
    Vector mean;
    Matrix dx;
  };
  virtual PairLabels label_pair(const Vector& y, Index pair, const Matrix& dy) const;

  // Sets data.oracle_gain: y_ref = the mean of each observation over the pairs (missing values
  // ignored) and gain = the oracle's J at y_ref, one label_pair() probe per observation (m oracle
  // sensitivity solves; design/amortized.md, "The oracle gain"). Every rank computes it (it is one
  // oracle solve). Throws InvalidArgument when the problem has no oracle (has_oracle_labels() false)
  // and NumericalError when the oracle fails.
  void linearize(Dataset& data) const;
};

// Allocates data.labels for `probes` directions per pair (NaN means, zero directions) and draws
// the directions of the first `count` pairs (standard normal on the present entries of y_j).
void prepare_labels(Dataset& data, Index count, Index probes, Rng& rng);

// Two moons (seed problem 000): x = a point on the upper moon (cos t, sin t) or the lower moon
// (1 - cos t, 0.5 - sin t), t ~ U[0, pi], equal odds, plus N(0, 0.06^2 I), then standardised per
// coordinate with the exact moments of that distribution; y = x1 + x2 + N(0, 0.1^2). An observation
// pins x to a band around the line x1 + x2 = y; at y = 0 the posterior is bimodal (one mode per moon).
class TwoMoons final : public Simulator {
 public:
  static constexpr double kMoonNoise = 0.06;
  static constexpr double kObsNoise = 0.1;
  std::string name() const override { return "two-moons"; }
  std::string describe() const override;
  ProblemShape shape() const override { return {2, 1, 1, 0}; }
  Dataset simulate(Index n, Rng& rng) const override;
  // Prior draws (2 x n, standardised); `moon` (if not null) receives 0 (upper) or 1 (lower) per draw.
  static Matrix sample_prior(Index n, Rng& rng, std::vector<int>* moon = nullptr);
  // Exact mean and standard deviation of the raw (unstandardised) prior, per coordinate.
  static Eigen::Vector2d raw_mean();
  static Eigen::Vector2d raw_std();
  // Distance of a standardised point to the nearest point of moon 0 or 1 (in raw coordinates).
  static double distance_to_moon(const Eigen::Vector2d& x_standardised, int moon);

  // Summaries of a posterior at y: of A x = x1 + x2, and the share of the mass nearer the upper moon.
  struct Summary {
    double mean = 0.0, sd = 0.0, upper_share = 0.0;
  };
  // p(y | x) up to its constant, as a function of A x = x1 + x2 (standardised coordinates).
  static double likelihood(double ax, double y);
  // The exact posterior's, by importance weighting of prior draws (sample_prior) with the likelihood.
  static Summary exact_summary(double y, const Matrix& prior_draws);
  // The same figures of equally weighted draws (2 x n) of a posterior.
  static Summary sample_summary(const Matrix& draws);
  // n draws (2 x n) of the exact posterior at y: prior draws resampled with replacement in
  // proportion to their likelihood (sampling-importance-resampling; prior_draws should be many
  // times n, as its effective size near the line x1 + x2 = y is a small fraction of it).
  static Matrix exact_draws(double y, const Matrix& prior_draws, Index n, Rng& rng);
};

// x ~ N(0, prior_variance I_n), y = x + N(0, noise_variance I_n). The exact posterior is Gaussian:
// mean = y * pv / (pv + nv), covariance = pv nv / (pv + nv) I (for the defaults N(y/2, 0.05 I)).
class LinearGaussian final : public Simulator {
 public:
  explicit LinearGaussian(Index n = 10, double prior_variance = 0.1, double noise_variance = 0.1);
  std::string name() const override { return "linear-gaussian"; }
  std::string describe() const override;
  ProblemShape shape() const override { return {n_, n_, 1, 0}; }
  Dataset simulate(Index n, Rng& rng) const override;
  Vector posterior_mean(const Vector& y) const;
  double posterior_variance() const;
  // Exact labels: m(y) = y pv / (pv + nv), J = pv / (pv + nv) I.
  bool has_oracle_labels() const override { return true; }
  PairLabels label_pair(const Vector& y, Index pair, const Matrix& dy) const override;
  // The exact posterior variance pv nv / (pv + nv) in every component.
  bool has_variance_labels() const override { return true; }
  Vector label_variance(const Vector& y, const Vector& mean) const override;

 private:
  Index n_;
  double pv_, nv_;
};

// A 4D-Var window of any registered model (model_registry.h) as an inverse problem: x0 from the
// prior (options.prior: the model's climatology, i.e. states of one long run spun up for `spinup`
// steps and then taken every `decorrelation` steps; gaussian, x0 = center() + prior_sd N(0, I); or
// background, x0 = x_b + prior_sd N(0, I) with x_b a climatological state that y carries),
// y = the resolved variables (ModelEntry::resolved_size; all of them for a single-scale model)
// observed at steps obs_first, obs_first + obs_every, ... <= window along the model trajectory, plus
// N(0, obs_noise^2); only every obs_stride-th resolved variable is observed and each observed value
// is missing with probability `missing` (NaN = missing). The observations form
// observation_slots() = (window - obs_first) / obs_every + 1 gridded fields of `resolved` points;
// with the background prior y starts with one more, the background x_b (exact, never missing), so
// that the network sees (x_b, y) as channels of one grid. Its oracle is 4D-Var of the window
// (report/oracles.h), which every registered model supports through its tangent-linear and adjoint.
//
// The problem's name is "lorenz96" for the Lorenz-96 model (the built-in problem of that name) and
// "window" for any other model: both registry entries build this class.
//
// The trajectory from x0 to the observation times is run with `model`: by default the physics
// (options.model); the cycle passes its promoted model (e.g. a trained emulator) to train on its
// pairs. The prior (the climatological run, the gaussian centre) always comes from the physics, so
// two problems that differ only in `model` share their prior.
class WindowProblem final : public Simulator {
 public:
  // Throws InvalidArgument for invalid options or a simulation model whose state size is not the
  // physics' (options.model).
  explicit WindowProblem(WindowProblemOptions options = {}, std::shared_ptr<const Model> model = nullptr);
  std::string name() const override;
  std::string describe() const override;
  ProblemShape shape() const override;
  Dataset simulate(Index n, Rng& rng) const override;
  const WindowProblemOptions& options() const { return o_; }
  std::vector<std::pair<std::string, std::string>> definition() const override { return problem_entries(o_); }
  // The model the observations are simulated with.
  const Model& model() const { return *model_; }
  // The number of leading state components that are observed (the resolved variables).
  Index resolved_size() const { return resolved_; }
  // The gridded observation slots (observation times) of y, without the background slot.
  Index observation_slots() const;
  // The leading entries of y that are the background x_b: the state size for the background
  // prior, else 0. The observation slots follow them.
  Index background_size() const;
  // Gaussian prior: its mean c (empty for the climatological prior).
  const Vector& center() const { return center_; }

  // The 4D-Var window of observation y (stacked slots, NaN = missing) with the simulation model
  // and the problem's Gaussian prior as background ((c, prior_sd^2 I), or (x_b from y,
  // prior_sd^2 I) for the background prior), identity observations with R = obs_noise^2 I. Throws
  // InvalidArgument for the climatological prior (it has no Gaussian background of its own).
  AssimilationWindow window(const Vector& y) const;
  // The same window with another Gaussian background (e.g. a Gaussian approximation of the
  // climatological prior); a background slot of y is not used.
  AssimilationWindow window(const Vector& y, const Vector& background, std::shared_ptr<const Covariance> b) const;
  // Labels from 4D-Var with the simulation model (gaussian prior only): the MAP (incremental
  // Gauss-Newton) and J dy = d MAP / dy in each probe direction, by the exact sensitivity at the MAP
  // (var/exact_sensitivity.h) when the model has a second-order adjoint, otherwise by central
  // differences of the MAP (2 more solves per probe).
  // With the background prior, J includes d MAP / d x_b (the background slot's probe entries).
  bool has_oracle_labels() const override { return o_.prior != WindowPrior::kClimatology; }
  PairLabels label_pair(const Vector& y, Index pair, const Matrix& dy) const override;
  // The Laplace oracle's marginal variances: the diagonal of (B^-1 + G^T R^-1 G)^-1, the
  // Gauss-Newton Hessian at `mean` (the MAP) formed with n TL and n AD sweeps and inverted densely
  // (O(n^3): meant for the small states amortized posteriors are trained on). NumericalError when
  // it is not positive definite.
  bool has_variance_labels() const override { return has_oracle_labels(); }
  Vector label_variance(const Vector& y, const Vector& mean) const override;

  // The fixed attractor state of the gaussian prior for these options (deterministic in
  // size, forcing, dt, spinup and prior_seed).
  static Vector gaussian_center(const WindowProblemOptions& options);

 private:
  WindowProblemOptions o_;
  std::shared_ptr<const Model> physics_;  // options.model: the prior's model
  std::shared_ptr<const Model> model_;    // the simulation model (physics_ by default)
  Index resolved_ = 0;
  Vector center_;
};

// The oracle information a training set carries, added in the order every trainer uses: labels for
// the first labels.pairs pairs (Simulator::label, when labels.enabled()), their marginal variances
// (label_variances, when labels.variance_weight > 0 too) and the oracle gain (linearize, when
// `gain`: the network's linear_gain is oracle). Each stage's report and seconds. With `log`, one line
// per stage, each starting with `prefix` ("labelled 2997 pairs with the oracle (mean and J on 2
// probes each) in 28.2 s", the failures, "oracle gain at the mean observation (120 sensitivity
// solves) in 0.14 s"); `progress(stage)` gives the per-pair progress of the "labels" and
// "variances" stages (none when empty). Throws what the stages throw: InvalidArgument for a problem
// without the oracle asked for, NumericalError when the oracle fails on every pair or at the mean
// observation.
struct OracleReport {
  Simulator::LabelReport labels, variances;
  double label_seconds = 0.0, variance_seconds = 0.0, gain_seconds = 0.0;
  double seconds() const { return label_seconds + variance_seconds + gain_seconds; }
};
OracleReport add_oracle_information(const Simulator& problem, Dataset& data, const LabelOptions& labels, bool gain,
                                    Rng& rng, const Communicator& comm = serial_communicator(),
                                    std::ostream* log = nullptr, const std::string& prefix = "",
                                    const std::function<ItemProgress(const std::string& stage)>& progress = {});

// ---- the problem registry -------------------------------------------------------------------------
// name -> simulator factory and default setup per head. `varflow train`, model files, `validate`
// (with the oracle registry of report/oracles.h) and the benchmarks find problems here, so a new
// problem is its simulator plus one registration (design/architecture.md, "Adding a problem").
// Built-in: two-moons, linear-gaussian, lorenz96 (registered in problems.cpp).
struct ProblemEntry {
  std::string name;     // e.g. "two-moons"
  std::string summary;  // one line for --help
  // The simulator for a setup (the lorenz96 problem reads setup.window_problem; others ignore the setup).
  std::function<std::unique_ptr<Simulator>(const AmortizedSetup&)> make;
  // The problem's default network, training and labels for a head (default_setup sets the head
  // itself, then lets the head adjust the rest).
  std::function<AmortizedSetup(HeadType)> default_setup;
};

// Adds a problem; InvalidArgument when the name is taken or the entry is incomplete. Not
// thread-safe: register at start-up.
void register_problem(ProblemEntry entry);
// InvalidArgument "<where>: problem = 'x' is not one of: a, b, c".
const ProblemEntry& find_problem(const std::string& name, const std::string& where = "problem");
std::vector<std::string> problem_names();

// The problem `name` with the setup's problem options (lorenz96) or the defaults.
std::unique_ptr<Simulator> make_problem(const std::string& name, const WindowProblemOptions& lorenz96 = {});

}  // namespace varflow::amortized
