#include "amortized_analysis.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <fstream>
#include <optional>

#include "varflow/amortized/config.h"
#include "varflow/core/error.h"
#include "varflow/nn/trainer.h"
#include "varflow/var/cost.h"

namespace varflow {

namespace {
constexpr const char* kWhere = "amortized.model";

bool same_value(double a, double b) { return std::abs(a - b) <= 1e-9 * std::max(std::abs(a), std::abs(b)); }

// The model file, a refusal naming the key ("amortized.model: model file x.nc: no such file").
amortized::AmortizedPosterior load_model(const std::string& file) {
  std::optional<amortized::AmortizedPosterior> q;
  with_context(kWhere, [&] { q.emplace(amortized::AmortizedPosterior::load(file)); });
  return std::move(*q);
}

// amortized.validation: `report` must be the varflow validate report.json of `model` (same checksum)
// with every gate passed; InvalidArgument naming the key, the file and what is wrong otherwise.
void require_passed_gates(const std::string& report, const std::string& model_file,
                          const amortized::AmortizedPosterior& model) {
  const auto refuse = [&report](const std::string& what) {
    throw InvalidArgument(format_message("amortized.validation = '", report, "': ", what));
  };
  std::ifstream in(report);
  if (!in) refuse("cannot be read (run varflow validate --model <model> --out <dir>; the report is <dir>/report.json)");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    refuse(format_message("is not JSON: ", e.what()));
  }
  std::string checksum, model_named, failed;
  bool passed = false;
  try {  // a field of the wrong type is a malformed report, not a crash
    if (!j.is_object() || j.value("format", std::string()) != "varflow_validation_report") {
      refuse("is not a varflow validation report (no format: varflow_validation_report)");
    }
    checksum = j.value("model_checksum", std::string());
    model_named = j.value("model", std::string("?"));
    passed = j.value("passed", false);
    for (const auto& g : j.value("failed_gates", nlohmann::json::array())) {
      failed += (failed.empty() ? "" : ", ") + g.get<std::string>();
    }
  } catch (const nlohmann::json::exception& e) {
    refuse(format_message("is not a valid varflow validation report: ", e.what()));
  }
  if (checksum.empty()) {
    refuse("has no model_checksum (written by an older varflow validate): validate the model again");
  }
  const std::string model_checksum = model.checksum();  // a hash over every weight: once
  if (checksum != model_checksum) {
    refuse(format_message("is the report of the model with checksum ", checksum, " (", model_named,
                          "), but amortized.model = '", model_file, "' has checksum ", model_checksum));
  }
  if (!passed) {
    refuse(format_message("the model failed its gates (", failed.empty() ? std::string("unknown") : failed,
                          "), and the gates decide what may replace 4D-Var in the cycle"));
  }
}
}  // namespace

AmortizedAnalysis::AmortizedAnalysis(const TwinExperimentConfig& config, const TwinData& data)
    : options_(config.amortized), seed_(config.seed), posterior_(load_model(config.amortized.model)) {
  const std::string file = config.amortized.model;
  if (!config.amortized.validation.empty()) require_passed_gates(config.amortized.validation, file, posterior_);
  amortized::AmortizedSetup stored;
  amortized::apply_definition(stored, posterior_.problem_definition(), std::string(kWhere) + " " + file);
  const amortized::WindowProblemOptions& o = stored.window_problem;
  const auto refuse = [&file](const std::string& what) {
    throw InvalidArgument(format_message(kWhere, " = '", file, "': ", what));
  };
  if (posterior_.problem_definition().empty() || o.prior != amortized::WindowPrior::kBackground) {
    refuse(format_message("the model was trained on problem '", posterior_.problem(), "' with background.prior = ",
                          posterior_.problem_definition().empty() ? std::string("(none stored)") : to_string(o.prior),
                          "; the cycle needs a window problem with background.prior = background"));
  }
  problem_ = std::make_unique<amortized::WindowProblem>(o);
  const amortized::ProblemShape sh = problem_->shape();
  if (sh.obs_size != posterior_.shape().obs_size || sh.state_size != posterior_.shape().state_size) {
    refuse("its network's shape is not its stored problem's");
  }
  const Model& model = *config.model;
  if (problem_->model().name() != model.name()) {
    refuse(format_message("it was trained with model ", problem_->model().name(), ", but the experiment runs ",
                          model.name()));
  }
  if (config.window_steps != o.window) {
    refuse(format_message("it was trained on windows of ", o.window, " steps, but cycling.window_steps = ",
                          config.window_steps));
  }
  const double prior_variance = o.prior_sd * o.prior_sd;
  if (config.b_type != BackgroundCovarianceType::kScaledIdentity || !same_value(config.b_variance, prior_variance)) {
    refuse(format_message("it was trained with B = ", prior_variance, " I, but the experiment has background.covariance = ",
                          to_string(config.b_type), " with background.variance = ", config.b_variance));
  }
  if (config.b_hybrid_weight > 0.0) {
    refuse(format_message("background.hybrid_weight = ", config.b_hybrid_weight,
                          " needs a Laplace posterior each cycle; the amortized analysis uses the static B"));
  }
  const double noise_variance = o.obs_noise * o.obs_noise;
  for (Index i = 0; i < data.obs_error_variance.size(); ++i) {
    if (!same_value(data.obs_error_variance[i], noise_variance)) {
      refuse(format_message("it was trained with observation error variance ", noise_variance,
                            ", but observed value ", i, " has ", data.obs_error_variance[i]));
    }
  }
  observed_ = data.observed_variables;
  for (const Index v : observed_) {
    if (v % o.obs_stride != 0) {
      refuse(format_message("it observes every ", o.obs_stride, "-th variable, but the experiment observes variable ", v));
    }
  }
}

