#include "varflow/experiment/experiment_io.h"

#include <cmath>
#include <limits>

#include "varflow/core/error.h"
#include "varflow/io/netcdf_file.h"
#include "varflow/version.h"

namespace varflow {

namespace {

void write_provenance(NetcdfWriter& w, const ExperimentConfig& config, const std::string& file_type,
                      const std::string& title) {
  const std::string text = config.text.empty() ? to_yaml(config) : config.text;
  w.attribute("varflow_file_type", file_type);
  w.attribute("title", title);
  w.attribute("format_version", kExperimentFormatVersion);
  w.attribute("varflow_version", std::string(VARFLOW_VERSION_STRING));
  w.attribute("model", config.experiment.model->name());
  w.attribute("config", text);
  w.attribute("config_hash", config_hash(text));
  w.attribute("seed", static_cast<long long>(config.experiment.seed));
}

std::vector<long long> to_long(const std::vector<Index>& v) { return {v.begin(), v.end()}; }

void check_format_version(const NetcdfReader& r, const std::string& file_type) {
  // Both attributes are required (design/formats.md): a file without them is not known to be a
  // varflow file of this kind, whatever variables it happens to have.
  const auto type = r.string_attribute("varflow_file_type");
  if (!type) {
    throw InvalidArgument(format_message(r.path().string(), ": the global attribute varflow_file_type is missing (expected '",
                                         file_type, "', design/formats.md)"));
  }
  if (*type != file_type) {
    throw InvalidArgument(format_message(r.path().string(), ": varflow_file_type = '", *type, "', expected '",
                                         file_type, "'"));
  }
  const auto v = r.double_attribute("format_version");
  if (!v) {
    throw InvalidArgument(format_message(r.path().string(), ": the global attribute format_version is missing (expected ",
                                         kExperimentFormatVersion, ")"));
  }
  if (static_cast<long long>(*v) != kExperimentFormatVersion) {
    throw InvalidArgument(format_message(r.path().string(), ": format_version = ", *v, ", this varflow reads ",
                                         kExperimentFormatVersion));
  }
}

}  // namespace

namespace {
// The CF coordinate variable of the state dimension: the 0-based index of each variable.
void write_state_coordinate(NetcdfWriter& w, Index n) {
  std::vector<long long> index(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < index.size(); ++i) index[i] = static_cast<long long>(i);
  w.write_int("state", "state", index, "state variable (0-based index)", "1");
}
}  // namespace

void write_twin_data(const std::filesystem::path& path, const TwinData& d, const ExperimentConfig& config) {
  const Index n = config.experiment.model->state_size();
  NetcdfWriter w(path);
  w.add_dimension("time", static_cast<Index>(d.truth.size()));
  w.add_dimension("state", n);
  w.add_dimension("obs_time", static_cast<Index>(d.obs_steps.size()));
  w.add_dimension("obs", static_cast<Index>(d.observed_variables.size()));
  // CF coordinate variables: model time (step x dt; steps when the model has no dt), state index,
  // and the observed variable of each observation column.
  const double dt = config.model.parameters.count("dt") != 0 ? config.model.parameter("dt") : 1.0;
  Vector time(static_cast<Index>(d.truth.size())), obs_time(static_cast<Index>(d.obs_steps.size()));
  for (Index k = 0; k < time.size(); ++k) time[k] = static_cast<double>(k) * dt;
  for (Index t = 0; t < obs_time.size(); ++t) obs_time[t] = static_cast<double>(d.obs_steps[static_cast<std::size_t>(t)]) * dt;
  w.write("time", "time", time, "model time of each global step (step x dt)", "1");
  w.write("obs_time", "obs_time", obs_time, "model time of each observation time", "1");
  write_state_coordinate(w, n);
  w.write_int("obs", "obs", to_long(d.observed_variables), "observed state variable (0-based index)", "1");
  Matrix truth(n, static_cast<Index>(d.truth.size()));
  for (std::size_t k = 0; k < d.truth.size(); ++k) truth.col(static_cast<Index>(k)) = d.truth[k];
  w.write("truth", "time", "state", truth, "true state at each global model step", "1");
  w.write_int("obs_step", "obs_time", to_long(d.obs_steps), "global model step of each observation time", "1");
  w.write_int("obs_index", "obs", to_long(d.observed_variables), "observed state variable (0-based index)", "1");
  w.write("obs_error_variance", "obs", d.obs_error_variance, "observation-error variance (diagonal of R)",
          "1");
  Matrix values = d.obs_values;
  for (Index t = 0; t < values.cols(); ++t)
    for (Index j = 0; j < values.rows(); ++j)
      if (!d.obs_mask(j, t)) values(j, t) = std::numeric_limits<double>::quiet_NaN();
  w.write("observations", "obs_time", "obs", values, "observed values (NaN = missing)", "1");
  w.write("initial_background", "state", d.initial_background, "background of the first cycle", "1");
  write_provenance(w, config, "varflow_truth_obs", "varflow truth and observations");
  if (config.model.parameters.count("dt") != 0) w.attribute("dt", config.model.parameter("dt"));
  w.commit();
}

TwinData read_twin_data(const std::filesystem::path& path, Index n, Index total_steps, NonFiniteObservations policy) {
  const NetcdfReader r(path);
  check_format_version(r, "varflow_truth_obs");
  const std::string file = path.string();
  TwinData d;
  if (r.has_variable("truth")) {
    const Matrix truth = r.read_matrix("truth", total_steps + 1, n);
    for (Index k = 0; k < truth.cols(); ++k) d.truth.push_back(truth.col(k));
  }
  for (long long v : r.read_int("obs_index")) d.observed_variables.push_back(static_cast<Index>(v));
  const Index m = static_cast<Index>(d.observed_variables.size());
  for (long long s : r.read_int("obs_step")) d.obs_steps.push_back(static_cast<Index>(s));
  const Index times = static_cast<Index>(d.obs_steps.size());
  d.obs_error_variance = r.read_vector("obs_error_variance", m);
  d.obs_values = r.read_matrix("observations", times, m);
  d.obs_mask.setConstant(m, times, true);
  for (Index t = 0; t < times; ++t) {
    for (Index j = 0; j < m; ++j) {
      if (std::isfinite(d.obs_values(j, t))) continue;
      if (policy == NonFiniteObservations::kReject) {
        throw InvalidArgument(format_message(file, ": observations at obs_time ", t, " (step ", d.obs_steps[static_cast<std::size_t>(t)],
                                             "), obs ", j, " = ", d.obs_values(j, t),
                                             " is not finite (set observations.non_finite: mask to treat it as missing)"));
      }
      d.obs_mask(j, t) = false;
    }
  }
  if (r.has_variable("initial_background")) d.initial_background = r.read_vector("initial_background", n);
  return d;
}

Vector read_background(const std::filesystem::path& path, Index n) {
  const NetcdfReader r(path);
  for (const char* name : {"background", "analysis", "initial_background"}) {
    if (r.has_variable(name)) {
      Vector x = r.read_vector(name, n);
      check_finite(path.string() + ": variable '" + name + "'", "value", x);
      return x;
    }
  }
  throw InvalidArgument(format_message(path.string(), ": no state variable (expected 'background', 'analysis' or ",
                                       "'initial_background' of length ", n, ")"));
}

void write_analysis(const std::filesystem::path& path, const TwinExperimentResult& res, const ExperimentConfig& config) {
  const Index n = config.experiment.model->state_size();
  const Index cycles = static_cast<Index>(res.cycles.size());
  NetcdfWriter w(path);
  w.add_dimension("cycle", cycles);
  w.add_dimension("state", n);
  {
    std::vector<long long> index(static_cast<std::size_t>(cycles));
    for (std::size_t i = 0; i < index.size(); ++i) index[i] = static_cast<long long>(i);
    w.write_int("cycle", "cycle", index, "cycle number (0-based)", "1");
  }
  write_state_coordinate(w, n);
  Vector ra(cycles), rb(cycles), rf(cycles), rfc(cycles), spread(cycles), cost(cycles), seconds(cycles);
  Vector omb_mean(cycles), omb_rms(cycles), oma_mean(cycles), oma_rms(cycles), chi2(cycles);
  Matrix analysis(n, cycles), background(n, cycles), filter(n, cycles), forecast(n, cycles);
  std::vector<long long> iterations, outer, tl, ad, converged, start, filter_step, obs_count, amortized;
  for (Index i = 0; i < cycles; ++i) {
    const CycleRecord& c = res.cycles[static_cast<std::size_t>(i)];
    ra[i] = c.analysis_rmse;
    rb[i] = c.background_rmse;
    rf[i] = c.filter_rmse;
    rfc[i] = c.forecast_rmse;
    spread[i] = c.spread;
    cost[i] = c.final_cost;
    seconds[i] = c.seconds;
    omb_mean[i] = c.innovations.omb_mean;
    omb_rms[i] = c.innovations.omb_rms;
    oma_mean[i] = c.innovations.oma_mean;
    oma_rms[i] = c.innovations.oma_rms;
    chi2[i] = c.innovations.chi2_per_obs;
    analysis.col(i) = c.analysis;
    background.col(i) = c.background;
    filter.col(i) = c.filter_analysis;
    forecast.col(i) = c.forecast;
    iterations.push_back(c.iterations);
    outer.push_back(c.outer_iterations);
    tl.push_back(c.num_tl_sweeps);
    ad.push_back(c.num_ad_sweeps);
    converged.push_back(c.termination == TerminationType::kConverged ? 1 : 0);
    start.push_back(c.window_start);
    filter_step.push_back(c.filter_step);
    obs_count.push_back(c.innovations.count);
    amortized.push_back(c.amortized ? 1 : 0);
  }
  w.write_int("window_start", "cycle", start, "global model step of the window start (the smoother time)", "1");
  w.write_int("filter_step", "cycle", filter_step,
              "global model step of the newest assimilated observation (the filter and forecast time)", "1");
  w.write("rmse_filter", "cycle", rf, "analysis RMSE against the truth at filter_step (filter score)", "1");
  w.write("rmse_forecast", "cycle", rfc, "background (forecast) RMSE against the truth at filter_step", "1");
  w.write("rmse_smoother", "cycle", ra, "analysis RMSE against the truth at the window start (smoother score)",
          "1");
  w.write("rmse_analysis", "cycle", ra, "the same as rmse_smoother (its name before filter scores existed)",
          "1");
  w.write("rmse_background", "cycle", rb, "background RMSE against the truth at the window start", "1");
  w.write("spread", "cycle", spread, "root-mean posterior variance of the analysis (square root)", "1");
  w.write("final_cost", "cycle", cost, "cost function at the analysis", "1");
  w.write("seconds", "cycle", seconds, "solver wall time", "s");
  w.write_int("iterations", "cycle", iterations, "solver iterations (inner iterations summed over outer loops)", "1");
  w.write_int("outer_iterations", "cycle", outer, "Gauss-Newton outer iterations", "1");
  w.write_int("tl_sweeps", "cycle", tl, "tangent-linear sweeps of the window", "1");
  w.write_int("ad_sweeps", "cycle", ad, "adjoint sweeps of the window", "1");
  w.write_int("converged", "cycle", converged, "1 when the solver converged, else 0", "1");
  w.variable_attribute("converged", "flag_values", std::vector<long long>{0, 1});
  w.variable_attribute("converged", "flag_meanings", "not_converged converged");
  if (!res.amortized_model.empty()) {
    w.write_int("amortized", "cycle", amortized,
                "1 when the analysis is the amortized one (amortized.model), 0 when the cycle fell back to 4D-Var", "1");
    w.variable_attribute("amortized", "flag_values", std::vector<long long>{0, 1});
    w.variable_attribute("amortized", "flag_meanings", "fell_back_to_4dvar amortized");
    w.attribute("cycles_amortized", static_cast<long long>(res.cycles_amortized));
  }
  w.write_int("obs_count", "cycle", obs_count, "observation values the window assimilated (present ones)", "1");
  w.write("omb_mean", "cycle", omb_mean, "mean of O-B, y - H(background trajectory)", "1");
  w.write("omb_rms", "cycle", omb_rms, "rms of O-B", "1");
  w.write("oma_mean", "cycle", oma_mean, "mean of O-A, y - H(analysis trajectory)", "1");
  w.write("oma_rms", "cycle", oma_rms, "rms of O-A", "1");
  w.write("chi2_per_obs", "cycle", chi2, "2 J(analysis) / obs_count (expectation 1 for correct B and R)", "1");
  w.write("analysis_state", "cycle", "state", analysis, "analysis at each window start", "1");
  w.write("background_state", "cycle", "state", background, "background at each window start", "1");
  w.write("filter_state", "cycle", "state", filter, "analysis trajectory at each filter_step", "1");
  w.write("forecast_state", "cycle", "state", forecast, "background trajectory (forecast) at each filter_step",
          "1");
  w.write("analysis", "state", res.final_analysis, "analysis of the last cycle (at its window start)", "1");
  if (res.final_analysis_std.size() == n) {
    w.write("analysis_std", "state", res.final_analysis_std, "posterior standard deviation of the last analysis",
            "1");
  }
  write_provenance(w, config, "varflow_analysis", "varflow analysis");
  w.attribute("method", res.method);
  w.attribute("burn_in", static_cast<long long>(res.burn_in));
  w.attribute("rmse_filter_mean", res.mean_filter_rmse);
  w.attribute("rmse_forecast_mean", res.mean_forecast_rmse);
  w.attribute("rmse_smoother_mean", res.mean_analysis_rmse);
  w.attribute("rmse_analysis_mean", res.mean_analysis_rmse);
  w.attribute("chi2_per_obs_mean", res.mean_innovations.chi2_per_obs);
  w.attribute("omb_rms_mean", res.mean_innovations.omb_rms);
  w.attribute("oma_rms_mean", res.mean_innovations.oma_rms);
  w.attribute("rmse_background_mean", res.mean_background_rmse);
  // Absent when no cycle after burn-in has a posterior (posterior: none, no amortized cycle).
  if (res.spread_cycles > 0) w.attribute("spread_mean", res.mean_spread);
  w.attribute("spread_cycles", static_cast<long long>(res.spread_cycles));
  w.attribute("final_cost", res.final_summary.final_cost);
  w.attribute("iterations", static_cast<long long>(res.final_summary.iterations));
  w.attribute("converged", static_cast<long long>(res.cycles_not_converged == 0 ? 1 : 0));
  w.attribute("cycles_not_converged", static_cast<long long>(res.cycles_not_converged));
  w.attribute("termination", to_string(res.final_summary.termination_type));
  w.commit();
}

}  // namespace varflow
