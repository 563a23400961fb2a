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
  sub->add_option("--estimator", o->estimator, "stl | reparameterised")->capture_default_str();
  sub->add_option("--draws", o->draws, "Draws per optimizer step")->check(CLI::Range(2, 1000000))->capture_default_str();
  sub->add_option("--epochs", o->epochs, "Epochs (cosine schedule)")->check(CLI::Range(1, 100000))->capture_default_str();
  sub->add_option("--steps-per-epoch", o->steps_per_epoch, "Optimizer steps per epoch")->check(CLI::Range(1, 100000))->capture_default_str();
  sub->add_option("--learning-rate", o->learning_rate, "Peak learning rate")->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--samples", o->samples, "Draws written to --out")->check(CLI::Range(2, 100000000))->capture_default_str();
  sub->add_option("--threads", o->threads, "OpenMP threads (default: OMP_NUM_THREADS, else all cores)")->check(CLI::Range(1, 1024));
  sub->add_flag("--quiet", o->quiet, "No progress lines");
  sub->add_option("--out", o->out, "Samples file to write (netCDF)")->required();
  commands.push_back({sub, [o] { return run_vi(*o); }});
}

}  // namespace varflow::cli
