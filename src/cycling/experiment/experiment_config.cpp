#include "varflow/experiment/experiment_config.h"

#include <cstdio>
#include <limits>
#include <map>
#include <sstream>

#include "varflow/io/config_reader.h"
#include "varflow/core/error.h"
#include "varflow/core/hash.h"
#include "varflow/model/model_registry.h"

namespace varflow {

namespace {

using io::ConfigReader;

// Range checks that name the YAML key.
void require_positive(const ConfigReader& r, const std::string& key, double v) {
  if (!(v > 0.0) || !std::isfinite(v)) {
    throw InvalidArgument(format_message("config: ", r.name(key), " = ", v, " must be positive"));
  }
}
void require_nonnegative(const ConfigReader& r, const std::string& key, double v) {
  if (!(v >= 0.0) || !std::isfinite(v)) {
    throw InvalidArgument(format_message("config: ", r.name(key), " = ", v, " must be non-negative"));
  }
}
const std::vector<std::string> kPosteriorNames = {"none", "inner_lanczos", "dense", "low_rank"};

PosteriorMethod posterior_method(ConfigReader& r, PosteriorMethod fallback, const std::vector<std::string>& allowed) {
  PosteriorMethod m = fallback;
  posterior_method_from_string(r.choice("posterior", to_string(fallback), allowed), &m);
  return m;
}

// The low-rank posterior's Lanczos settings: posterior_rank (k leading eigenpairs) and
// posterior_max_basis (thick-restart basis, 0 = no restart, else >= k + 2).
void read_low_rank(ConfigReader& r, LanczosEigenOptions& o) {
  o.rank = r.count("posterior_rank", o.rank, 1);
  o.max_basis = r.count("posterior_max_basis", o.max_basis, 0);
  if (o.max_basis != 0 && o.max_basis < o.rank + 2) {
    throw InvalidArgument(format_message("config: ", r.name("posterior_max_basis"), " = ", o.max_basis,
                                         " must be 0 (no restart) or at least ", r.name("posterior_rank"), " + 2 = ",
                                         o.rank + 2));
  }
}

void write_low_rank(std::ostream& os, const LanczosEigenOptions& o) {
  os << "  posterior_rank: " << o.rank << "\n"
     << "  posterior_max_basis: " << o.max_basis << "\n";
}

void read_gauss_newton(ConfigReader& r, GaussNewtonOptions& o) {
  o.max_outer_iterations = static_cast<int>(r.count("max_outer_iterations", o.max_outer_iterations, 1));
  o.max_inner_iterations = static_cast<int>(r.count("max_inner_iterations", o.max_inner_iterations, 1));
  o.inner_tolerance = r.real("inner_tolerance", o.inner_tolerance);
  require_positive(r, "inner_tolerance", o.inner_tolerance);
  o.gradient_tolerance = r.real("gradient_tolerance", o.gradient_tolerance);
  require_positive(r, "gradient_tolerance", o.gradient_tolerance);
  OuterHessian hessian = o.hessian;
  outer_hessian_from_string(r.choice("hessian", to_string(o.hessian), {"gauss_newton", "newton"}), &hessian);
  o.hessian = hessian;
  o.posterior = posterior_method(r, o.posterior, kPosteriorNames);
  o.posterior_lanczos_vectors = r.count("posterior_lanczos_vectors", o.posterior_lanczos_vectors, 0);
  read_low_rank(r, o.low_rank);
}

void write_gauss_newton(std::ostream& os, const GaussNewtonOptions& o) {
  os << "  max_outer_iterations: " << o.max_outer_iterations << "\n"
     << "  max_inner_iterations: " << o.max_inner_iterations << "\n"
     << "  inner_tolerance: " << o.inner_tolerance << "\n"
     << "  gradient_tolerance: " << o.gradient_tolerance << "\n"
     << "  hessian: " << to_string(o.hessian) << "\n"
     << "  posterior: " << to_string(o.posterior) << "\n"
     << "  posterior_lanczos_vectors: " << o.posterior_lanczos_vectors << "\n";
  write_low_rank(os, o.low_rank);
}

void apply_model_defaults(ExperimentConfig& c) {
  c.experiment.model = c.model.make();
  // Newton outer loops need second-order adjoints; a model without them defaults to Gauss-Newton.
  c.experiment.incremental.hessian =
      c.experiment.model->has_second_order() ? OuterHessian::kNewton : OuterHessian::kGaussNewton;
  // The rest state perturbed at one point, when the model has one: spin-up takes it onto the
  // attractor. Otherwise the twin experiment starts from ones(n) + 0.01 N(0, I).
  c.experiment.truth_start = c.model.rest_state();
  if (c.experiment.truth_start.size() > 0) c.experiment.truth_start[c.experiment.truth_start.size() / 2 - 1] += 0.01;
}

}  // namespace

std::string config_hash(const std::string& text) { return hex64(fnv1a(text)); }

ExperimentConfig default_experiment_config() {
  ExperimentConfig c;
  c.experiment = default_twin_experiment_config();
  apply_model_defaults(c);
  return c;
}

ExperimentConfig parse_experiment_config(const std::string& yaml, const std::string& source) {
  ExperimentConfig c = default_experiment_config();
  c.text = yaml;
  TwinExperimentConfig& e = c.experiment;
  ConfigReader root = ConfigReader::parse(yaml, source);

  ConfigReader m = root.section("model");
  c.model = ModelSpec::read(m, c.model);
  m.finish();
  apply_model_defaults(c);
  const Index n = e.model->state_size();

  ConfigReader t = root.section("truth");
  e.spin_up_steps = t.count("spin_up_steps", e.spin_up_steps, 0);
  t.finish();

  ConfigReader o = root.section("observations");
  e.observed_variables.clear();
  if (o.is_list("variables")) {
    const std::vector<long long> v = o.integers("variables", {});
    std::map<long long, std::size_t> first_index;  // variable -> its first position in the list
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (v[i] < 0 || v[i] >= n) {
        throw InvalidArgument(format_message("config: ", o.name("variables"), "[", i, "] = ", v[i],
                                             " is outside [0, ", n, ")"));
      }
      const auto [it, inserted] = first_index.emplace(v[i], i);
      if (!inserted) {
        throw InvalidArgument(format_message("config: ", o.name("variables"), "[", i, "] = ", v[i], " repeats ",
                                             o.name("variables"), "[", it->second, "] (each variable is observed once)"));
      }
      e.observed_variables.push_back(static_cast<Index>(v[i]));
    }
    if (v.empty()) throw InvalidArgument(format_message("config: ", o.name("variables"), " is an empty list"));
  } else {
    o.choice("variables", "all", {"all"});
  }
  e.obs_every_steps = o.count("every_steps", e.obs_every_steps, 1);
  e.obs_error_variance = o.real("error_variance", e.obs_error_variance);
  require_positive(o, "error_variance", e.obs_error_variance);
  c.non_finite_observations =
      o.choice("non_finite", "reject", {"reject", "mask"}) == "mask" ? NonFiniteObservations::kMask
                                                                      : NonFiniteObservations::kReject;
  o.finish();

