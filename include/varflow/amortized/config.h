#pragma once
// Configuration of an amortized posterior: the shape of the problem, the encoder, and one of three
// heads (conditional normalizing flow, score-based diffusion, Gaussian regression).
//
// Every field has a key ("flow.bins", "training.epochs", ...) used by YAML configuration files, by the
// text stored in model files and in error messages. Validation names the key, the value and the rule.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "varflow/core/types.h"
#include "varflow/model/model_registry.h"
#include "varflow/nn/layers.h"
#include "varflow/nn/trainer.h"

namespace varflow::amortized {

// Which head an amortized posterior has: the name of a registered head (head_registry.h). The
// built-in heads have constants; head_from_string() gives any registered head. The default is flow.
class HeadType {
 public:
  constexpr HeadType() = default;
  constexpr std::string_view name() const { return name_; }
  friend constexpr bool operator==(HeadType a, HeadType b) { return a.name_ == b.name_; }
  static const HeadType kFlow, kScore, kGaussian;

 private:
  // The name must outlive every HeadType: a literal or a registration's (see register_head).
  constexpr explicit HeadType(std::string_view name) : name_(name) {}
  friend HeadType head_from_string(const std::string& s, const std::string& key);
  std::string_view name_ = "flow";
};
inline constexpr HeadType HeadType::kFlow{"flow"};
inline constexpr HeadType HeadType::kScore{"score"};
inline constexpr HeadType HeadType::kGaussian{"gaussian"};

enum class EncoderType { kMlp, kConv, kLocal };
enum class CouplingType { kSpline, kAffine };
enum class CovarianceForm { kFull, kDiagonal };
enum class SdeType { kVp, kVe };
// Score-head samplers: Euler-Maruyama reverse SDE, Euler probability-flow ODE, the reverse SDE
// with Langevin corrector steps (predictor-corrector, Song et al. 2021, Algorithms 4-5), or Heun's
// second-order method on the probability-flow ODE (Karras et al. 2022, Algorithm 1).
enum class Sampler { kSde, kOde, kPc, kHeun };
// What the score head's epsilon-network is added to: nothing, or the exact epsilon of a Gaussian
// posterior N(m(c), diag(v)) (m linear in the context, v a learned vector); score.h.
enum class ScoreBackbone { kNone, kGaussian };
// climatology | gaussian | background (WindowProblemOptions::prior).
enum class WindowPrior { kClimatology, kGaussian, kBackground };
// The affine backbone every head models its residual from (AmortizedPosterior, design/amortized.md,
// "The oracle gain"): none (x is z-scored), or oracle: x - K (y - y_ref) is, where K is the
// oracle's J = d mean / dy at the mean observation y_ref of the training pairs.
enum class LinearGain { kNone, kOracle };

std::string to_string(HeadType v);        // the head's name: flow | score | gaussian | a registered one
std::string to_string(EncoderType v);     // mlp | conv | local
std::string to_string(CouplingType v);    // spline | affine
std::string to_string(CovarianceForm v);  // full | diagonal
std::string to_string(SdeType v);         // vp | ve
std::string to_string(Sampler v);         // sde | ode | pc | heun
std::string to_string(ScoreBackbone v);   // none | gaussian
std::string to_string(LinearGain v);      // none | oracle
std::string to_string(WindowPrior v);   // climatology | gaussian
// Parse the names above; throw InvalidArgument "<key> = '<value>' is not one of ..." otherwise
// (heads: the registered names, head_registry.h).
HeadType head_from_string(const std::string& s, const std::string& key = "head");
EncoderType encoder_from_string(const std::string& s, const std::string& key = "encoder.type");
CouplingType coupling_from_string(const std::string& s, const std::string& key = "flow.coupling");
CovarianceForm covariance_from_string(const std::string& s, const std::string& key = "gaussian.covariance");
SdeType sde_from_string(const std::string& s, const std::string& key = "score.sde");
Sampler sampler_from_string(const std::string& s, const std::string& key = "score.sampler");
ScoreBackbone score_backbone_from_string(const std::string& s, const std::string& key = "score.backbone");
LinearGain linear_gain_from_string(const std::string& s, const std::string& key = "linear_gain");
WindowPrior window_prior_from_string(const std::string& s, const std::string& key = "background.prior");

// Sizes of the inverse problem. Observations are either a vector (obs_grid = 0) or `obs_slots`
// gridded fields of obs_grid points each (obs_size = obs_slots * obs_grid, slot-major), which may
// have missing values (NaN) and go through a convolutional encoder with a mask channel.
struct ProblemShape {
  Index state_size = 0;
  Index obs_size = 0;
  Index obs_slots = 1;
  Index obs_grid = 0;
  bool gridded() const { return obs_grid > 0; }
  void validate() const;  // InvalidArgument naming the field
  bool operator==(const ProblemShape&) const = default;
};

// local: a fully convolutional encoder for a state on the observation grid (obs_grid =
// state_size): per grid point the observation and mask channels plus constant channels from the
// stored normalisation (the state mean, i.e. the prior centre, and the other statistics) go through
// conv_layers periodic convolutions and a pointwise one to 2 channels, the mean and log-sd of a
// diagonal Gaussian (the Gaussian head takes them directly, without an MLP). context, width and
// depth are unused. Requires head gaussian with gaussian.covariance = diagonal.
struct EncoderOptions {
  EncoderType type = EncoderType::kMlp;
  Index context = 16;       // size of the context vector the head is conditioned on
  Index width = 64;         // hidden units of the dense part
  Index depth = 2;          // hidden dense layers (mlp: after the input; conv: after the convolutions)
  Index channels = 16;      // conv, local: channels of each convolution
  Index conv_layers = 2;    // conv, local: number of periodic convolutions (local: hidden ones)
  Index kernel = 5;         // conv, local: odd kernel width
  nn::Activation activation = nn::Activation::kSilu;
  // A dense linear path from the (masked, normalised) observations to the context around the
  // network (nn::LinearSkip): the context is linear in y plus the network's nonlinear rest.
  bool linear_skip = false;
  // local with linear_gain = oracle: one more input channel per grid point, the linearised
  // analysis increment K (y - y_ref) in the residual's units (nn::LinearChannels with the stored
  // gain), so that the convolutions see the oracle gain's nonlocal answer beside the local
  // observations.
  bool gain_channel = false;
};

struct FlowOptions {
  Index layers = 6;                           // coupling layers
  CouplingType coupling = CouplingType::kSpline;
  Index bins = 8;                             // spline bins K
  double bound = 5.0;                         // spline interval [-B, B]; identity tails outside
  double affine_clamp = 3.0;                  // soft clamp of the affine log-scale
  bool actnorm = true;                        // ActNorm before every coupling (Kingma & Dhariwal 2018)
  Index width = 64;                           // conditioner MLP
  Index depth = 2;
  nn::Activation activation = nn::Activation::kSilu;
};

struct ScoreOptions {
  SdeType sde = SdeType::kVp;
  double beta_min = 0.1;    // VP: beta(t) = beta_min + t (beta_max - beta_min)
  double beta_max = 20.0;
  double sigma_min = 0.01;  // VE: sigma(t) = sigma_min (sigma_max / sigma_min)^t
  double sigma_max = 10.0;
  double t_min = 1e-3;      // training times lie in [t_min, 1]; samplers integrate from 1 to t_min
  // Training times: this fraction uniform in log sigma(t) over [t_min, 1], the rest t ~ U[t_min, 1].
  // VP spends 3% of uniform times below sigma = 0.1, where a posterior 0.1 wide takes its shape
  // (design/amortized.md, "Score samplers on two-moons"). VE: log sigma is linear in t (no change).
  // 0 here, as model files without the key were trained; the problems' defaults set 0.5.
  double log_sigma_fraction = 0.0;
  Index width = 128;        // residual MLP epsilon-network
  Index blocks = 3;
  Index time_features = 6;  // sinusoidal features of t: 2 * time_features + 1 inputs
  ScoreBackbone backbone = ScoreBackbone::kNone;  // epsilon = backbone + network (score_head.h)
  Sampler sampler = Sampler::kSde;
  Index steps = 200;        // time steps of any sampler
  // The samplers' time grid t_k = t_min + (1 - t_min)(1 - k/steps)^grid_power, in [1, 4]: 1 is equal
  // steps (as model files without the key sampled); 2 puts ~16 of 100 steps below sigma = 0.1 (VP)
  // instead of 3, where a narrow posterior takes its shape. The problems' defaults set 2.
  double grid_power = 1.0;
  Index corrector_steps = 1;  // pc: Langevin steps after each predictor step
  double snr = 0.16;          // pc: the corrector's signal-to-noise ratio r (step 2 a (r |z| / |s|)^2)
  // End every sampler (and the mean's ODE) with one probability-flow step from t_min to t = 0 (one
  // more network pass; score_head.h): without it the draws keep the noise of level sigma(t_min)
  // (VP: 0.0105 in normalised units), which on two-moons widens the posterior across the
  // observation line by ~1.5%.
  // false here, as model files without the key sampled; the problems' defaults set true.
  bool denoise = false;
  nn::Activation activation = nn::Activation::kSilu;
};

struct GaussianOptions {
  CovarianceForm covariance = CovarianceForm::kFull;
  Index width = 64;
  Index depth = 2;
  nn::Activation activation = nn::Activation::kSilu;
  // A dense linear path from the context to the head's outputs around its MLP (nn::LinearSkip).
  // With encoder.linear_skip the posterior mean has a linear path from y: mean = K y + nonlinear rest.
  bool linear_skip = false;
};

struct AmortizedConfig {
  HeadType head = HeadType::kFlow;
  EncoderOptions encoder;
  FlowOptions flow;
  ScoreOptions score;
  GaussianOptions gaussian;
  // Flow and score heads: the posterior mean is the average of the sampling map over this many
  // fixed base draws (common random numbers from mean_seed), a smooth deterministic function of y.
  Index mean_samples = 1000;
  std::uint64_t mean_seed = 20211013;
  // The head models x - K (y - y_ref) instead of x (LinearGain above); oracle needs a problem with
  // oracle labels (Simulator::linearize).
  LinearGain linear_gain = LinearGain::kNone;
  // Options of registered heads beyond the built-in ones (HeadOption, head_registry.h): key
  // "<head>.<field>" -> canonical text. A key not set here has its registered default. The
  // configured head's options are part of config_entries() (and so of model files).
  std::map<std::string, std::string> head_options;

