#include "varflow/amortized/config.h"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <cmath>
#include <functional>
#include <map>
#include <sstream>

#include "varflow/amortized/head_registry.h"
#include "varflow/core/enum_text.h"
#include "varflow/core/error.h"
#include "varflow/core/hash.h"
#include "varflow/core/limits.h"
#include "varflow/io/config_reader.h"
#include "varflow/amortized/problems.h"
#include "varflow/nn/parameters.h"

namespace varflow::amortized {

// ---- enum <-> string -----------------------------------------------------------------------------

namespace {
constexpr EnumNames<EncoderType, 3> kEncoderNames{
    {{EncoderType::kMlp, "mlp"}, {EncoderType::kConv, "conv"}, {EncoderType::kLocal, "local"}}};
constexpr EnumNames<CouplingType, 2> kCouplingNames{{{CouplingType::kSpline, "spline"}, {CouplingType::kAffine, "affine"}}};
constexpr EnumNames<CovarianceForm, 2> kCovarianceNames{
    {{CovarianceForm::kFull, "full"}, {CovarianceForm::kDiagonal, "diagonal"}}};
constexpr EnumNames<SdeType, 2> kSdeNames{{{SdeType::kVp, "vp"}, {SdeType::kVe, "ve"}}};
constexpr EnumNames<Sampler, 4> kSamplerNames{
    {{Sampler::kSde, "sde"}, {Sampler::kOde, "ode"}, {Sampler::kPc, "pc"}, {Sampler::kHeun, "heun"}}};
constexpr EnumNames<ScoreBackbone, 2> kScoreBackboneNames{
    {{ScoreBackbone::kNone, "none"}, {ScoreBackbone::kGaussian, "gaussian"}}};
constexpr EnumNames<LinearGain, 2> kLinearGainNames{{{LinearGain::kNone, "none"}, {LinearGain::kOracle, "oracle"}}};
constexpr EnumNames<WindowPrior, 3> kWindowPriorNames{{{WindowPrior::kClimatology, "climatology"},
                                                       {WindowPrior::kGaussian, "gaussian"},
                                                       {WindowPrior::kBackground, "background"}}};
}  // namespace

std::string to_string(HeadType v) { return std::string(v.name()); }
std::string to_string(EncoderType v) { return std::string(to_text(kEncoderNames, v)); }
std::string to_string(CouplingType v) { return std::string(to_text(kCouplingNames, v)); }
std::string to_string(CovarianceForm v) { return std::string(to_text(kCovarianceNames, v)); }
std::string to_string(SdeType v) { return std::string(to_text(kSdeNames, v)); }
std::string to_string(Sampler v) { return std::string(to_text(kSamplerNames, v)); }
std::string to_string(ScoreBackbone v) { return std::string(to_text(kScoreBackboneNames, v)); }
std::string to_string(LinearGain v) { return std::string(to_text(kLinearGainNames, v)); }
std::string to_string(WindowPrior v) { return std::string(to_text(kWindowPriorNames, v)); }

EncoderType encoder_from_string(const std::string& s, const std::string& key) {
  return from_text(kEncoderNames, key, s);
}
CouplingType coupling_from_string(const std::string& s, const std::string& key) {
  return from_text(kCouplingNames, key, s);
}
CovarianceForm covariance_from_string(const std::string& s, const std::string& key) {
  return from_text(kCovarianceNames, key, s);
}
SdeType sde_from_string(const std::string& s, const std::string& key) { return from_text(kSdeNames, key, s); }
Sampler sampler_from_string(const std::string& s, const std::string& key) { return from_text(kSamplerNames, key, s); }
ScoreBackbone score_backbone_from_string(const std::string& s, const std::string& key) {
  return from_text(kScoreBackboneNames, key, s);
}
LinearGain linear_gain_from_string(const std::string& s, const std::string& key) {
  return from_text(kLinearGainNames, key, s);
}
WindowPrior window_prior_from_string(const std::string& s, const std::string& key) {
  return from_text(kWindowPriorNames, key, s);
}

// ---- validation ----------------------------------------------------------------------------------

void ProblemShape::validate() const {
  const char* w = "ProblemShape";
  check_at_least(w, "state_size", state_size, 1);
  check_at_least(w, "obs_size", obs_size, 1);
  check_at_least(w, "obs_slots", obs_slots, 1);
  check_at_least(w, "obs_grid", obs_grid, 0);
  limits::check_at_most(w, "state_size", state_size, limits::kMaxStateSize);
  limits::check_at_most(w, "obs_size", obs_size, limits::kMaxStateSize);
  limits::check_at_most(w, "obs_slots", obs_slots, limits::kMaxStateSize);
  limits::check_at_most(w, "obs_grid", obs_grid, limits::kMaxStateSize);
  if (gridded() && obs_slots * obs_grid != obs_size) {
    throw InvalidArgument(format_message(w, ": obs_size = ", obs_size, " is not obs_slots x obs_grid = ", obs_slots,
                                         " x ", obs_grid));
  }
}

void AmortizedConfig::validate(const ProblemShape& shape) const {
  shape.validate();
  const char* w = "AmortizedConfig";
  check_at_least(w, "encoder.context", encoder.context, 1);
  check_at_least(w, "encoder.width", encoder.width, 1);
  check_at_least(w, "encoder.depth", encoder.depth, 0);
  if (encoder.type == EncoderType::kConv || encoder.type == EncoderType::kLocal) {
    if (!shape.gridded()) {
      throw InvalidArgument(format_message(w, ": encoder.type = ", to_string(encoder.type),
                                           " needs gridded observations (obs_grid = 0)"));
    }
    check_at_least(w, "encoder.channels", encoder.channels, 1);
    check_at_least(w, "encoder.conv_layers", encoder.conv_layers, 1);
    check_at_least(w, "encoder.kernel", encoder.kernel, 1);
    if (encoder.kernel % 2 == 0) throw InvalidArgument(format_message(w, ": encoder.kernel = ", encoder.kernel, " must be odd"));
  }
  if (encoder.type == EncoderType::kLocal) {
    if (shape.obs_grid != shape.state_size) {
      throw InvalidArgument(format_message(w, ": encoder.type = local needs the state on the observation grid (obs_grid = ",
                                           shape.obs_grid, ", state_size = ", shape.state_size, ")"));
    }
    if (head != HeadType::kGaussian || gaussian.covariance != CovarianceForm::kDiagonal) {
      throw InvalidArgument(format_message(w, ": encoder.type = local needs head = gaussian with gaussian.covariance = diagonal (head = ",
                                           to_string(head), ", gaussian.covariance = ", to_string(gaussian.covariance), ")"));
    }
    if (encoder.linear_skip || gaussian.linear_skip) {
      throw InvalidArgument(format_message(w, ": encoder.type = local has no dense path: encoder.linear_skip and gaussian.linear_skip must be false"));
    }
  }
  if (encoder.gain_channel && (encoder.type != EncoderType::kLocal || linear_gain != LinearGain::kOracle)) {
    throw InvalidArgument(format_message(w, ": encoder.gain_channel = true needs encoder.type = local and linear_gain = oracle (encoder.type = ",
                                         to_string(encoder.type), ", linear_gain = ", to_string(linear_gain), ")"));
  }
  check_at_least(w, "mean_samples", mean_samples, 2);
  // A lower bound of the dense weights (from the encoder widths; four copies: values, gradient,
  // AdamW moments), refused before the network is allocated when it cannot fit in memory.
  const double width = static_cast<double>(encoder.width), ctx = static_cast<double>(encoder.context);
  const double inputs = static_cast<double>(shape.obs_size) * 2.0, outputs = static_cast<double>(shape.state_size);
  const double weights = inputs * width + width * width * static_cast<double>(encoder.depth) + width * ctx +
                         ctx * outputs * 2.0 +
                         static_cast<double>(encoder.channels) * static_cast<double>(encoder.kernel) *
                             static_cast<double>(encoder.channels) * static_cast<double>(encoder.conv_layers);
  limits::check_memory(w, format_message("a network of encoder.width ", encoder.width, " and encoder.context ",
                                         encoder.context, " for ", shape.state_size, " states and ", shape.obs_size,
                                         " observations"),
                       4.0 * 8.0 * weights);
  const HeadRegistration& h = head_registration(head);
  if (h.validate) h.validate(*this);
}

void WindowProblemOptions::validate() const {
  // Named by their configuration keys (problem_entries).
  const char* w = "window problem";
  model.check(w);
  check_at_least(w, "cycling.window_steps", window, 0);
  check_at_least(w, "observations.every_steps", obs_every, 1);
  check_at_least(w, "observations.stride", obs_stride, 1);
  if (obs_first < 0 || obs_first > window) {
    throw InvalidArgument(format_message(w, ": observations.first_step = ", obs_first, " must be in [0, ",
                                         "cycling.window_steps = ", window, "]"));
  }
  if (!(missing >= 0.0 && missing < 1.0)) {
    throw InvalidArgument(format_message(w, ": observations.missing_fraction = ", missing, " must be in [0, 1)"));
  }
  // The two variances are kept as standard deviations.
  const auto positive_sd = [w](const char* key, const char* field, double sd) {
    if (!(sd > 0.0) || !std::isfinite(sd)) {
      throw InvalidArgument(format_message(w, ": ", key, ": standard deviation ", field, " = ", sd, " must be positive"));
    }
  };
  positive_sd("observations.error_variance", "obs_noise", obs_noise);
  check_at_least(w, "truth.spin_up_steps", spinup, 0);
  check_at_least(w, "truth.decorrelation_steps", decorrelation, 1);
  positive_sd("background.variance", "prior_sd", prior_sd);
}

void LabelOptions::validate() const {
  const char* w = "labels";
  check_at_least(w, "pairs", pairs, 0);
  check_at_least(w, "probes", probes, 0);
  if (!(mean_weight >= 0.0 && std::isfinite(mean_weight))) {
    throw InvalidArgument(format_message(w, ": mean_weight = ", mean_weight, " must be finite and >= 0"));
  }
  if (!(jacobian_weight >= 0.0 && std::isfinite(jacobian_weight))) {
    throw InvalidArgument(format_message(w, ": jacobian_weight = ", jacobian_weight, " must be finite and >= 0"));
  }
  if (!(variance_weight >= 0.0 && std::isfinite(variance_weight))) {
    throw InvalidArgument(format_message(w, ": variance_weight = ", variance_weight, " must be finite and >= 0"));
  }
  if (!(step > 0.0 && step <= 0.1)) throw InvalidArgument(format_message(w, ": step = ", step, " must be in (0, 0.1]"));
  if (draws < 2 || draws % 2 != 0) {
    throw InvalidArgument(format_message(w, ": draws = ", draws, " must be even and at least 2 (antithetic pairs)"));
  }
}

// ---- defaults ------------------------------------------------------------------------------------

AmortizedSetup default_setup(const std::string& problem, HeadType head) {
  // The problem's defaults, then the head's own adjustments (fewer mean samples, labels, ...).
  AmortizedSetup s = find_problem(problem).default_setup(head);
  s.network.head = head;
  const HeadRegistration& h = head_registration(head);
  if (h.defaults) h.defaults(problem, s);
  return s;
}

// ---- key/value entries ---------------------------------------------------------------------------

namespace {

std::string num(double v) { return format_message(v); }
std::string num(Index v) { return std::to_string(v); }

double parse_double(const std::string& key, const std::string& v, const std::string& where) {
  try {
    std::size_t used = 0;
    const double d = std::stod(v, &used);
    if (used == v.size()) return d;
  } catch (const std::exception&) {
  }
  throw InvalidArgument(format_message(where, ": ", key, " = '", v, "' is not a number"));
}
Index parse_index(const std::string& key, const std::string& v, const std::string& where) {
  Index out = 0;
  const auto r = std::from_chars(v.data(), v.data() + v.size(), out);
  if (r.ec != std::errc() || r.ptr != v.data() + v.size()) {
    throw InvalidArgument(format_message(where, ": ", key, " = '", v, "' is not an integer"));
  }
  // Sizes and counts: checked against the limit before anything is allocated (lower bounds are
  // checked by the validate() of the options they set).
  limits::check_at_most(where, key, out, limits::kMaxCount);
  return out;
}
std::uint64_t parse_u64(const std::string& key, const std::string& v, const std::string& where) {
  std::uint64_t out = 0;
  const auto r = std::from_chars(v.data(), v.data() + v.size(), out);
  if (r.ec != std::errc() || r.ptr != v.data() + v.size()) {
    throw InvalidArgument(format_message(where, ": ", key, " = '", v, "' is not a non-negative integer"));
  }
  return out;
}
bool parse_bool(const std::string& key, const std::string& v, const std::string& where) {
  if (v == "true" || v == "1" || v == "yes") return true;
  if (v == "false" || v == "0" || v == "no") return false;
  throw InvalidArgument(format_message(where, ": ", key, " = '", v, "' is not true or false"));
}

struct Field {
  std::function<std::string(const AmortizedSetup&)> get;
  std::function<void(AmortizedSetup&, const std::string&, const std::string&, const std::string&)> set;
  bool network = false;  // part of AmortizedConfig (stored in model files)
  bool problem = false;  // part of the window problem's definition (problem_entries)
};

// The first key of the window problem after its model section (setup_entries writes the model's
// keys before it).
constexpr const char* kFirstProblemKey = "truth.spin_up_steps";

// A variance key over a standard deviation of WindowProblemOptions: reads v > 0 and keeps sqrt(v).
Field variance_field(double WindowProblemOptions::*sd) {
  return Field{[sd](const AmortizedSetup& s) { return num(s.window_problem.*sd * (s.window_problem.*sd)); },
               [sd](AmortizedSetup& s, const std::string& k, const std::string& v, const std::string& w) {
                 const double variance = parse_double(k, v, w);
                 if (!(variance > 0.0) || !std::isfinite(variance)) {
                   throw InvalidArgument(format_message(w, ": ", k, " = ", variance, " must be positive and finite"));
                 }
                 s.window_problem.*sd = std::sqrt(variance);
               }};
}

// Keys of the lorenz96 problem before it took the shared sections, with their new names; the two
// standard deviations became variances. Refused in configs; translated in stored model files.
struct RenamedKey {
  const char* old_key;
  const char* new_key;
  bool squared;  // the new value is the old one squared
};
constexpr RenamedKey kRenamedKeys[] = {
    {"lorenz96.size", "model.n", false},
    {"lorenz96.forcing", "model.forcing", false},
    {"lorenz96.dt", "model.dt", false},
    {"lorenz96.window", "cycling.window_steps", false},
    {"lorenz96.obs_every", "observations.every_steps", false},
    {"lorenz96.obs_stride", "observations.stride", false},
    {"lorenz96.missing", "observations.missing_fraction", false},
    {"lorenz96.obs_noise", "observations.error_variance", true},
    {"lorenz96.spinup", "truth.spin_up_steps", false},
    {"lorenz96.decorrelation", "truth.decorrelation_steps", false},
    {"lorenz96.prior", "background.prior", false},
    {"lorenz96.prior_sd", "background.variance", true},
    {"lorenz96.prior_seed", "background.seed", false},
};

const RenamedKey* find_renamed(const std::string& key) {
  for (const auto& r : kRenamedKeys) {
    if (key == r.old_key) return &r;
  }
  return nullptr;
}

#define VF_INDEX(expr) \
  Field{[](const AmortizedSetup& s) { return num(s.expr); }, \
        [](AmortizedSetup& s, const std::string& k, const std::string& v, const std::string& w) { s.expr = parse_index(k, v, w); }}
#define VF_DOUBLE(expr) \
  Field{[](const AmortizedSetup& s) { return num(s.expr); }, \
        [](AmortizedSetup& s, const std::string& k, const std::string& v, const std::string& w) { s.expr = parse_double(k, v, w); }}
#define VF_BOOL(expr) \
  Field{[](const AmortizedSetup& s) { return std::string(s.expr ? "true" : "false"); }, \
        [](AmortizedSetup& s, const std::string& k, const std::string& v, const std::string& w) { s.expr = parse_bool(k, v, w); }}
#define VF_ENUM(expr, parser) \
  Field{[](const AmortizedSetup& s) { return to_string(s.expr); }, \
        [](AmortizedSetup& s, const std::string& k, const std::string& v, const std::string&) { s.expr = parser(v, k); }}
#define VF_ACT(expr) \
  Field{[](const AmortizedSetup& s) { return nn::to_string(s.expr); }, \
        [](AmortizedSetup& s, const std::string& k, const std::string& v, const std::string&) { s.expr = nn::activation_from_string(v, k); }}

// Ordered: network keys first (the order of config_text()).
const std::vector<std::pair<std::string, Field>>& fields() {
  static const std::vector<std::pair<std::string, Field>> table = [] {
    std::vector<std::pair<std::string, Field>> f = {
        {"head", VF_ENUM(network.head, head_from_string)},
        {"encoder.type", VF_ENUM(network.encoder.type, encoder_from_string)},
        {"encoder.context", VF_INDEX(network.encoder.context)},
        {"encoder.width", VF_INDEX(network.encoder.width)},
        {"encoder.depth", VF_INDEX(network.encoder.depth)},
        {"encoder.channels", VF_INDEX(network.encoder.channels)},
        {"encoder.conv_layers", VF_INDEX(network.encoder.conv_layers)},
        {"encoder.kernel", VF_INDEX(network.encoder.kernel)},
        {"encoder.activation", VF_ACT(network.encoder.activation)},
        {"encoder.linear_skip", VF_BOOL(network.encoder.linear_skip)},
        {"encoder.gain_channel", VF_BOOL(network.encoder.gain_channel)},
        {"flow.layers", VF_INDEX(network.flow.layers)},
        {"flow.coupling", VF_ENUM(network.flow.coupling, coupling_from_string)},
        {"flow.bins", VF_INDEX(network.flow.bins)},
        {"flow.bound", VF_DOUBLE(network.flow.bound)},
        {"flow.affine_clamp", VF_DOUBLE(network.flow.affine_clamp)},
        {"flow.actnorm", VF_BOOL(network.flow.actnorm)},
        {"flow.width", VF_INDEX(network.flow.width)},
        {"flow.depth", VF_INDEX(network.flow.depth)},
        {"flow.activation", VF_ACT(network.flow.activation)},
        {"score.sde", VF_ENUM(network.score.sde, sde_from_string)},
        {"score.beta_min", VF_DOUBLE(network.score.beta_min)},
        {"score.beta_max", VF_DOUBLE(network.score.beta_max)},
        {"score.sigma_min", VF_DOUBLE(network.score.sigma_min)},
        {"score.sigma_max", VF_DOUBLE(network.score.sigma_max)},
        {"score.t_min", VF_DOUBLE(network.score.t_min)},
        {"score.log_sigma_fraction", VF_DOUBLE(network.score.log_sigma_fraction)},
        {"score.width", VF_INDEX(network.score.width)},
        {"score.blocks", VF_INDEX(network.score.blocks)},
        {"score.time_features", VF_INDEX(network.score.time_features)},
        {"score.backbone", VF_ENUM(network.score.backbone, score_backbone_from_string)},
        {"score.sampler", VF_ENUM(network.score.sampler, sampler_from_string)},
        {"score.steps", VF_INDEX(network.score.steps)},
        {"score.grid_power", VF_DOUBLE(network.score.grid_power)},
        {"score.corrector_steps", VF_INDEX(network.score.corrector_steps)},
        {"score.snr", VF_DOUBLE(network.score.snr)},
        {"score.denoise", VF_BOOL(network.score.denoise)},
        {"score.activation", VF_ACT(network.score.activation)},
        {"gaussian.covariance", VF_ENUM(network.gaussian.covariance, covariance_from_string)},
        {"gaussian.width", VF_INDEX(network.gaussian.width)},
        {"gaussian.depth", VF_INDEX(network.gaussian.depth)},
        {"gaussian.activation", VF_ACT(network.gaussian.activation)},
        {"gaussian.linear_skip", VF_BOOL(network.gaussian.linear_skip)},
        {"mean_samples", VF_INDEX(network.mean_samples)},
        {"linear_gain", VF_ENUM(network.linear_gain, linear_gain_from_string)},
        {"mean_seed", Field{[](const AmortizedSetup& s) { return std::to_string(s.network.mean_seed); },
                            [](AmortizedSetup& s, const std::string& k, const std::string& v, const std::string& w) {
                              s.network.mean_seed = parse_u64(k, v, w);
                            }}},
    };
    for (auto& [k, field] : f) field.network = true;
    const std::vector<std::pair<std::string, Field>> rest = {
        {"pairs", VF_INDEX(pairs)},
        {"training.epochs", VF_INDEX(training.epochs)},
        {"training.batch_size", VF_INDEX(training.batch_size)},
        {"training.learning_rate", VF_DOUBLE(training.learning_rate)},
        {"training.schedule", VF_ENUM(training.schedule, nn::schedule_from_string)},
        {"training.plateau_patience", VF_INDEX(training.plateau_patience)},
        {"training.plateau_factor", VF_DOUBLE(training.plateau_factor)},
        {"training.weight_decay", VF_DOUBLE(training.weight_decay)},
        {"training.warmup_fraction", VF_DOUBLE(training.warmup_fraction)},
        {"training.final_lr_fraction", VF_DOUBLE(training.final_lr_fraction)},
        {"training.clip_norm", VF_DOUBLE(training.clip_norm)},
        {"training.validation_fraction", VF_DOUBLE(training.validation_fraction)},
        {"training.patience", VF_INDEX(training.patience)},
        {"training.min_improvement", VF_DOUBLE(training.min_improvement)},
        {"training.min_steps", VF_INDEX(training.min_steps)},
        {"training.max_seconds", VF_DOUBLE(training.max_seconds)},
        {"training.restore_best", VF_BOOL(training.restore_best)},
        {"training.ema_decay", VF_DOUBLE(training.ema_decay)},
        {"training.precision", VF_ENUM(training.precision, nn::product_precision_from_string)},
        {"labels.pairs", VF_INDEX(labels.pairs)},
        {"labels.probes", VF_INDEX(labels.probes)},
        {"labels.mean_weight", VF_DOUBLE(labels.mean_weight)},
        {"labels.jacobian_weight", VF_DOUBLE(labels.jacobian_weight)},
        {"labels.variance_weight", VF_DOUBLE(labels.variance_weight)},
        {"labels.step", VF_DOUBLE(labels.step)},
        {"labels.draws", VF_INDEX(labels.draws)},
    };
    f.insert(f.end(), rest.begin(), rest.end());
    // The window problem, in the sections and units of the experiment configs (design/formats.md):
    // error and prior variances, though WindowProblemOptions keeps standard deviations. The model's
    // keys (model.name and its options) depend on the model: model_entries and apply_model_entry.
    std::vector<std::pair<std::string, Field>> problem = {
        {"truth.spin_up_steps", VF_INDEX(window_problem.spinup)},
        {"truth.decorrelation_steps", VF_INDEX(window_problem.decorrelation)},
        {"observations.every_steps", VF_INDEX(window_problem.obs_every)},
        {"observations.first_step", VF_INDEX(window_problem.obs_first)},
        {"observations.stride", VF_INDEX(window_problem.obs_stride)},
        {"observations.missing_fraction", VF_DOUBLE(window_problem.missing)},
        {"observations.error_variance", variance_field(&WindowProblemOptions::obs_noise)},
        {"background.prior", VF_ENUM(window_problem.prior, window_prior_from_string)},
        {"background.variance", variance_field(&WindowProblemOptions::prior_sd)},
        {"background.seed", Field{[](const AmortizedSetup& s) { return std::to_string(s.window_problem.prior_seed); },
                                  [](AmortizedSetup& s, const std::string& k, const std::string& v, const std::string& w) {
                                    s.window_problem.prior_seed = parse_u64(k, v, w);
                                  }}},
        {"cycling.window_steps", VF_INDEX(window_problem.window)},
    };
    for (auto& [k, field] : problem) field.problem = true;
    f.insert(f.end(), problem.begin(), problem.end());
    return f;
  }();
  return table;
}

#undef VF_INDEX
#undef VF_DOUBLE
#undef VF_BOOL
#undef VF_ENUM
#undef VF_ACT

// The registered option with this key, or null.
const HeadOption* find_head_option(const std::string& key) {
  for (const auto& r : head_registry()) {
    for (const auto& o : r.options) {
      if (o.key == key) return &o;
    }
  }
  return nullptr;
}

// The canonical text of a head option's value; InvalidArgument naming where, key and value when it
// does not parse as the option's kind.
std::string canonical_option(const HeadOption& o, const std::string& value, const std::string& where) {
  switch (o.kind) {
    case HeadOption::Kind::kInteger: return num(parse_index(o.key, value, where));
    case HeadOption::Kind::kNumber: return num(parse_double(o.key, value, where));
    case HeadOption::Kind::kText: return value;
  }
  return value;
}

std::string option_value(const AmortizedConfig& c, const HeadOption& o) {
  const auto it = c.head_options.find(o.key);
  return it == c.head_options.end() ? o.default_value : it->second;
}

// The `model:` section of the window problem: model.name, then the options of that model, in
// registry order.
std::vector<std::pair<std::string, std::string>> model_entries(const ModelSpec& m) {
  std::vector<std::pair<std::string, std::string>> out = {{"model.name", m.name}};
  for (const auto& o : find_model(m.name).options) out.emplace_back("model." + o.key, io::shortest_text(m.parameter(o.key)));
  return out;
}

// Sets a key of the `model:` section; false for any other key. A new model.name starts from that
// model's defaults (the same name keeps the options set so far), so model.name must come first:
// name_first() orders entries that way.
bool apply_model_entry(ModelSpec& m, const std::string& key, const std::string& value, const std::string& where) {
  constexpr std::string_view kPrefix = "model.";
  if (key.compare(0, kPrefix.size(), kPrefix) != 0) return false;
  const std::string option = key.substr(kPrefix.size());
  if (option == "name") {
    find_model(value, where);  // names the registered models when unknown
    if (value != m.name) m = ModelSpec{value, ModelSpec::default_parameters(value)};
  } else {
    m.set(option, value, where);
  }
  return true;
}

// Entries with model.name moved to the front (the rest in their order).
std::vector<std::pair<std::string, std::string>> name_first(std::vector<std::pair<std::string, std::string>> entries) {
  std::stable_partition(entries.begin(), entries.end(), [](const auto& e) { return e.first == "model.name"; });
  return entries;
}

const HeadOption& registered_option(const std::string& key) {
  const HeadOption* o = find_head_option(key);
  if (!o) throw InvalidArgument(format_message("head option '", key, "' is not registered by any head"));
  return *o;
}

}  // namespace

std::string head_option(const AmortizedConfig& c, const std::string& key) {
  return option_value(c, registered_option(key));
}
Index head_option_integer(const AmortizedConfig& c, const std::string& key) {
  return parse_index(key, head_option(c, key), "AmortizedConfig");
}
double head_option_number(const AmortizedConfig& c, const std::string& key) {
  return parse_double(key, head_option(c, key), "AmortizedConfig");
}

std::vector<std::pair<std::string, std::string>> config_entries(const AmortizedConfig& c) {
  AmortizedSetup s;
  s.network = c;
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [key, field] : fields()) {
    if (field.network) out.emplace_back(key, field.get(s));
  }
  // The configured head's options beyond the built-in ones (none for the built-in heads), so that
  // registering a head changes no other model's text.
  for (const auto& r : head_registry()) {
    if (r.name != c.head.name()) continue;
    for (const auto& o : r.options) out.emplace_back(o.key, option_value(c, o));
  }
  return out;
}

