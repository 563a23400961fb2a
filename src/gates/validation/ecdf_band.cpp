#include "varflow/validation/ecdf_band.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "varflow/core/enum_text.h"
#include "varflow/core/error.h"
#include "varflow/validation/statistics.h"

namespace varflow {

namespace {

// The binomial tails of Bin(N, z_k) at every evaluation point, computed once per band search:
// below[k][c] = P(X <= c), above[k][c] = P(X >= c) (each summed from its own end, so small tail
// probabilities keep their relative accuracy).
struct PointTails {
  std::vector<Vector> below, above;
};

PointTails point_tails(Index samples, const Vector& z) {
  PointTails t;
  for (Index k = 0; k < z.size(); ++k) {
    const Vector pmf = binomial_pmf(samples, z[k]);
    Vector below(samples + 1), above(samples + 2);
    double s = 0.0;
    for (Index c = 0; c <= samples; ++c) below[c] = (s += pmf[c]);
    s = 0.0;
    above[samples + 1] = 0.0;
    for (Index c = samples; c >= 0; --c) above[c] = (s += pmf[c]);
    t.below.push_back(below);
    t.above.push_back(above);
  }
  return t;
}

// Bounds of pointwise level gamma from the tails.
void bounds_for_gamma(const PointTails& t, Index samples, double gamma, IndexVector& lower, IndexVector& upper) {
  const auto points = static_cast<Index>(t.below.size());
  lower.resize(points);
  upper.resize(points);
  const double half = 0.5 * gamma;
  for (Index k = 0; k < points; ++k) {
    const Vector& below = t.below[static_cast<std::size_t>(k)];
    const Vector& above = t.above[static_cast<std::size_t>(k)];
    Index lo = 0;
    while (lo < samples && below[lo] < half) ++lo;
    Index hi = 0;  // smallest c with P(X > c) = P(X >= c + 1) <= gamma / 2
    while (hi < samples && above[hi + 1] > half) ++hi;
    lower[k] = lo;
    upper[k] = hi;
  }
}

void check_band_arguments(const char* where, Index samples, Index rank_values, Index max_points) {
  check_at_least(where, "samples", samples, 1);
  check_at_least(where, "rank_values", rank_values, 2);
  check_at_least(where, "max_points", max_points, 1);
}

EcdfBand band_skeleton(Index samples, Index rank_values, Index max_points) {
  EcdfBand b;
  b.samples = samples;
  b.rank_values = rank_values;
  b.points = ecdf_evaluation_points(rank_values, max_points);
  b.z.resize(static_cast<Index>(b.points.size()));
  for (std::size_t k = 0; k < b.points.size(); ++k) {
    b.z[static_cast<Index>(k)] = static_cast<double>(b.points[k]) / static_cast<double>(rank_values);
  }
  return b;
}

// Counts #{r < i_k} at every evaluation point.
IndexVector counts_below(const std::vector<Index>& points, const std::vector<Index>& histogram) {
  IndexVector c(static_cast<Index>(points.size()));
  Index running = 0;
  std::size_t next_value = 0;
  for (std::size_t k = 0; k < points.size(); ++k) {
    while (static_cast<Index>(next_value) < points[k]) running += histogram[next_value++];
    c[static_cast<Index>(k)] = running;
  }
  return c;
}

}  // namespace

namespace {
constexpr EnumNames<EcdfBandMethod, 2> kEcdfBandMethodNames{
    {{EcdfBandMethod::kOptimization, "optimization"}, {EcdfBandMethod::kSimulation, "simulation"}}};
}  // namespace

std::string to_string(EcdfBandMethod method) { return std::string(to_text(kEcdfBandMethodNames, method)); }

EcdfBandMethod ecdf_band_method_from_string(std::string_view name) {
  return from_text(kEcdfBandMethodNames, "ecdf_band_method_from_string: method", name);
}

Vector EcdfBand::lower_difference() const {
  return lower.cast<double>() / static_cast<double>(samples) - z;
}

Vector EcdfBand::upper_difference() const {
  return upper.cast<double>() / static_cast<double>(samples) - z;
}

std::string EcdfBand::report() const {
  return format_message("ECDF band (", to_string(method), "): N = ", samples, " ranks in 0..", rank_values - 1,
                        ", ", points.size(), " evaluation points, alpha = ", alpha, ", adjusted gamma = ", gamma,
                        ", exact simultaneous coverage = ", coverage);
}

std::vector<Index> ecdf_evaluation_points(Index rank_values, Index max_points) {
  check_at_least("ecdf_evaluation_points", "rank_values", rank_values, 2);
  check_at_least("ecdf_evaluation_points", "max_points", max_points, 1);
  std::vector<Index> points;
  if (rank_values - 1 <= max_points) {
    for (Index i = 1; i < rank_values; ++i) points.push_back(i);
    return points;
  }
  for (Index k = 1; k <= max_points; ++k) {
    const auto i = static_cast<Index>(std::llround(static_cast<double>(k) * static_cast<double>(rank_values) /
                                                   static_cast<double>(max_points + 1)));
    if (i >= 1 && i < rank_values && (points.empty() || i > points.back())) points.push_back(i);
  }
  return points;
}

double ecdf_band_coverage(Index samples, const Vector& z, const IndexVector& lower, const IndexVector& upper) {
  check_at_least("ecdf_band_coverage", "samples", samples, 1);
  check_size("ecdf_band_coverage", "lower", lower.size(), z.size());
  check_size("ecdf_band_coverage", "upper", upper.size(), z.size());
  std::vector<double> log_factorial(static_cast<std::size_t>(samples) + 1);
  for (Index n = 0; n <= samples; ++n) log_factorial[static_cast<std::size_t>(n)] = std::lgamma(static_cast<double>(n) + 1.0);
  auto lf = [&](Index n) { return log_factorial[static_cast<std::size_t>(n)]; };

  // prob[c - prev_lo] = P(count at the previous point = c and every earlier count inside the band).
  std::vector<double> prob{1.0};
  Index prev_lo = 0;
  double z_prev = 0.0;
  for (Index k = 0; k < z.size(); ++k) {
    if (!(z[k] > z_prev && z[k] < 1.0)) {
      throw InvalidArgument(format_message("ecdf_band_coverage: z[", k, "] = ", z[k],
                                           " must increase strictly inside (0, 1)"));
    }
    const Index lo = std::max<Index>(lower[k], 0), hi = std::min(upper[k], samples);
    if (hi < lo) return 0.0;
    // Given c at the previous point, the other samples - c ranks are uniform above it, so the
    // number landing below the next point is Bin(samples - c, q).
    const double q = (z[k] - z_prev) / (1.0 - z_prev);
    const double log_q = std::log(q), log_1mq = std::log1p(-q);
    std::vector<double> next(static_cast<std::size_t>(hi - lo + 1), 0.0);
    for (std::size_t s = 0; s < prob.size(); ++s) {
      if (prob[s] == 0.0) continue;
      const Index c_prev = prev_lo + static_cast<Index>(s);
      const Index n = samples - c_prev;
      for (Index c = std::max(lo, c_prev); c <= hi; ++c) {
        const Index j = c - c_prev;
        const double log_pmf = lf(n) - lf(j) - lf(n - j) + static_cast<double>(j) * log_q +
                               static_cast<double>(n - j) * log_1mq;
        next[static_cast<std::size_t>(c - lo)] += prob[s] * std::exp(log_pmf);
      }
    }
    prob.swap(next);
    prev_lo = lo;
    z_prev = z[k];
  }
  double total = 0.0;
  for (double p : prob) total += p;
  return std::min(total, 1.0);
}

EcdfBand ecdf_pointwise_band(Index samples, Index rank_values, double gamma, Index max_points) {
  check_band_arguments("ecdf_pointwise_band", samples, rank_values, max_points);
  if (!(gamma > 0.0 && gamma < 1.0)) {
    throw InvalidArgument(format_message("ecdf_pointwise_band: gamma = ", gamma, " outside (0, 1)"));
  }
  EcdfBand b = band_skeleton(samples, rank_values, max_points);
  b.alpha = gamma;
  b.gamma = gamma;
  const PointTails tails = point_tails(samples, b.z);
  bounds_for_gamma(tails, samples, gamma, b.lower, b.upper);
  b.tail_below = tails.below;
  b.tail_above = tails.above;
  b.coverage = ecdf_band_coverage(samples, b.z, b.lower, b.upper);
  return b;
}

EcdfBand ecdf_simultaneous_band(Index samples, Index rank_values, double alpha, Index max_points) {
  check_band_arguments("ecdf_simultaneous_band", samples, rank_values, max_points);
  if (!(alpha > 0.0 && alpha < 1.0)) {
    throw InvalidArgument(format_message("ecdf_simultaneous_band: alpha = ", alpha, " outside (0, 1)"));
  }
  EcdfBand b = band_skeleton(samples, rank_values, max_points);
  b.alpha = alpha;
  b.method = EcdfBandMethod::kOptimization;
  const PointTails tails = point_tails(samples, b.z);
  IndexVector lower, upper;
  auto coverage_at = [&](double gamma) {
    bounds_for_gamma(tails, samples, gamma, lower, upper);
    return ecdf_band_coverage(samples, b.z, lower, upper);
  };
  const double target = 1.0 - alpha;
  // Bracket: gamma = alpha / K covers with probability >= 1 - alpha (Bonferroni); gamma = alpha is
  // the pointwise band, which can only cover less, except for a single point.
  double lo = alpha / static_cast<double>(b.z.size());
  double hi = alpha;
  if (coverage_at(hi) >= target) {
    lo = hi;
  } else {
    // Bisection in log gamma for the largest gamma whose band covers with probability >= target.
    for (int it = 0; it < 60 && hi / lo > 1.0 + 1e-9; ++it) {
      const double mid = std::sqrt(lo * hi);
      if (coverage_at(mid) >= target) lo = mid; else hi = mid;
    }
  }
  b.gamma = lo;
  b.coverage = coverage_at(lo);
  b.lower = lower;
  b.upper = upper;
  b.tail_below = tails.below;
  b.tail_above = tails.above;
  return b;
}

EcdfBand ecdf_simultaneous_band_simulated(Index samples, Index rank_values, double alpha, Index simulations,
                                          Rng& rng, Index max_points) {
  check_band_arguments("ecdf_simultaneous_band_simulated", samples, rank_values, max_points);
  if (!(alpha > 0.0 && alpha < 1.0)) {
    throw InvalidArgument(format_message("ecdf_simultaneous_band_simulated: alpha = ", alpha, " outside (0, 1)"));
  }
  check_at_least("ecdf_simultaneous_band_simulated", "simulations", simulations, 100);
  EcdfBand b = band_skeleton(samples, rank_values, max_points);
  b.alpha = alpha;
  b.method = EcdfBandMethod::kSimulation;
  const PointTails tails = point_tails(samples, b.z);
  std::vector<Index> histogram(static_cast<std::size_t>(rank_values));
  std::vector<double> statistic(static_cast<std::size_t>(simulations));
  for (Index m = 0; m < simulations; ++m) {
    std::fill(histogram.begin(), histogram.end(), 0);
    for (Index j = 0; j < samples; ++j) ++histogram[static_cast<std::size_t>(rng.uniform_index(rank_values))];
    const IndexVector c = counts_below(b.points, histogram);
    double t = 1.0;
    for (Index k = 0; k < c.size(); ++k) {
      const auto ks = static_cast<std::size_t>(k);
      t = std::min({t, tails.below[ks][c[k]], tails.above[ks][c[k]]});
    }
    statistic[static_cast<std::size_t>(m)] = 2.0 * t;
  }
  b.gamma = std::min(empirical_quantile(statistic, alpha), 1.0 - 1e-12);
  bounds_for_gamma(tails, samples, b.gamma, b.lower, b.upper);
  b.coverage = ecdf_band_coverage(samples, b.z, b.lower, b.upper);
  b.tail_below = tails.below;
  b.tail_above = tails.above;
  return b;
}

EcdfTestResult ecdf_band_test(const EcdfBand& band, const IndexVector& ranks) {
  check_size("ecdf_band_test", "ranks", ranks.size(), band.samples);
  std::vector<Index> histogram(static_cast<std::size_t>(band.rank_values), 0);
  for (Index j = 0; j < ranks.size(); ++j) {
    if (ranks[j] < 0 || ranks[j] >= band.rank_values) {
      throw InvalidArgument(format_message("ecdf_band_test: ranks[", j, "] = ", ranks[j], " outside [0, ",
                                           band.rank_values - 1, "]"));
    }
    ++histogram[static_cast<std::size_t>(ranks[j])];
  }
  const IndexVector c = counts_below(band.points, histogram);
  const double n = static_cast<double>(band.samples);
  if (band.tail_below.size() != band.points.size() || band.tail_above.size() != band.points.size()) {
    throw InvalidArgument("ecdf_band_test: the band has no tail tables (build it with an ecdf_*_band function)");
  }
  EcdfTestResult r;
  r.ecdf_difference = c.cast<double>() / n - band.z;
  r.max_excursion = -std::numeric_limits<double>::infinity();
  for (Index k = 0; k < c.size(); ++k) {
    const double excursion = static_cast<double>(std::max(band.lower[k] - c[k], c[k] - band.upper[k])) / n;
    if (c[k] < band.lower[k] || c[k] > band.upper[k]) ++r.violations;
    if (excursion > r.max_excursion) {
      r.max_excursion = excursion;
      r.worst_point = k;
    }
    const auto ks = static_cast<std::size_t>(k);
    r.min_pointwise_p =
        std::min({r.min_pointwise_p, 2.0 * band.tail_below[ks][c[k]], 2.0 * band.tail_above[ks][c[k]]});
  }
  r.min_pointwise_p = std::min(r.min_pointwise_p, 1.0);
  r.passed = r.violations == 0;
  return r;
}

}  // namespace varflow
