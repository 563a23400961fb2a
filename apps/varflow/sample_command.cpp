// `varflow sample`: draw from a trained amortized posterior at one observation and write the draws
// (netCDF samples file, design/formats.md).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <sstream>

#include "command.h"
#include "varflow/amortized/amortized_posterior.h"
#include "varflow/amortized/files.h"
#include "varflow/core/error.h"
#include "varflow/core/limits.h"
#include "varflow/io/atomic_file.h"
#include "varflow/io/provenance.h"
#include "varflow/version.h"

namespace varflow::cli {

namespace {

struct SampleOptions {
  std::string model;
  std::string obs;
  std::string obs_file;
  varflow::Index n = 1000;
  std::uint64_t seed = 1;
  std::string out;
  int threads = 0;  // 0: OMP_NUM_THREADS or all cores
};

// "v1,v2,..." -> values; an empty entry or "nan" is a missing value.
varflow::Vector parse_obs(const std::string& text) {
  std::vector<double> v;
  std::stringstream ss(text);
  std::string token;
  while (std::getline(ss, token, ',')) {
    const auto b = token.find_first_not_of(" \t"), e = token.find_last_not_of(" \t");
    token = b == std::string::npos ? "" : token.substr(b, e - b + 1);
    if (token.empty() || token == "nan" || token == "NaN") {
      v.push_back(std::nan(""));
      continue;
    }
    std::size_t used = 0;
    double d = 0.0;
    try {
      d = std::stod(token, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != token.size() || !std::isfinite(d)) {
      throw varflow::InvalidArgument("--obs: value '" + token + "' is not a finite number (or empty / nan for missing)");
    }
    v.push_back(d);
  }
  if (!text.empty() && text.back() == ',') v.push_back(std::nan(""));
  return Eigen::Map<varflow::Vector>(v.data(), static_cast<varflow::Index>(v.size()));
}

int run_sample(const SampleOptions& o) {
  if (o.threads > 0) varflow::nn::set_thread_count(o.threads);
  using namespace varflow::amortized;
  if (o.obs.empty() == o.obs_file.empty()) {
    throw varflow::InvalidArgument("give exactly one of --obs and --obs-file");
  }
  { varflow::AtomicOutput check(o.out); }
  // The command has no config file: its settings are its options.
  varflow::set_run_config(varflow::format_message("model: ", o.model, "\n", o.obs_file.empty() ? "obs: " : "obs_file: ",
                                                  o.obs_file.empty() ? o.obs : o.obs_file, "\nn: ", o.n, "\nseed: ", o.seed,
                                                  "\n"),
                          o.seed);
  AmortizedPosterior q = AmortizedPosterior::load(o.model);
  const varflow::Vector y = o.obs.empty() ? read_observation_file(o.obs_file) : parse_obs(o.obs);
  if (y.size() != q.shape().obs_size) {
    throw varflow::InvalidArgument(varflow::format_message(
        o.obs.empty() ? "--obs-file " + o.obs_file + ": variable 'observations' has " : std::string("--obs: "), y.size(),
        " values, the model (", q.problem(), ") expects ", q.shape().obs_size));
  }
  std::printf("varflow %s sample: model %s (%s, head %s), %lld draws, seed %llu\n", VARFLOW_VERSION_STRING,
              o.model.c_str(), q.problem().c_str(), to_string(q.config().head).c_str(), static_cast<long long>(o.n),
              static_cast<unsigned long long>(o.seed));
  // The draws, their sample statistics and the copy written: about three matrices of n x d.
  varflow::limits::check_memory("sample", varflow::format_message("--n ", o.n, " draws of ", q.shape().state_size, " values"),
                                3.0 * 8.0 * static_cast<double>(o.n) * static_cast<double>(q.shape().state_size));
  varflow::Rng rng(o.seed);
  const auto t0 = std::chrono::steady_clock::now();
  const varflow::Matrix draws = q.sample(y, o.n, rng);
  const double ms = 1e3 * std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const varflow::Vector mean = q.mean(y);
  write_samples_file(o.out, draws, y, mean, SamplesFileInfo{o.model, q.problem(), to_string(q.config().head), o.seed});
  const varflow::Vector m = draws.rowwise().mean();
  const varflow::Vector sd = ((draws.colwise() - m).rowwise().squaredNorm() / std::max<double>(1.0, double(o.n - 1))).cwiseSqrt();
  std::printf("drew %lld samples in %.1f ms\n", static_cast<long long>(o.n), ms);
  const varflow::Index show = std::min<varflow::Index>(m.size(), 8);
  std::printf("  sample mean:");
  for (varflow::Index i = 0; i < show; ++i) std::printf(" %.4f", m[i]);
  std::printf("%s\n  sample sd:  ", m.size() > show ? " ..." : "");
  for (varflow::Index i = 0; i < show; ++i) std::printf(" %.4f", sd[i]);
  std::printf("%s\nwrote %s\n", m.size() > show ? " ..." : "", o.out.c_str());
  return 0;
}

}  // namespace

void add_sample_command(CLI::App& app, CommandList& commands) {
  auto o = std::make_shared<SampleOptions>();
  auto* sub = app.add_subcommand("sample", "Draw from a trained amortized posterior at an observation");
  sub->add_option("--model", o->model, "Model file written by `varflow train`")->required();
  auto* obs = sub->add_option("--obs", o->obs, "Observation values \"v1,v2,...\" (empty or nan = missing)");
  auto* file = sub->add_option("--obs-file", o->obs_file, "netCDF file with a variable observations (a varflow simulate file: its obs_time x obs values, "
                                "time after time) or observation(obs)")
                   ->check(CLI::ExistingFile);
  obs->excludes(file);
  sub->add_option("--n", o->n, "Number of draws")->check(CLI::Range(1, 100000000))->capture_default_str();
  sub->add_option("--seed", o->seed, "Seed of the draws")->capture_default_str();
  sub->add_option("--out", o->out, "Samples file to write (netCDF)")->required();
  sub->add_option("--threads", o->threads, "OpenMP threads (default: OMP_NUM_THREADS, else all cores)")
      ->check(CLI::Range(1, 4096));
  commands.push_back({sub, [o] { return run_sample(*o); }});
}

}  // namespace varflow::cli
