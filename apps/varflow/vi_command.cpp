// `varflow vi`: per-event variational inference. A normalizing flow q(x_0) is fitted by the ELBO to the
// posterior of the first window of an experiment config, whose unnormalised log density is the
// negative strong-constraint 4D-Var cost -J(x_0) (one forward run and one adjoint sweep per draw), so
// it runs for every model and observation operator with an adjoint. The 4D-Var MAP and its Laplace
// posterior are computed beside it for comparison (design/amortized.md, "Variational inference").
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include "command.h"
#include "varflow/core/error.h"
#include "varflow/experiment/experiment_config.h"
#include "varflow/experiment/experiment_io.h"
#include "varflow/experiment/twin_experiment.h"
#include "varflow/io/atomic_file.h"
#include "varflow/io/netcdf_file.h"
#include "varflow/io/provenance.h"
#include "varflow/io/run_lock.h"
#include "varflow/nn/trainer.h"
#include "varflow/var/incremental_4dvar.h"
#include "varflow/version.h"
#include "varflow/obs/operators.h"
#include "varflow/vi/conditioner.h"
#include "varflow/vi/elbo.h"
#include "varflow/vi/flow.h"

namespace varflow::cli {

namespace {

struct ViOptions {
  std::string config, obs, background, out;
  long long seed = -1;
  std::string flow = "iaf", estimator = "reparameterised", transformer = "spline";
  Index layers = 4, hidden = 32, bins = 8, mixture = 0;
  Index draws = 64, epochs = 40, steps_per_epoch = 25, samples = 2000;
  double learning_rate = 5e-3;
  int threads = 0;
  bool quiet = false;
};


double rms(const Vector& v) { return std::sqrt(v.squaredNorm() / static_cast<double>(v.size())); }

int run_vi(const ViOptions& o) {
  if (o.out.empty()) throw InvalidArgument("--out is required (the samples file to write)");
  if (o.threads > 0) nn::set_thread_count(o.threads);
  ExperimentConfig c = load_experiment_config(o.config);
  if (o.seed >= 0) c.experiment.seed = static_cast<std::uint64_t>(o.seed);
  TwinExperimentConfig& e = c.experiment;
  vi::FlowSpec spec;
  spec.direction = vi::flow_direction_from_string(o.flow, "--flow");
  spec.layers = o.layers;
  spec.mixture_components = o.mixture;
  spec.autoregressive.transformer = vi::transformer_from_string(o.transformer, "--transformer");
  spec.autoregressive.hidden = {o.hidden, o.hidden};
  spec.autoregressive.spline.bins = o.bins;
  with_prefix("--flow options", [&] { spec.validate(); });
  vi::ElboOptions eo;
  eo.estimator = vi::elbo_estimator_from_string(o.estimator, "--estimator");
  eo.draws = o.draws;
  eo.steps_per_epoch = o.steps_per_epoch;
  eo.training.epochs = o.epochs;
  eo.training.learning_rate = o.learning_rate;
  eo.validate();
  set_run_config(c.text, e.seed);
  { AtomicOutput probe(o.out); }
  const RunLock lock(o.out, RunLock::Kind::kFile);
  const Index n = e.model->state_size();
  std::printf("varflow %s vi: %s, the first window (%lld steps) as -J, seed %llu\n", VARFLOW_VERSION_STRING,
              e.model->name().c_str(), static_cast<long long>(e.window_steps),
              static_cast<unsigned long long>(e.seed));
  TwinData data;
  if (!o.obs.empty()) {
    data = read_twin_data(o.obs, n, e.total_steps(), c.non_finite_observations);
  } else {
    data = simulate_twin_data(e);
  }
  if (!o.background.empty()) data.initial_background = read_background(o.background, n);
  if (data.initial_background.size() == 0) {
    throw InvalidArgument(format_message("--obs ", o.obs, " has no initial_background: give --background FILE"));
  }
  const AssimilationWindow window = first_window(e, data);
  const FourDVarCost cost(window);
  const vi::FourDVarLogDensity target(cost);

  // The oracle beside it: incremental 4D-Var MAP and its Laplace posterior.
  SolverSummary summary;
  const VarResult map = IncrementalFourDVar(e.incremental).solve(window, &summary);
  const bool have_laplace = map.posterior != nullptr && map.analysis.allFinite();
  std::printf("  4D-Var: %s, J = %.6g after %d iterations%s\n", to_string(summary.termination_type).c_str(),
              summary.final_cost, summary.iterations, have_laplace ? "" : " (no Laplace posterior)");

  Rng rng(e.seed);
  vi::ElementwiseAffine* affine = nullptr;
  auto flow = vi::make_flow(n, spec, &affine);
  flow->initialize(rng);
  // Start q at the Laplace posterior's mean and marginal sd (the background and B's otherwise).
  const Vector start_mean = have_laplace ? map.analysis : window.background;
  Vector start_sd(n);
  if (have_laplace) {
    start_sd = map.posterior->marginal_std();
  } else {
    for (Index i = 0; i < n; ++i) start_sd[i] = std::sqrt(window.b->dense()(i, i));
  }
  affine->set(start_mean, start_sd);
  std::printf("  flow: %s\n  ELBO (%s), %lld draws x %lld steps x %lld epochs, started at the %s\n",
              flow->describe().c_str(), to_string(eo.estimator).c_str(), static_cast<long long>(eo.draws),
              static_cast<long long>(eo.steps_per_epoch), static_cast<long long>(eo.training.epochs),
              have_laplace ? "Laplace posterior" : "background");
  std::fflush(stdout);
  const vi::ElboSummary s =
      vi::fit_elbo(*flow, target, eo, rng, o.quiet ? nn::ProgressCallback{} : nn::log_every_tenth(std::cerr, "  "));
  if (!s.ok()) {
    std::fprintf(stderr, "varflow vi: numerical failure: %s\n",
                 s.training.ok() ? "the fitted flow gives non-finite draws or densities" : s.training.message.c_str());
    return 1;
  }
  const Matrix draws = vi::sample_flow(*flow, o.samples, rng);
  const Vector mean = draws.rowwise().mean();
  const Vector sd = ((draws.colwise() - mean).array().square().rowwise().sum() / static_cast<double>(o.samples - 1)).sqrt().matrix();
  std::printf("  %s\n", s.brief_report().c_str());
  if (have_laplace) {
    const Vector lsd = map.posterior->marginal_std();
    std::printf("  VI vs Laplace: rms (mean - MAP) / Laplace sd = %.3f; sd / Laplace sd in [%.3f, %.3f]\n",
                rms(((mean - map.analysis).array() / lsd.array()).matrix()), (sd.array() / lsd.array()).minCoeff(),
                (sd.array() / lsd.array()).maxCoeff());
  }
  if (!data.truth.empty()) {
    const Vector& truth = data.truth.front();
    std::printf("  RMSE to the truth at the window start: VI mean %.4f, MAP %.4f, background %.4f\n",
                rms(mean - truth), rms(map.analysis - truth), rms(window.background - truth));
  }
  NetcdfWriter f(o.out);
  f.attribute("title", std::string("variational posterior of the first window of a varflow experiment"));
  f.attribute("varflow_file_type", std::string("varflow_vi_samples"));  // design/formats.md
  f.attribute("format_version", 1);
  f.attribute("flow", flow->describe());
  f.attribute("estimator", to_string(eo.estimator));
  f.attribute("elbo", s.evaluation.elbo);
  f.attribute("elbo_standard_error", s.evaluation.elbo_standard_error);
  f.attribute("is_log_evidence", s.evaluation.log_evidence);
  f.attribute("is_effective_sample_fraction", s.evaluation.ess_fraction);
  f.attribute("seed", static_cast<std::uint64_t>(e.seed));
  f.add_dimension("sample", draws.cols());
  f.add_dimension("state", n);
  f.write("samples", "sample", "state", draws, "draws of x at the window start from the fitted flow, one per row");
  f.write("mean", "state", mean, "mean of the draws");
  f.write("std", "state", sd, "standard deviation of the draws");
  f.write("map", "state", map.analysis, "4D-Var MAP (incremental 4D-Var)");
  if (have_laplace) f.write("laplace_std", "state", map.posterior->marginal_std(), "Laplace posterior marginal sd");
  if (!data.truth.empty()) f.write("truth", "state", data.truth.front(), "truth at the window start");
  f.commit();
  std::printf("  wrote %s (%lld draws)\n", o.out.c_str(), static_cast<long long>(o.samples));
  return 0;
}


struct ConditionOptions {
  std::string prior_samples, variable = "samples", out, estimator = "forward-kl";
  std::vector<Index> observe;
  std::vector<double> values;
  double sigma = 0.1, sigma_start = 1.0;
  long long seed = 1;
  Index prior_layers = 4, prior_epochs = 20, hidden = 32, bins = 8;
  Index layers = 3, stages = 1, epochs = 16, draws = 128, steps_per_epoch = 25, samples = 2000;
  Index reference_draws = 100000, refine_epochs = 0;
  int threads = 0;
  bool quiet = false;
};

// `varflow vi condition`: trains a flow prior on states, conditions it on observed values of some of
// its variables (Whang, Lindgren & Dimakis 2021; vi/conditioner.h) and checks the result against the
// importance-weighted reference of the same smoothed conditional.
int run_vi_condition(const ConditionOptions& o) {
  if (o.threads > 0) nn::set_thread_count(o.threads);
  if (o.observe.size() != o.values.size()) {
    throw InvalidArgument(format_message("--values has ", o.values.size(), " values for ", o.observe.size(),
                                         " indices of --observe (one value per observed index)"));
  }
  vi::ElboEstimator estimator = vi::elbo_estimator_from_string(o.estimator, "--estimator");
  if (o.stages > 1 && o.sigma_start < o.sigma) {
    throw InvalidArgument(format_message("--sigma-start = ", o.sigma_start, " is below --sigma = ", o.sigma));
  }
  const NetcdfReader in(o.prior_samples, "--prior-samples " + o.prior_samples);
  if (!in.has_variable(o.variable)) {
    throw InvalidArgument(format_message("--variable = '", o.variable, "' is not a variable of --prior-samples ",
                                         o.prior_samples));
  }
  const Matrix data = in.read_matrix(o.variable);  // state x sample
  const Index n = data.rows();
  if (!data.allFinite()) throw InvalidArgument(format_message("--prior-samples ", o.prior_samples, ": '", o.variable, "' has non-finite values"));
  if (data.cols() < 20) {
    throw InvalidArgument(format_message("--prior-samples ", o.prior_samples, ": '", o.variable, "' has ", data.cols(),
                                         " samples (at least 20 are needed to train a prior)"));
  }
  for (const Index i : o.observe) {
    if (i < 0 || i >= n) throw InvalidArgument(format_message("--observe: index = ", i, " is outside [0, ", n, ")"));
  }
  for (const double v : o.values) {
    if (!std::isfinite(v)) throw InvalidArgument(format_message("--values: value = ", v, " is not finite"));
  }
  // The prior is trained in standardised coordinates (per-variable mean and sd of the states); the
  // observation operator and values are mapped to them, the draws back.
  const Vector mean = data.rowwise().mean();
  const Vector sd = ((data.colwise() - mean).array().square().rowwise().sum() / static_cast<double>(data.cols() - 1))
                        .sqrt()
                        .matrix();
  for (Index i = 0; i < n; ++i) {
    if (!(sd[i] > 0.0)) {
      throw InvalidArgument(format_message("--prior-samples ", o.prior_samples, ": state ", i, " of '", o.variable,
                                           "' has sd = ", sd[i], " (a constant variable has no density to learn)"));
    }
  }
  { AtomicOutput probe(o.out); }
  const RunLock lock(o.out, RunLock::Kind::kFile);
  std::printf("varflow %s vi condition: a flow prior on %lld states of %lld variables, conditioned on %zu of them, "
              "sigma %g, seed %lld\n",
              VARFLOW_VERSION_STRING, static_cast<long long>(data.cols()), static_cast<long long>(n),
              o.observe.size(), o.sigma, o.seed);
  Rng rng(static_cast<std::uint64_t>(o.seed));
  const Matrix standardised = ((data.colwise() - mean).array().colwise() / sd.array()).matrix();
  vi::FlowSpec prior_spec;
  prior_spec.direction = vi::FlowDirection::kMaf;
  prior_spec.layers = o.prior_layers;
  prior_spec.autoregressive.hidden = {o.hidden, o.hidden};
  prior_spec.autoregressive.spline.bins = o.bins;
  auto prior = vi::make_flow(n, prior_spec);
  prior->initialize(rng);
  nn::TrainingOptions t;
  t.epochs = o.prior_epochs;
  t.batch_size = std::min<Index>(128, std::max<Index>(2, data.cols() / 10));
  t.learning_rate = 5e-3;
  t.schedule = nn::LearningRateSchedule::kCosine;
  t.patience = 0;
  const auto progress = o.quiet ? nn::ProgressCallback{} : nn::log_every_tenth(std::cerr, "  ");
  const nn::TrainingSummary ps = vi::fit_density(*prior, standardised, t, rng, progress);
  std::printf("  prior (maximum likelihood): %s\n", ps.brief_report().c_str());
  if (!ps.ok()) {
    std::fprintf(stderr, "varflow vi condition: numerical failure training the prior: %s\n", ps.message.c_str());
    return 1;
  }
  const Index m = static_cast<Index>(o.observe.size());
  Vector y(m);
  Vector sd_obs(m);
  for (Index k = 0; k < m; ++k) {
    const Index i = o.observe[static_cast<std::size_t>(k)];
    y[k] = (o.values[static_cast<std::size_t>(k)] - mean[i]) / sd[i];
    sd_obs[k] = sd[i];
  }
  // One sigma in the variables' units for every observation: per observed variable sigma / sd_i in
  // standardised units, i.e. a subset operator scaled by sd_i / sigma against a unit sigma.
  Matrix h = Matrix::Zero(m, n);
  for (Index k = 0; k < m; ++k) h(k, o.observe[static_cast<std::size_t>(k)]) = sd_obs[k] / o.sigma;
  const Vector y_scaled = (y.array() * sd_obs.array() / o.sigma).matrix();
  const auto op = std::make_shared<LinearObservation>(h);

  vi::FlowSpec q_spec;
  q_spec.direction = vi::FlowDirection::kIaf;
  q_spec.layers = o.layers;
  q_spec.autoregressive.hidden = {o.hidden, o.hidden};
  q_spec.autoregressive.spline.bins = o.bins;
  auto q = vi::make_flow(n, q_spec);
  q->initialize(rng);  // the identity: q = N(0, I), the prior in its base space
  vi::ConditionerOptions co;
  co.elbo.estimator = estimator;
  co.elbo.draws = o.draws;
  co.elbo.steps_per_epoch = o.steps_per_epoch;
  co.elbo.training.epochs = o.epochs;
  co.stages = o.stages;
  co.refine_epochs = o.refine_epochs;
  co.sigma_start = o.sigma_start / o.sigma;  // in units of the target sigma (the target sigma is 1 here)
  with_prefix("conditioner options", [&] { co.validate(); });
  const vi::ConditionerSummary cs = vi::fit_conditioner(*q, *prior, op, y_scaled, 1.0, co, rng, progress);
  if (!cs.ok()) {
    std::fprintf(stderr, "varflow vi condition: numerical failure: %s\n", cs.brief_report().c_str());
    return 1;
  }
  std::printf("  pre-generator (%zu stage(s), the last at --sigma): %s\n", cs.stages.size(),
              cs.stages.back().brief_report().c_str());
  const vi::ComposedConditional target(*prior, op, y_scaled, 1.0);
  auto to_data = [&](const Matrix& x) { return Matrix(((x.array().colwise() * sd.array()).colwise() + mean.array()).matrix()); };
  const Matrix draws = to_data(target.push(vi::sample_flow(*q, o.samples, rng)));
  // Reference: prior-flow draws weighted by the smoothed likelihood.
  Matrix zr(n, o.reference_draws);
  for (Index j = 0; j < zr.cols(); ++j) zr.col(j) = rng.normal_vector(n);
  const Matrix xr = to_data(target.push(zr));
  Vector lw(xr.cols());
  for (Index j = 0; j < xr.cols(); ++j) {
    double r2 = 0.0;
    for (Index k = 0; k < m; ++k) r2 += std::pow((xr(o.observe[static_cast<std::size_t>(k)], j) - o.values[static_cast<std::size_t>(k)]) / o.sigma, 2);
    lw[j] = -0.5 * r2;
  }
  Vector w = (lw.array() - lw.maxCoeff()).exp().matrix();
  const double ess = w.sum() * w.sum() / w.squaredNorm();
  w /= w.sum();
  const Vector ref_mean = xr * w;
  const Vector ref_sd = ((xr.colwise() - ref_mean).array().square().matrix() * w).cwiseSqrt();
  const Vector q_mean = draws.rowwise().mean();
  const Vector q_sd = ((draws.colwise() - q_mean).array().square().rowwise().sum() / static_cast<double>(o.samples - 1)).sqrt().matrix();
  std::printf("  reference (%lld prior-flow draws weighted by the smoothed likelihood, effective size %.0f):\n"
              "    max |mean - reference| / reference sd = %.3f; sd / reference sd in [%.3f, %.3f]\n",
              static_cast<long long>(o.reference_draws), ess,
              ((q_mean - ref_mean).array() / ref_sd.array()).abs().maxCoeff(), (q_sd.array() / ref_sd.array()).minCoeff(),
              (q_sd.array() / ref_sd.array()).maxCoeff());
  NetcdfWriter f(o.out);
  f.attribute("title", std::string("flow prior conditioned on observations by a pre-generator (composed flows)"));
  f.attribute("varflow_file_type", std::string("varflow_vi_samples"));  // design/formats.md
  f.attribute("format_version", 1);
  f.attribute("prior_samples", o.prior_samples);
  f.attribute("prior_flow", prior->describe());
  f.attribute("pre_generator", q->describe());
  f.attribute("estimator", to_string(estimator));
  f.attribute("sigma", o.sigma);
  f.attribute("elbo", cs.evaluation().elbo);
  f.attribute("is_effective_sample_fraction", cs.evaluation().ess_fraction);
  f.attribute("reference_effective_size", ess);
  f.attribute("seed", static_cast<std::uint64_t>(o.seed));
  f.add_dimension("sample", draws.cols());
  f.add_dimension("state", n);
  f.write("samples", "sample", "state", draws, "draws of the conditioned flow prior, one per row");
  f.write("mean", "state", q_mean, "mean of the draws");
  f.write("std", "state", q_sd, "standard deviation of the draws");
  f.write("reference_mean", "state", ref_mean, "mean of the importance-weighted reference");
  f.write("reference_std", "state", ref_sd, "standard deviation of the importance-weighted reference");
  f.write("prior_mean", "state", mean, "mean of the prior states");
  f.commit();
  std::printf("  wrote %s (%lld draws)\n", o.out.c_str(), static_cast<long long>(o.samples));
  return 0;
}

void add_vi_condition_command(CLI::App& vi, CommandList& commands) {
  auto o = std::make_shared<ConditionOptions>();
  auto* sub = vi.add_subcommand(
      "condition", "Condition a flow prior trained on states on observed values of some of its variables");
  sub->footer(
      "Composed flows (Whang, Lindgren & Dimakis 2021). A MAF flow prior p(x) = f#N(0, I) is trained by\n"
      "maximum likelihood on the states of --prior-samples (variable --variable, dimensions (sample, state);\n"
      "a `varflow vi` samples file, or climatology states), standardised per variable. Observing the\n"
      "variables --observe at --values with Gaussian smoothing --sigma (in the variables' units), an IAF\n"
      "pre-generator q(z), started at the identity (q = the prior in its base space), is fitted to\n"
      "    N(z; 0, I) exp(-||H f(z) - y||^2 / (2 sigma^2)),\n"
      "so that f(z), z ~ q, samples the smoothed conditional p(x | H x ~ y). The default forward-KL\n"
      "gradient (importance-weighted, mass-covering) keeps every mode of a multimodal conditional; stl and\n"
      "reparameterised follow the reverse KL (the ELBO), which is mode-seeking and may keep only one.\n"
      "With --stages > 1, sigma is annealed geometrically from --sigma-start to --sigma (each stage\n"
      "--epochs epochs): for a small sigma, where few prior draws land near the observations.\n"
      "--refine-epochs N adds a last reverse-KL (STL) stage: it tightens a forward-KL fit that is too wide\n"
      "on a unimodal conditional, but on a multimodal one it moves mass between the modes.\n"
      "Prints the comparison with the reference (prior-flow draws weighted by the smoothed likelihood)\n"
      "and writes samples(sample, state), mean, std, reference_mean, reference_std and prior_mean.\n"
      "Exit 0 success, 1 numerical failure, 2 bad input.");
  sub->add_option("--prior-samples", o->prior_samples, "netCDF file with the prior states (sample, state)")
      ->required()
      ->check(CLI::ExistingFile);
  sub->add_option("--variable", o->variable, "Variable of --prior-samples holding the states")->capture_default_str();
  sub->add_option("--observe", o->observe, "Observed state indices (0-based), e.g. 0,3,7")->delimiter(',')->required();
  sub->add_option("--values", o->values, "Observed values, one per index of --observe")->delimiter(',')->required();
  sub->add_option("--sigma", o->sigma, "Gaussian smoothing sd of the observations")->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--sigma-start", o->sigma_start, "sigma of the first annealing stage (>= --sigma)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("--stages", o->stages, "Annealing stages (1: none)")->check(CLI::Range(1, 100))->capture_default_str();
  sub->add_option("--estimator", o->estimator, "forward-kl | stl | reparameterised")->capture_default_str();
  sub->add_option("--refine-epochs", o->refine_epochs, "Epochs of a last STL stage (0: none)")
      ->check(CLI::Range(0, 100000))
      ->capture_default_str();
  sub->add_option("--prior-layers", o->prior_layers, "Autoregressive layers of the prior (MAF)")->check(CLI::Range(1, 64))->capture_default_str();
  sub->add_option("--prior-epochs", o->prior_epochs, "Epochs of the prior's maximum-likelihood training")->check(CLI::Range(1, 100000))->capture_default_str();
  sub->add_option("--layers", o->layers, "Autoregressive layers of the pre-generator (IAF)")->check(CLI::Range(1, 64))->capture_default_str();
  sub->add_option("--hidden", o->hidden, "Width of the two MADE hidden layers")->check(CLI::Range(1, 4096))->capture_default_str();
  sub->add_option("--bins", o->bins, "Spline bins")->check(CLI::Range(2, 64))->capture_default_str();
  sub->add_option("--epochs", o->epochs, "Pre-generator epochs per annealing stage")->check(CLI::Range(1, 100000))->capture_default_str();
  sub->add_option("--steps-per-epoch", o->steps_per_epoch, "Optimizer steps per epoch")->check(CLI::Range(1, 100000))->capture_default_str();
  sub->add_option("--draws", o->draws, "Draws per optimizer step")->check(CLI::Range(2, 1000000))->capture_default_str();
  sub->add_option("--samples", o->samples, "Draws written to --out")->check(CLI::Range(2, 100000000))->capture_default_str();
  sub->add_option("--reference-draws", o->reference_draws, "Prior-flow draws of the importance-weighted reference")
      ->check(CLI::Range(100, 100000000))
      ->capture_default_str();
  sub->add_option("--seed", o->seed, "Seed of training and sampling")->check(CLI::NonNegativeNumber)->capture_default_str();
  sub->add_option("--threads", o->threads, "OpenMP threads (default: OMP_NUM_THREADS, else all cores)")->check(CLI::Range(1, 1024));
  sub->add_flag("--quiet", o->quiet, "No progress lines");
  sub->add_option("--out", o->out, "Samples file to write (netCDF)")->required();
  commands.push_back({sub, [o] { return run_vi_condition(*o); }});
}

}  // namespace

void add_vi_command(CLI::App& app, CommandList& commands) {
  auto o = std::make_shared<ViOptions>();
  auto* sub = app.add_subcommand(
      "vi",
      "Variational inference for one window: fit a normalizing flow to the 4D-Var posterior by the ELBO");
  sub->footer(
      "The target is p(x0 | y) up to a constant, exp(-J(x0)) with J the strong-constraint 4D-Var cost of the\n"
      "first window of the experiment config (model, observations, background, cycling sections; the same\n"
      "file as `varflow assimilate`), so any model and observation operator with an adjoint works. The flow\n"
      "(IAF: cheap sampling, MAF: cheap density; rational-quadratic spline or affine transformers, optional\n"
      "mixture-CDF Gaussianization layer) starts at the Laplace posterior of the incremental 4D-Var MAP and\n"
      "maximises E_q[log p~(x) - log q(x)] with the reparameterised (default) or sticking-the-landing\n"
      "gradient (STL also runs the density direction: for an IAF, d sequential passes per layer). It\n"
      "prints the ELBO, the importance-sampling evidence and effective sample fraction (1 = q matches the\n"
      "posterior), and how far the VI mean and spread are from the MAP and the Laplace sd (a non-Gaussian\n"
      "posterior shows here). Writes samples(sample, state), mean, std, map, laplace_std and truth.\n"
      "Exit 0 success, 1 numerical failure (non-finite ELBO or draws), 2 bad input.");
  sub->add_option("--config", o->config, "YAML experiment config (default: the built-in one)")->check(CLI::ExistingFile);
  sub->add_option("--obs", o->obs, "Read observations (and truth) from this netCDF file instead of simulating")
      ->check(CLI::ExistingFile);
  sub->add_option("--background", o->background, "Read the background from this netCDF file")->check(CLI::ExistingFile);
  sub->add_option("--seed", o->seed, "Override cycling.seed (simulation and training)")->check(CLI::NonNegativeNumber);
  sub->add_option("--flow", o->flow, "maf | iaf")->capture_default_str();
  sub->add_option("--transformer", o->transformer, "spline | affine")->capture_default_str();
  sub->add_option("--layers", o->layers, "Autoregressive layers")->check(CLI::Range(1, 64))->capture_default_str();
  sub->add_option("--hidden", o->hidden, "Width of the two MADE hidden layers")->check(CLI::Range(1, 4096))->capture_default_str();
  sub->add_option("--bins", o->bins, "Spline bins")->check(CLI::Range(2, 64))->capture_default_str();
  sub->add_option("--mixture", o->mixture, "Components of a mixture-CDF layer (0: none)")->check(CLI::Range(0, 64))->capture_default_str();
  sub->add_option("--estimator", o->estimator, "reparameterised | stl | forward-kl (mass-covering, see `vi condition --help`)")->capture_default_str();
  sub->add_option("--draws", o->draws, "Draws per optimizer step")->check(CLI::Range(2, 1000000))->capture_default_str();
  sub->add_option("--epochs", o->epochs, "Epochs (cosine schedule)")->check(CLI::Range(1, 100000))->capture_default_str();
  sub->add_option("--steps-per-epoch", o->steps_per_epoch, "Optimizer steps per epoch")->check(CLI::Range(1, 100000))->capture_default_str();
  sub->add_option("--learning-rate", o->learning_rate, "Peak learning rate")->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--samples", o->samples, "Draws written to --out")->check(CLI::Range(2, 100000000))->capture_default_str();
  sub->add_option("--threads", o->threads, "OpenMP threads (default: OMP_NUM_THREADS, else all cores)")->check(CLI::Range(1, 1024));
  sub->add_flag("--quiet", o->quiet, "No progress lines");
  sub->add_option("--out", o->out, "Samples file to write (netCDF; required)");
  add_vi_condition_command(*sub, commands);  // before `vi` itself: main runs the first parsed command
  commands.push_back({sub, [o] { return run_vi(*o); }});
}

}  // namespace varflow::cli