  ConfigReader b = root.section("background");
  BackgroundCovarianceType bt = e.b_type;
  background_covariance_type_from_string(
      b.choice("covariance", to_string(e.b_type), {"scaled_identity", "periodic_gaussian", "climatological"}), &bt);
  e.b_type = bt;
  e.b_variance = b.real("variance", e.b_variance);
  require_positive(b, "variance", e.b_variance);
  if (e.b_type == BackgroundCovarianceType::kPeriodicGaussian) {
    e.b_length_scale = b.real("length_scale", e.b_length_scale);
    require_positive(b, "length_scale", e.b_length_scale);
    e.b_nugget = b.real("nugget", e.b_nugget);
    if (!(e.b_nugget >= 0.0 && e.b_nugget < 1.0)) {
      throw InvalidArgument(format_message("config: ", b.name("nugget"), " = ", e.b_nugget, " must be in [0, 1)"));
    }
  }
  if (e.b_type == BackgroundCovarianceType::kClimatological) {
    e.climatology_steps = b.count("climatology_steps", e.climatology_steps, 2 * n);
  }
  e.b_hybrid_weight = b.real("hybrid_weight", e.b_hybrid_weight);
  if (!(e.b_hybrid_weight >= 0.0 && e.b_hybrid_weight < 1.0)) {
    throw InvalidArgument(format_message("config: ", b.name("hybrid_weight"), " = ", e.b_hybrid_weight,
                                         " must be in [0, 1)"));
  }
  e.b_inflation = b.real("inflation", e.b_inflation);
  require_positive(b, "inflation", e.b_inflation);
  e.initial_background_std = b.real("initial_error_std", e.initial_background_std);
  require_nonnegative(b, "initial_error_std", e.initial_background_std);
  b.finish();