AmortizedAnalysis::Outcome AmortizedAnalysis::analyse(const AssimilationWindow& window, Index cycle) {
  const auto start = std::chrono::steady_clock::now();
  Outcome out = checked_analysis(window, cycle);
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return out;
}

AmortizedAnalysis::Outcome AmortizedAnalysis::checked_analysis(const AssimilationWindow& window, Index cycle) {
  Outcome out;
  const amortized::WindowProblemOptions& o = problem_->options();
  const Index n = window.background.size(), slots = problem_->observation_slots();
  // The window's observations must be the problem's slots, in order.
  bool layout = static_cast<Index>(window.observations.size()) == slots;
  for (Index s = 0; layout && s < slots; ++s) {
    layout = window.observations[static_cast<std::size_t>(s)].step == o.obs_first + s * o.obs_every;
  }
  if (!layout) {
    std::string steps;
    for (const Observations& obs : window.observations) steps += format_message(steps.empty() ? "" : ", ", obs.step);
    out.reason = format_message("layout: observations at steps [", steps, "] of the window, the model's at ", o.obs_first,
                                ", ", o.obs_first + o.obs_every, ", ..");
    return out;
  }
  Vector y = Vector::Constant(problem_->shape().obs_size, std::nan(""));
  y.head(n) = window.background;
  Index m = 0;
  for (Index s = 0; s < slots; ++s) {
    const Observations& obs = window.observations[static_cast<std::size_t>(s)];
    for (std::size_t i = 0; i < observed_.size(); ++i) {
      const auto k = static_cast<Index>(i);
      if (obs.mask.size() != 0 && !obs.mask[k]) continue;
      y[n + s * n + observed_[i]] = obs.values[k];  // a single-scale model: its grid is its state
      ++m;
    }
  }
  // One event: the network's per-layer parallel loops cost more in fork/join than they save, and
  // on a loaded machine each one waits for a descheduled thread (measured: 126-143 ms per cycle on
  // two threads against 0.5-0.6 ms on one).
  const nn::ScopedThreadCount one_thread(1);
  const Vector mean = posterior_.mean(y);
  Rng rng(seed_ ^ (0x616d6f7274697a65ULL + static_cast<std::uint64_t>(cycle)));
  Vector sd = posterior_.posterior(y, options_.draws, rng)->marginal_std();
  if (!mean.allFinite() || !sd.allFinite()) {
    out.reason = "non-finite mean or spread";
    return out;
  }
  try {
    out.cost = FourDVarCost(window).evaluate(mean);
  } catch (const NumericalError& e) {
    out.reason = format_message("non-finite trajectory from the amortized mean: ", e.what());
    return out;
  }
  const double limit = static_cast<double>(m) + options_.check_sigmas * std::sqrt(2.0 * static_cast<double>(m));
  if (!(2.0 * out.cost <= limit)) {
    out.reason = format_message("chi2: 2 J(x_a) = ", 2.0 * out.cost, " above ", limit, " (m = ", m, ")");
    return out;
  }
  out.used = true;
  out.analysis = mean;
  out.marginal_std = std::move(sd);
  return out;
}

}  // namespace varflow