void apply_entry(AmortizedSetup& s, const std::string& key, const std::string& value, const std::string& where) {
  if (apply_model_entry(s.window_problem.model, key, value, where)) return;
  for (const auto& [k, field] : fields()) {
    if (k == key) {
      field.set(s, key, value, where);
      return;
    }
  }
  if (const HeadOption* o = find_head_option(key)) {
    s.network.head_options[key] = canonical_option(*o, value, where);
    return;
  }
  if (const RenamedKey* r = find_renamed(key)) {
    throw InvalidArgument(format_message(where, ": key '", key, "' was renamed: use ", r->new_key,
                                         r->squared ? " (a variance: the old standard deviation squared)" : ""));
  }
  throw InvalidArgument(format_message(where, ": unknown key '", key, "'"));
}

void apply_definition(AmortizedSetup& s, const std::vector<std::pair<std::string, std::string>>& definition,
                      const std::string& where) {
  for (const auto& [key, value] : name_first(definition)) {
    const RenamedKey* r = find_renamed(key);
    if (!r) {
      apply_entry(s, key, value, where);
    } else if (r->squared) {
      const double sd = parse_double(key, value, where);
      apply_entry(s, r->new_key, num(sd * sd), where);
    } else {
      apply_entry(s, r->new_key, value, where);
    }
  }
}