  ConfigReader cy = root.section("cycling");
  e.window_steps = cy.count("window_steps", e.window_steps, 0);
  // Absent: back-to-back windows (the shift is the window), as before overlapping windows existed.
  e.shift_steps = cy.count("shift_steps", e.window_steps, 1);
  ObservationSelection selection = e.assimilate;
  observation_selection_from_string(cy.choice("assimilate", to_string(e.assimilate), {"new", "all", "newest"}),
                                    &selection);
  e.assimilate = selection;
  e.cycles = cy.count("cycles", e.cycles, 1);
  e.burn_in = cy.count("burn_in", std::min<Index>(e.burn_in, e.cycles - 1), 0);
  if (e.burn_in >= e.cycles) {
    throw InvalidArgument(format_message("config: cycling.burn_in = ", e.burn_in, " must be less than cycling.cycles = ",
                                         e.cycles));
  }
  const long long seed = cy.count("seed", static_cast<long long>(e.seed), 0, std::numeric_limits<long long>::max());
  e.seed = static_cast<std::uint64_t>(seed);
  cy.finish();

  VarMethod method = e.method;
  var_method_from_string(root.choice("method", to_string(e.method), {"strong_4dvar", "incremental_4dvar", "weak_4dvar", "3dvar"}),
                         &method);
  e.method = method;
  if (e.method == VarMethod::k3DVar && e.window_steps != 0) {
    throw InvalidArgument(format_message(
        "config: ", cy.name("window_steps"), " = ", e.window_steps,
        " must be 0 for method 3dvar: windows now hold the observations at both of their ends, so a 3D-Var ",
        "window is one time; for 3D-Var every ", e.window_steps, " steps write window_steps: 0 and shift_steps: ",
        e.window_steps));
  }

  ConfigReader am = root.section("amortized");
  e.amortized.model = am.text("model", e.amortized.model);
  e.amortized.check_sigmas = am.real("check_sigmas", e.amortized.check_sigmas);
  require_positive(am, "check_sigmas", e.amortized.check_sigmas);
  e.amortized.draws = am.count("draws", e.amortized.draws, 2);
  e.amortized.validation = am.text("validation", e.amortized.validation);
  if (!e.amortized.validation.empty() && e.amortized.model.empty()) {
    throw InvalidArgument(format_message("config: ", am.name("validation"), " = '", e.amortized.validation,
                                         "' needs ", am.name("model"), ", the model it validates"));
  }
  am.finish();

  ConfigReader s = root.section("strong");
  e.strong.max_iterations = static_cast<int>(s.count("max_iterations", e.strong.max_iterations, 1));
  e.strong.gradient_tolerance = s.real("gradient_tolerance", e.strong.gradient_tolerance);
  require_positive(s, "gradient_tolerance", e.strong.gradient_tolerance);
  e.strong.posterior = posterior_method(s, e.strong.posterior, {"none", "dense", "low_rank"});
  read_low_rank(s, e.strong.low_rank);
  s.finish();

  ConfigReader inc = root.section("incremental");
  read_gauss_newton(inc, e.incremental);
  inc.finish();

  ConfigReader wk = root.section("weak");
  read_gauss_newton(wk, e.weak);
  e.weak.subwindow_steps = wk.count("subwindow_steps", e.weak.subwindow_steps, 1);
  e.model_error_variance = wk.real("model_error_variance", e.model_error_variance);
  require_positive(wk, "model_error_variance", e.model_error_variance);
  wk.finish();

  root.finish();
  e.validate();
  return c;
}