  // Throws InvalidArgument "AmortizedConfig: <key> = <value> <rule>".
  void validate(const ProblemShape& shape) const;
};

// The window problem (see problems.h, WindowProblem): a registered model, an observation network
// along its trajectory and a prior of the initial state. The defaults are the lorenz96 problem.
struct WindowProblemOptions {
  ModelSpec model;             // any registered model (model.name and its options); default lorenz96
  Index window = 8;            // model steps of the window; observations at steps obs_first,
  Index obs_every = 4;         // obs_first + obs_every, ... <= window
  Index obs_first = 0;         // 0 <= obs_first <= window (obs_every: a cycled window whose start
                               // the previous window observed)
  Index obs_stride = 2;        // observed points of the resolved variables: every obs_stride-th
  double missing = 0.1;        // probability that an observed point is missing (NaN)
  double obs_noise = 1.0;      // observation error standard deviation
  Index spinup = 1000;         // steps before climatological states are taken (gaussian: before the centre)
  Index decorrelation = 10;    // steps between climatological states
  // Distribution of x0. climatology: states of one long run (a non-Gaussian prior). gaussian:
  // x0 = c + prior_sd * N(0, I) with c a fixed attractor state, the state after `spinup` steps of a
  // run from the model's rest state (ones when it has none) perturbed by 0.01 N(0, I) drawn with
  // Rng(prior_seed). background: the prior of a cycled analysis, x0 = x_b + prior_sd * N(0, I)
  // (B = prior_sd^2 I about a background x_b), with x_b drawn from the climatology and handed to
  // the network as the first gridded slot of y (single-scale models only), so that one network
  // serves every cycle's background.
  WindowPrior prior = WindowPrior::kClimatology;
  double prior_sd = 1.0;
  std::uint64_t prior_seed = 20261122;
  void validate() const;
};

// Derivative-informed training (design/amortized.md): how many of the simulated pairs carry oracle
// labels (problems.h, OracleLabels: the oracle's posterior mean and J applied to random probes) and
// how the loss weighs them next to the likelihood. In normalised units (x and y z-scored), per
// labelled pair, with d the state size:
//   mean_weight     * 1/2 ||m_net(y) - m_oracle(y)||^2
//   jacobian_weight * 1/2 ||J_net v - J v||^2 / (||J v||^2 / d), averaged over the probes,
// i.e. both are sums over the d components, like the likelihood, and the Jacobian term measures the
// probe error in units of the label's rms component (a relative error, as the gate measures it);
// J_net v = (m_net(y + h v) - m_net(y)) / h, h = step / rms(v): a forward difference of the network
// in y (one extra column per probe), whose parameter gradient is exact; its truncation error,
// O(step) relative, is far below the 5% probe tolerance of the gate at the default step 1e-4.
struct LabelOptions {
  Index pairs = 0;               // labelled pairs, the first ones simulated (0: likelihood only)
  Index probes = 2;              // J probes per labelled pair
  // Both far above the likelihood: the labels are exact, deterministic targets, whereas the
  // likelihood sees the mean only through noisy draws x (design/amortized.md, measured).
  double mean_weight = 20.0;
  double jacobian_weight = 100.0;
  // Variance labels: > 0 also labels every labelled pair with the oracle's marginal posterior
  // variances (Simulator::label_variances; n TL and n AD sweeps and a dense n x n inversion per
  // pair) and adds variance_weight * 0.5 |log v_net - log v_oracle|^2 per pair (heads with
  // supports_variance_penalty()). 0: no variance labels.
  double variance_weight = 0.0;
  double step = 1e-4;
  // Flow head: base draws per context column of the training mean (antithetic pairs (z, -z), so
  // even; exact for an affine sampling map). The Gaussian head's mean is exact and ignores it.
  Index draws = 2;
  // Throws InvalidArgument "labels.<field> = <value> <rule>".
  void validate() const;
  bool enabled() const { return pairs > 0; }
};

// Everything a configuration file can set.
struct AmortizedSetup {
  AmortizedConfig network;
  nn::TrainingOptions training;
  Index pairs = 0;  // simulated pairs (0: the problem's default)
  LabelOptions labels;
  WindowProblemOptions window_problem;
};

// The defaults for a built-in problem and head: small enough to train in well under a few minutes
// on two cores. problem: two-moons | linear-gaussian | lorenz96.
AmortizedSetup default_setup(const std::string& problem, HeadType head);

// A registered head option's value in c (its default when not set), as text, an integer or a
// number. Throws InvalidArgument for a key no registered head declares.
std::string head_option(const AmortizedConfig& c, const std::string& key);
Index head_option_integer(const AmortizedConfig& c, const std::string& key);
double head_option_number(const AmortizedConfig& c, const std::string& key);

// key/value view of the network configuration (e.g. {"flow.bins", "8"}); stored in model files.
std::vector<std::pair<std::string, std::string>> config_entries(const AmortizedConfig& c);
// Sets one key of a AmortizedSetup from text. Keys: the config_entries() keys (with the registered head
// options), "training.<field>" for every TrainingOptions field, "pairs", "labels.<field>", and the
// lorenz96 problem's keys in the shared sections of the experiment configs (problem_entries:
// model.n, observations.error_variance, ...; design/formats.md). Throws InvalidArgument naming an
// unknown key, a value that does not parse, or a key of an earlier format with its new name
// ("key 'lorenz96.obs_noise' was renamed: use observations.error_variance ...").
void apply_entry(AmortizedSetup& s, const std::string& key, const std::string& value, const std::string& where = "config");
// Applies a problem definition stored in a model file (AmortizedPosterior::problem_definition), which
// may use the keys of an earlier format (lorenz96.obs_noise = sd is read as
// observations.error_variance = sd^2, and so on).
void apply_definition(AmortizedSetup& s, const std::vector<std::pair<std::string, std::string>>& definition,
                      const std::string& where);
// True for the keys of the lorenz96 problem's definition (those problem_entries writes).
bool is_problem_key(const std::string& key);
// True for a problem key of an earlier format (lorenz96.obs_noise, ...): refused in configs with its
// new name, translated in stored model files (apply_definition).
bool is_renamed_key(const std::string& key);
// The network configuration as "key: value" lines.
std::string config_text(const AmortizedConfig& c);
// FNV-1a hash of config_text(), 16 hex digits.
std::string config_hash(const AmortizedConfig& c);

// The canonical text of one key's value in s (as config_entries and model files write it). Throws
// InvalidArgument for an unknown key.
std::string entry_value(const AmortizedSetup& s, const std::string& key);
// A Lorenz-96 problem definition as its entries ("model.n", "observations.error_variance", ...;
// stored in model files, so that validation needs no configuration).
std::vector<std::pair<std::string, std::string>> problem_entries(const WindowProblemOptions& o);
// Every key of a setup with its value, in the order of the key table (network, then pairs,
// training, labels, problem): `varflow train --print-default`, which reads back as a config.
std::vector<std::pair<std::string, std::string>> setup_entries(const AmortizedSetup& s);
// The keys a YAML file sets explicitly, dotted (e.g. "observations.error_variance"), with their text, in file
// order; nothing applied. Throws InvalidArgument naming the file when it cannot be read or parsed.
std::vector<std::pair<std::string, std::string>> read_setup_entries(const std::string& path);

// Reads a YAML file of nested mappings (e.g. `flow: {bins: 10}`, `training: {epochs: 50}`) into s,
// on top of its current values. Throws InvalidArgument naming the file and the bad key or value.
void load_setup_yaml(const std::string& path, AmortizedSetup& s);

}  // namespace varflow::amortized
