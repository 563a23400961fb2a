#include "varflow/validation/sbc.h"

#include <cmath>
#include <limits>
#include <sstream>

#include "varflow/core/communicator.h"
#include "varflow/core/error.h"
#include "varflow/validation/statistics.h"

namespace varflow {

namespace {

constexpr const char* kGate = "sbc_gate";

std::string option_error(const char* name, double value, const char* rule) {
  return format_message("SbcOptions: ", name, " = ", value, " ", rule);
}

// The band for these options, checked against a precomputed one when given.
std::shared_ptr<const EcdfBand> band_for(const SbcOptions& options, Index dimension) {
  if (!options.ecdf_band) return std::make_shared<const EcdfBand>(sbc_ecdf_band(options, dimension));
  const EcdfBand& b = *options.ecdf_band;
  const double alpha = options.ecdf_alpha / static_cast<double>(dimension);
  if (b.samples != options.simulations || b.rank_values != options.posterior_draws + 1 ||
      std::abs(b.alpha - alpha) > 1e-12 * alpha ||
      b.points != ecdf_evaluation_points(options.posterior_draws + 1, options.ecdf_max_points)) {
    throw InvalidArgument(format_message(kGate, ": the precomputed ECDF band (N = ", b.samples, ", rank values ",
                                         b.rank_values, ", alpha ", b.alpha, ") does not match the options (N = ",
                                         options.simulations, ", rank values ", options.posterior_draws + 1,
                                         ", alpha ", alpha, " for dimension ", dimension, ")"));
  }
  return options.ecdf_band;
}

}  // namespace

void SbcOptions::validate() const {
  auto fail = [](const std::string& message) { throw InvalidArgument(message); };
  if (posterior_draws < 1) return fail(option_error("posterior_draws", static_cast<double>(posterior_draws), "must be >= 1"));
  if (bins < 2) return fail(option_error("bins", static_cast<double>(bins), "must be >= 2"));
  if ((posterior_draws + 1) % bins != 0) {
    return fail(format_message("SbcOptions: bins = ", bins, " must divide posterior_draws + 1 = ", posterior_draws + 1,
                               " (equal-probability bins)"));
  }
  if (simulations < 5 * bins) {
    return fail(format_message("SbcOptions: simulations = ", simulations, " must be >= 5 * bins = ", 5 * bins,
                               " (expected count >= 5 per bin for the chi-square approximation)"));
  }
  if (!(chi_square_alpha > 0.0 && chi_square_alpha < 1.0)) {
    return fail(option_error("chi_square_alpha", chi_square_alpha, "outside (0, 1)"));
  }
  if (!(ecdf_alpha > 0.0 && ecdf_alpha < 1.0)) return fail(option_error("ecdf_alpha", ecdf_alpha, "outside (0, 1)"));
  if (ecdf_max_points < 1) return fail(option_error("ecdf_max_points", static_cast<double>(ecdf_max_points), "must be >= 1"));
  if (!(histogram_band_level > 0.0 && histogram_band_level < 1.0)) {
    return fail(option_error("histogram_band_level", histogram_band_level, "outside (0, 1)"));
  }
  if (!(min_contraction <= 1.0) || std::isnan(min_contraction)) {
    return fail(option_error("min_contraction", min_contraction, "must be <= 1"));
  }
  for (Index i = 0; i < min_contraction_per_component.size(); ++i) {
    if (!(min_contraction_per_component[i] <= 1.0) || std::isnan(min_contraction_per_component[i])) {
      return fail(format_message("SbcOptions: min_contraction_per_component[", i, "] = ",
                                 min_contraction_per_component[i], " must be <= 1"));
    }
  }
}

std::string SbcResult::report() const {
  std::ostringstream os;
  os.precision(4);
  os << "simulation-based calibration: " << (passed() ? "PASS" : "FAIL") << " (N = " << simulations
     << " simulations, L = " << posterior_draws << " posterior draws, " << dimension << " components)\n";
  if (non_finite_simulations > 0) {
    os << "  FAIL: " << non_finite_simulations << " simulations gave non-finite posterior draws\n";
  }
  os << "  chi-square (" << bins << " bins, " << bins - 1 << " dof): min p = " << min_p_value << " (component "
     << worst_p_component << "), Bonferroni threshold " << chi_square_threshold << " "
     << (chi_square_passed ? "pass" : "FAIL") << "\n";
  os << "  " << ecdf_band.report() << "\n";
  os << "    largest excursion " << ecdf_max_excursion[worst_ecdf_component] << " (component " << worst_ecdf_component
     << ", > 0 is outside) " << (ecdf_passed ? "pass" : "FAIL") << "\n";
  os << "  sharpness: min contraction " << contraction[worst_contraction_component] << " (component "
     << worst_contraction_component << ", threshold " << min_contraction[worst_contraction_component] << ") "
     << (sharpness_passed ? "pass" : "FAIL") << "\n";
  os << "  component  p-value     ECDF-violations  contraction\n";
  for (Index i = 0; i < dimension; ++i) {
    os << "  " << i << "  " << p_values[i] << "  " << ecdf_violations[i] << "  " << contraction[i] << "\n";
  }
  return os.str();
}

EcdfBand sbc_ecdf_band(const SbcOptions& options, Index dimension) {
  with_context("sbc_ecdf_band", [&] { options.validate(); });
  check_at_least("sbc_ecdf_band", "dimension", dimension, 1);
  return ecdf_simultaneous_band(options.simulations, options.posterior_draws + 1,
                                options.ecdf_alpha / static_cast<double>(dimension), options.ecdf_max_points);
}

IndexVector sbc_ranks(const Vector& x, const Matrix& draws, Rng& rng) {
  check_size("sbc_ranks", "draws rows", draws.rows(), x.size());
  IndexVector ranks(x.size());
  for (Index i = 0; i < x.size(); ++i) {
    Index below = 0, ties = 0;
    for (Index j = 0; j < draws.cols(); ++j) {
      if (draws(i, j) < x[i]) ++below;
      else if (draws(i, j) == x[i]) ++ties;
    }
    if (ties > 0) below += rng.uniform_index(ties + 1);
    ranks[i] = below;
  }
  return ranks;
}

SbcResult sbc_evaluate(const IndexMatrix& ranks, const Vector& mean_posterior_variance, const Vector& prior_variance,
                       const SbcOptions& options) {
  with_context(kGate, [&] { options.validate(); });
  const Index n = ranks.rows();
  check_at_least(kGate, "dimension", n, 1);
  check_size(kGate, "ranks columns (simulations)", ranks.cols(), options.simulations);
  check_size(kGate, "mean_posterior_variance", mean_posterior_variance.size(), n);
  check_size(kGate, "prior_variance", prior_variance.size(), n);
  for (Index i = 0; i < n; ++i) check_positive(kGate, format_message("prior_variance[", i, "]"), prior_variance[i]);
  if (options.min_contraction_per_component.size() != 0) {
    check_size(kGate, "min_contraction_per_component", options.min_contraction_per_component.size(), n);
  }
  const Index big_n = options.simulations, l = options.posterior_draws, b = options.bins;

  SbcResult r;
  r.options = options;
  r.simulations = big_n;
  r.posterior_draws = l;
  r.dimension = n;
  r.bins = b;
  r.ranks = ranks;

  // Chi-square uniformity of the binned ranks.
  const Index ranks_per_bin = (l + 1) / b;
  r.histogram = IndexMatrix::Zero(n, b);
  for (Index i = 0; i < n; ++i) {
    for (Index j = 0; j < big_n; ++j) {
      const Index rank = ranks(i, j);
      if (rank < 0 || rank > l) {
        throw InvalidArgument(format_message(kGate, ": ranks(", i, ", ", j, ") = ", rank, " outside [0, ", l, "]"));
      }
      ++r.histogram(i, rank / ranks_per_bin);
    }
  }
  r.expected_per_bin = static_cast<double>(big_n) / static_cast<double>(b);
  const double bin_p = 1.0 / static_cast<double>(b);
  r.histogram_band_lower = binomial_quantile(0.5 * (1.0 - options.histogram_band_level), big_n, bin_p);
  r.histogram_band_upper = binomial_quantile(0.5 * (1.0 + options.histogram_band_level), big_n, bin_p);
  r.chi_square.resize(n);
  r.p_values.resize(n);
  r.chi_square_threshold = options.chi_square_alpha / static_cast<double>(n);
  for (Index i = 0; i < n; ++i) {
    const Vector deviation = r.histogram.row(i).cast<double>().transpose().array() - r.expected_per_bin;
    r.chi_square[i] = deviation.squaredNorm() / r.expected_per_bin;
    r.p_values[i] = chi_square_survival(r.chi_square[i], static_cast<double>(b - 1));
    if (r.p_values[i] < r.min_p_value || r.worst_p_component < 0) {
      r.min_p_value = r.p_values[i];
      r.worst_p_component = i;
    }
  }
  r.chi_square_passed = r.min_p_value > r.chi_square_threshold;

  // ECDF simultaneous band.
  const auto band = band_for(options, n);
  r.ecdf_band = *band;
  r.options.ecdf_band = band;
  const Index k_points = band->z.size();
  r.ecdf_difference.resize(n, k_points);
  r.ecdf_max_excursion.resize(n);
  r.ecdf_min_pointwise_p.resize(n);
  r.ecdf_violations.resize(n);
  r.ecdf_passed = true;
  for (Index i = 0; i < n; ++i) {
    const EcdfTestResult t = ecdf_band_test(*band, ranks.row(i).transpose());
    r.ecdf_difference.row(i) = t.ecdf_difference.transpose();
    r.ecdf_max_excursion[i] = t.max_excursion;
    r.ecdf_min_pointwise_p[i] = t.min_pointwise_p;
    r.ecdf_violations[i] = t.violations;
    if (r.worst_ecdf_component < 0 || t.max_excursion > r.ecdf_max_excursion[r.worst_ecdf_component]) {
      r.worst_ecdf_component = i;
    }
    r.ecdf_passed = r.ecdf_passed && t.passed;
  }

  // Sharpness.
  r.mean_posterior_variance = mean_posterior_variance;
  r.contraction = (1.0 - mean_posterior_variance.array() / prior_variance.array()).matrix();
  r.min_contraction = options.min_contraction_per_component.size() != 0
                          ? options.min_contraction_per_component
                          : Vector::Constant(n, options.min_contraction);
  r.sharpness_passed = true;
  double worst_margin = std::numeric_limits<double>::infinity();
  for (Index i = 0; i < n; ++i) {
    const double margin = r.contraction[i] - r.min_contraction[i];
    if (!(margin >= 0.0)) r.sharpness_passed = false;  // NaN fails too
    if (r.worst_contraction_component < 0 || !(margin >= worst_margin)) {
      worst_margin = margin;
      r.worst_contraction_component = i;
    }
  }
  return r;
}

SbcResult sbc_gate(const SbcProblem& problem, const SbcOptions& options, Rng& rng) {
  return sbc_gate(problem, options, rng, serial_communicator());
}

SbcResult sbc_gate(const SbcProblem& problem, const SbcOptions& options, Rng& rng, const Communicator& comm) {
  with_context(kGate, [&] { options.validate(); });
  if (!problem.prior_sample || !problem.simulate || !problem.posterior_samples) {
    throw InvalidArgument(format_message(kGate, ": the ",
                                         !problem.prior_sample ? "prior_sample" : (!problem.simulate ? "simulate" : "posterior_samples"),
                                         " callback is empty"));
  }
  const Index n = problem.prior_variance.size();
  check_at_least(kGate, "prior_variance size", n, 1);
  for (Index i = 0; i < n; ++i) {
    check_positive(kGate, format_message("prior_variance[", i, "]"), problem.prior_variance[i]);
  }
  SbcOptions opts = options;
  opts.ecdf_band = band_for(options, n);

  const Index big_n = options.simulations, l = options.posterior_draws;
  // Simulation j draws from its own stream item_rng(base, j), so ranks may run any block of the N
  // simulations; the records come back in simulation order and are summed in that order on every rank.
  const std::uint64_t base = rng.engine()();
  const std::vector<std::string> records = distributed_map(
      comm, big_n, kGate, [](Index j) { return format_message("simulation ", j); },
      [&](Index j) {
        Rng g = item_rng(base, j);
        const Vector x = problem.prior_sample(g);
        check_size(kGate, format_message("prior_sample (simulation ", j, ")"), x.size(), n);
        check_finite(kGate, format_message("prior_sample (simulation ", j, ")"), x);
        const Vector y = problem.simulate(x, g);
        check_finite(kGate, format_message("simulate (simulation ", j, ")"), y);
        const Matrix draws = problem.posterior_samples(y, l, g);
        check_size(kGate, format_message("posterior_samples rows (simulation ", j, ")"), draws.rows(), n);
        check_size(kGate, format_message("posterior_samples columns (simulation ", j, ")"), draws.cols(), l);
        RecordWriter w;
        w.put(draws.allFinite() ? 0.0 : 1.0);
        w.put(Vector(sbc_ranks(x, draws, g).cast<double>()));
        if (l >= 2) {
          const Vector mean = draws.rowwise().mean();
          w.put(Vector((draws.colwise() - mean).rowwise().squaredNorm() / static_cast<double>(l - 1)));
        }
        return w.bytes();
      });
  IndexMatrix ranks(n, big_n);
  Vector variance_sum = Vector::Zero(n);
  Index non_finite = 0;
  for (Index j = 0; j < big_n; ++j) {
    RecordReader in(records[static_cast<std::size_t>(j)]);
    if (in.get_double() != 0.0) ++non_finite;
    ranks.col(j) = in.get_vector().cast<Index>();
    if (l >= 2) variance_sum += in.get_vector();
  }
  // With a single draw per simulation the spread is not measurable: report zero contraction.
  const Vector mean_variance = l >= 2 ? Vector(variance_sum / static_cast<double>(big_n)) : Vector(problem.prior_variance);
  SbcResult r = sbc_evaluate(ranks, mean_variance, problem.prior_variance, opts);
  r.non_finite_simulations = non_finite;
  return r;
}

}  // namespace varflow