std::string to_yaml(const ExperimentConfig& c) {
  const TwinExperimentConfig& e = c.experiment;
  std::ostringstream os;
  os.precision(12);
  os << "model:\n" << c.model.yaml(2);
  os << "truth:\n  spin_up_steps: " << e.spin_up_steps << "\n";
  os << "observations:\n  variables: ";
  if (e.observed_variables.empty()) {
    os << "all\n";
  } else {
    os << "[";
    for (std::size_t i = 0; i < e.observed_variables.size(); ++i) os << (i ? ", " : "") << e.observed_variables[i];
    os << "]\n";
  }
  os << "  every_steps: " << e.obs_every_steps << "\n  error_variance: " << e.obs_error_variance << "\n"
     << "  non_finite: " << (c.non_finite_observations == NonFiniteObservations::kMask ? "mask" : "reject") << "\n";
  os << "background:\n  covariance: " << to_string(e.b_type) << "\n  variance: " << e.b_variance << "\n";
  if (e.b_type == BackgroundCovarianceType::kPeriodicGaussian) {
    os << "  length_scale: " << e.b_length_scale << "\n  nugget: " << e.b_nugget << "\n";
  }
  if (e.b_type == BackgroundCovarianceType::kClimatological) {
    os << "  climatology_steps: " << e.climatology_steps << "\n";
  }
  os << "  hybrid_weight: " << e.b_hybrid_weight << "\n  inflation: " << e.b_inflation << "\n";
  os << "  initial_error_std: " << e.initial_background_std << "\n";
  os << "cycling:\n  window_steps: " << e.window_steps << "\n  shift_steps: " << e.shift()
     << "\n  assimilate: " << to_string(e.assimilate) << "\n  cycles: " << e.cycles << "\n  burn_in: " << e.burn_in
     << "\n  seed: " << e.seed << "\n";
  os << "method: " << to_string(e.method) << "\n";
  if (!e.amortized.model.empty()) {
    os << "amortized:\n  model: " << e.amortized.model << "\n  check_sigmas: " << e.amortized.check_sigmas
       << "\n  draws: " << e.amortized.draws << "\n";
    if (!e.amortized.validation.empty()) os << "  validation: " << e.amortized.validation << "\n";
  }
  os << "strong:\n  max_iterations: " << e.strong.max_iterations << "\n  gradient_tolerance: "
     << e.strong.gradient_tolerance << "\n  posterior: " << to_string(e.strong.posterior) << "\n";
  write_low_rank(os, e.strong.low_rank);
  os << "incremental:\n";
  write_gauss_newton(os, e.incremental);
  os << "weak:\n";
  write_gauss_newton(os, e.weak);
  os << "  subwindow_steps: " << e.weak.subwindow_steps << "\n  model_error_variance: " << e.model_error_variance << "\n";
  return os.str();
}

std::string default_experiment_yaml() {
  return "# varflow experiment config (the built-in default). Keys and units: design/formats.md.\n"
         "# model.name, with its keys:\n" + model_catalogue("#   ") +
         "# observations.variables: all, or a list of state indices; non_finite: reject | mask\n"
         "# background.covariance: scaled_identity | periodic_gaussian (adds length_scale, nugget) |\n"
         "#   climatological (B = variance x the sample covariance of a free run; adds climatology_steps)\n"
         "# background.hybrid_weight w in [0, 1): B = (1 - w) B + w inflation^2 M P_a M^T, the previous\n"
         "#   posterior propagated over the shift (0: static B; needs a posterior)\n"
         "# cycling: windows of window_steps (0: one time, 3dvar) every shift_steps; assimilate: new (each\n"
         "#   observation once) | all (every observation in the window, both ends) | newest (the latest only)\n"
         "# method: strong_4dvar | incremental_4dvar | weak_4dvar | 3dvar\n"
         "# amortized: model: <file of varflow train, background.prior: background> makes each cycle's analysis\n"
         "#   that model's mean; a cycle falls back to `method` when 2 J(x_a) > m + check_sigmas sqrt(2 m) (4),\n"
         "#   its output is not finite or its observations are not the model's; draws (200) for the spread;\n"
         "#   validation: the model's report.json of varflow validate (the run is refused unless it passed)\n"
         "# posterior: none | inner_lanczos | dense | low_rank (strong: none | dense | low_rank); low_rank takes the\n"
         "#   posterior_rank leading eigenpairs, in a thick-restarted basis of posterior_max_basis vectors (0: no restart)\n"
         "# hessian: gauss_newton | newton (full Hessian by second-order adjoints; Gauss-Newton on negative curvature)\n" +
         to_yaml(default_experiment_config());
}

}  // namespace varflow