bool is_problem_key(const std::string& key) {
  if (key.rfind("model.", 0) == 0) return true;
  for (const auto& [k, field] : fields()) {
    if (k == key) return field.problem;
  }
  return false;
}

bool is_renamed_key(const std::string& key) { return find_renamed(key) != nullptr; }

std::string config_text(const AmortizedConfig& c) {
  std::ostringstream os;
  for (const auto& [k, v] : config_entries(c)) os << k << ": " << v << '\n';
  return os.str();
}

std::string config_hash(const AmortizedConfig& c) { return hex64(fnv1a(config_text(c))); }

std::vector<std::pair<std::string, std::string>> read_setup_entries(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw InvalidArgument(format_message("config ", path, ": cannot be read"));
  std::stringstream text;
  text << in.rdbuf();
  // The strict reader of every config: syntax errors with line and column, duplicate keys refused.
  return io::ConfigReader::parse(text.str(), path).entries();
}

void load_setup_yaml(const std::string& path, AmortizedSetup& s) {
  for (const auto& [key, value] : name_first(read_setup_entries(path))) apply_entry(s, key, value, "config " + path);
  try {
    s.training.validate();
    s.labels.validate();
    s.window_problem.validate();
  } catch (const InvalidArgument& e) {
    throw InvalidArgument(format_message("config ", path, ": ", e.what()));
  }
}

std::string entry_value(const AmortizedSetup& s, const std::string& key) {
  for (const auto& [k, v] : model_entries(s.window_problem.model)) {
    if (k == key) return v;
  }
  for (const auto& [k, field] : fields()) {
    if (k == key) return field.get(s);
  }
  if (const HeadOption* o = find_head_option(key)) return option_value(s.network, *o);
  throw InvalidArgument(format_message("config: unknown key '", key, "'"));
}

std::vector<std::pair<std::string, std::string>> problem_entries(const WindowProblemOptions& o) {
  AmortizedSetup s;
  s.window_problem = o;
  std::vector<std::pair<std::string, std::string>> out = model_entries(o.model);
  for (const auto& [key, field] : fields()) {
    if (field.problem) out.emplace_back(key, field.get(s));
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> setup_entries(const AmortizedSetup& s) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [key, field] : fields()) {
    if (key == kFirstProblemKey) {
      const auto model = model_entries(s.window_problem.model);
      out.insert(out.end(), model.begin(), model.end());
    }
    out.emplace_back(key, field.get(s));
  }
  return out;
}

}  // namespace varflow::amortized
