#include "varflow/validation/posterior_agreement.h"

#include <cmath>
#include <limits>
#include <sstream>

#include "varflow/core/error.h"
#include "varflow/validation/statistics.h"

namespace varflow {

namespace {

std::vector<double> entries(const Matrix& m) { return std::vector<double>(m.data(), m.data() + m.size()); }

Vector quantiles(const std::vector<double>& values, const std::vector<double>& levels) {
  Vector q(static_cast<Index>(levels.size()));
  for (std::size_t i = 0; i < levels.size(); ++i) q[static_cast<Index>(i)] = empirical_quantile(values, levels[i]);
  return q;
}

std::string describe(const AgreementLocation& l, const char* statistic) {
  return format_message(statistic, " = ", l.value, " at event ", l.event, " (\"", l.event_name, "\"), component ",
                        l.component, ": fast mean ", l.fast_mean, ", oracle mean ", l.oracle_mean, ", fast std ",
                        l.fast_std, ", oracle std ", l.oracle_std);
}

}  // namespace

void AgreementOptions::validate() const {
  auto fail = [](const std::string& message) { throw InvalidArgument(message); };
  if (!(tolerance_sigma > 0.0) || !std::isfinite(tolerance_sigma)) {
    return fail(format_message("AgreementOptions: tolerance_sigma = ", tolerance_sigma, " must be positive and finite"));
  }
  if (!(min_spread_ratio > 0.0 && min_spread_ratio <= 1.0)) {
    return fail(format_message("AgreementOptions: min_spread_ratio = ", min_spread_ratio, " must be in (0, 1]"));
  }
  if (!(max_spread_ratio >= 1.0) || !std::isfinite(max_spread_ratio)) {
    return fail(format_message("AgreementOptions: max_spread_ratio = ", max_spread_ratio, " must be finite and >= 1"));
  }
  for (std::size_t i = 0; i < quantile_levels.size(); ++i) {
    if (!(quantile_levels[i] >= 0.0 && quantile_levels[i] <= 1.0)) {
      return fail(format_message("AgreementOptions: quantile_levels[", i, "] = ", quantile_levels[i],
                                 " outside [0, 1]"));
    }
  }
}

std::string AgreementResult::report() const {
  std::ostringstream os;
  os.precision(4);
  if (events == 0) return "posterior agreement: not computed (no events): FAIL\n";
  os << "posterior agreement over " << events << " events x " << dimension << " components: "
     << (passed() ? "PASS" : "FAIL") << "\n";
  os << "  mean:   max |d| = " << std::abs(worst_difference.value) << " (tolerance " << options.tolerance_sigma
     << " oracle sigma) " << (mean_passed ? "pass" : "FAIL") << "; mean d = " << mean_difference << "\n";
  os << "          worst: " << describe(worst_difference, "d") << "\n";
  os << "          quantiles of |d|:";
  for (Index i = 0; i < abs_difference_quantiles.size(); ++i) {
    os << " q" << options.quantile_levels[static_cast<std::size_t>(i)] << " = " << abs_difference_quantiles[i];
  }
  os << "\n  spread: ratio fast/oracle std: median " << spread_ratio_median << ", min " << min_spread.value
     << ", max " << max_spread.value << " (band [" << options.min_spread_ratio << ", " << options.max_spread_ratio
     << "]) " << (spread_passed ? "pass" : "FAIL") << "\n";
  os << "          min: " << describe(min_spread, "r") << "\n";
  os << "          max: " << describe(max_spread, "r") << "\n";
  os << "          quantiles of r:";
  for (Index i = 0; i < spread_ratio_quantiles.size(); ++i) {
    os << " q" << options.quantile_levels[static_cast<std::size_t>(i)] << " = " << spread_ratio_quantiles[i];
  }
  os << "\n";
  return os.str();
}

AgreementResult posterior_agreement_gate(const std::vector<AgreementEvent>& events, const AgreementOptions& options) {
  constexpr const char* kWhere = "posterior_agreement_gate";
  with_context(kWhere, [&] { options.validate(); });
  if (events.empty()) throw InvalidArgument(format_message(kWhere, ": the list of held-out events is empty"));

  AgreementResult r;
  r.options = options;
  r.events = static_cast<Index>(events.size());
  for (std::size_t e = 0; e < events.size(); ++e) {
    if (!events[e].fast || !events[e].oracle) {
      throw InvalidArgument(format_message(kWhere, ": event ", e, " (\"", events[e].name, "\") has a null ",
                                           events[e].fast ? "oracle" : "fast", " posterior"));
    }
  }
  r.dimension = events.front().oracle->size();
  r.standardized_difference.resize(r.dimension, r.events);
  r.spread_ratio.resize(r.dimension, r.events);

  const double inf = std::numeric_limits<double>::infinity();
  double worst_abs_d = -1.0, min_ratio = inf, max_ratio = -inf;
  bool non_finite_ratio = false;
  for (Index e = 0; e < r.events; ++e) {
    const AgreementEvent& ev = events[static_cast<std::size_t>(e)];
    const std::string label = format_message("event ", e, " (\"", ev.name, "\")");
    check_size(kWhere, label + " oracle dimension", ev.oracle->size(), r.dimension);
    check_size(kWhere, label + " fast dimension", ev.fast->size(), r.dimension);
    const Vector mo = ev.oracle->mean(), so = ev.oracle->marginal_std();
    const Vector mf = ev.fast->mean(), sf = ev.fast->marginal_std();
    check_size(kWhere, label + " oracle mean", mo.size(), r.dimension);
    check_size(kWhere, label + " oracle std", so.size(), r.dimension);
    check_size(kWhere, label + " fast mean", mf.size(), r.dimension);
    check_size(kWhere, label + " fast std", sf.size(), r.dimension);
    check_finite(kWhere, label + " oracle mean", mo);
    for (Index i = 0; i < r.dimension; ++i) {
      if (!(so[i] > 0.0) || !std::isfinite(so[i])) {
        throw InvalidArgument(format_message(kWhere, ": ", label, " oracle std[", i, "] = ", so[i],
                                             " must be positive and finite"));
      }
      const double d = (mf[i] - mo[i]) / so[i];
      const double ratio = sf[i] / so[i];
      r.standardized_difference(i, e) = d;
      r.spread_ratio(i, e) = ratio;
      AgreementLocation here{e, ev.name, i, d, mf[i], mo[i], sf[i], so[i]};
      const double abs_d = std::isfinite(d) ? std::abs(d) : inf;
      if (abs_d > worst_abs_d) {
        worst_abs_d = abs_d;
        r.worst_difference = here;
      }
      here.value = ratio;
      if (!std::isfinite(ratio) || !(ratio > 0.0)) {
        // A NaN, infinite or non-positive spread fails the spread test; report it as both extremes.
        if (!non_finite_ratio) {
          r.min_spread = here;
          r.max_spread = here;
        }
        non_finite_ratio = true;
        continue;
      }
      if (non_finite_ratio) continue;
      if (ratio < min_ratio) {
        min_ratio = ratio;
        r.min_spread = here;
      }
      if (ratio > max_ratio) {
        max_ratio = ratio;
        r.max_spread = here;
      }
    }
  }
  const std::vector<double> d = entries(r.standardized_difference);
  std::vector<double> abs_d(d.size());
  for (std::size_t i = 0; i < d.size(); ++i) abs_d[i] = std::abs(d[i]);
  r.mean_difference = r.standardized_difference.mean();
  r.abs_difference_quantiles = quantiles(abs_d, options.quantile_levels);
  r.mean_passed = std::isfinite(worst_abs_d) && worst_abs_d <= options.tolerance_sigma;

  const std::vector<double> ratios = entries(r.spread_ratio);
  r.spread_ratio_median = empirical_quantile(ratios, 0.5);
  r.spread_ratio_quantiles = quantiles(ratios, options.quantile_levels);
  r.spread_passed = !non_finite_ratio && min_ratio >= options.min_spread_ratio && max_ratio <= options.max_spread_ratio;
  return r;
}

}  // namespace varflow
