// report.json (nlohmann-json) and the self-contained report.html (inline SVG, no external resources).
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <sstream>

#include "varflow/report/html.h"
#include "varflow/core/error.h"
#include "varflow/io/atomic_file.h"
#include "varflow/io/provenance.h"
#include "varflow/report/svg_plot.h"
#include "varflow/report/validation_report.h"

namespace varflow::report {

std::string escape_html(const std::string& s) {
  std::string out;
  for (const char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

namespace {

// ---- JSON ------------------------------------------------------------------------------------------

// Keys keep their insertion order (the order of design/formats.md).
using Json = nlohmann::ordered_json;

// A number as report.json has always written it: 10 significant digits, and null when not finite
// (JSON has no NaN or infinity).
Json number(double v) {
  if (!std::isfinite(v)) return nullptr;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  return std::strtod(buf, nullptr);
}

Json numbers(const Vector& v) {
  Json out = Json::array();
  for (Index i = 0; i < v.size(); ++i) out.push_back(number(v[i]));
  return out;
}
Json numbers(const std::vector<double>& v) { return numbers(Eigen::Map<const Vector>(v.data(), static_cast<Index>(v.size()))); }
Json rows(const Matrix& m) {  // one array per row
  Json out = Json::array();
  for (Index i = 0; i < m.rows(); ++i) out.push_back(numbers(Vector(m.row(i).transpose())));
  return out;
}
Json integer_rows(const IndexMatrix& m) {
  Json out = Json::array();
  for (Index i = 0; i < m.rows(); ++i) {
    Json row = Json::array();
    for (Index j = 0; j < m.cols(); ++j) row.push_back(m(i, j));
    out.push_back(std::move(row));
  }
  return out;
}
Json integers(const IndexVector& v) { return Json(std::vector<Index>(v.data(), v.data() + v.size())); }

Json agreement_json(const AgreementResult& a) {
  return Json{{"passed", a.passed()},
              {"mean_passed", a.mean_passed},
              {"spread_passed", a.spread_passed},
              {"tolerance_sigma", number(a.options.tolerance_sigma)},
              {"min_spread_ratio", number(a.options.min_spread_ratio)},
              {"max_spread_ratio", number(a.options.max_spread_ratio)},
              {"events", a.events},
              {"max_abs_difference", number(std::abs(a.worst_difference.value))},
              {"worst_event", a.worst_difference.event_name},
              {"worst_component", a.worst_difference.component},
              {"mean_difference", number(a.mean_difference)},
              {"spread_ratio_median", number(a.spread_ratio_median)},
              {"spread_ratio_min", number(a.min_spread.value)},
              {"spread_ratio_max", number(a.max_spread.value)},
              {"standardized_difference", rows(a.standardized_difference.transpose())},
              {"spread_ratio", rows(a.spread_ratio.transpose())}};
}

Json adjoint_json(const AdjointCalibrationResult& r) {
  Json jacobians = Json::array();
  for (const JacobianProbeResult& j : r.jacobians) {
    jacobians.push_back(Json{{"name", j.name},
                             {"passed", j.passed()},
                             {"probes_passed", j.probes_passed},
                             {"operator_norm_passed", j.operator_norm_passed},
                             {"adjoints_passed", j.adjoints_passed},
                             {"probe_errors", numbers(j.probe_errors)},
                             {"max_probe_error", number(j.max_probe_error)},
                             {"mean_probe_error", number(j.mean_probe_error)},
                             {"relative_operator_norm_difference", number(j.relative_operator_norm_difference)},
                             {"oracle_norm", number(j.oracle_norm.norm)},
                             {"fast_dot_product_error", number(j.fast_dot_product.relative_error)},
                             {"oracle_dot_product_error", number(j.oracle_dot_product.relative_error)},
                             {"probe_tolerance", number(j.probe_tolerance)},
                             {"operator_norm_tolerance", number(j.operator_norm_tolerance)}});
  }
  Json linearizations = Json::array();
  for (const LinearizationCaseResult& c : r.linearizations) {
    linearizations.push_back(Json{{"name", c.name}, {"passed", c.passed()}});
  }
  return Json{{"passed", r.passed()}, {"jacobians", std::move(jacobians)}, {"linearizations", std::move(linearizations)}};
}

Json sbc_json(const SbcResult& s) {
  return Json{{"passed", s.passed()},
              {"calibration_passed", s.calibration_passed()},
              {"chi_square_passed", s.chi_square_passed},
              {"ecdf_passed", s.ecdf_passed},
              {"sharpness_passed", s.sharpness_passed},
              {"simulations", s.simulations},
              {"posterior_draws", s.posterior_draws},
              {"dimension", s.dimension},
              {"bins", s.bins},
              {"non_finite_simulations", s.non_finite_simulations},
              {"expected_per_bin", number(s.expected_per_bin)},
              {"histogram_band", Json::array({s.histogram_band_lower, s.histogram_band_upper})},
              {"histogram_band_level", number(s.options.histogram_band_level)},
              {"histogram", integer_rows(s.histogram)},
              {"chi_square", numbers(s.chi_square)},
              {"p_values", numbers(s.p_values)},
              {"p_value_threshold", number(s.chi_square_threshold)},
              {"min_p_value", number(s.min_p_value)},
              {"ecdf_alpha", number(s.ecdf_band.alpha)},
              {"ecdf_z", numbers(s.ecdf_band.z)},
              {"ecdf_band_lower", numbers(s.ecdf_band.lower_difference())},
              {"ecdf_band_upper", numbers(s.ecdf_band.upper_difference())},
              {"ecdf_difference", rows(s.ecdf_difference)},
              {"ecdf_max_excursion", numbers(s.ecdf_max_excursion)},
              {"ecdf_violations", integers(s.ecdf_violations)},
              {"contraction", numbers(s.contraction)},
              {"min_contraction", numbers(s.min_contraction)}};
}

// ---- plots (svg_plot.h) ------------------------------------------------------------------------------

using svg::number_text;
std::string fmt(double v, int digits = 3) { return number_text(v, digits); }

std::vector<double> column(const Matrix& m, Index j) { return {m.col(j).data(), m.col(j).data() + m.rows()}; }
std::vector<double> range(Index n, double start = 0.0) {
  std::vector<double> v(static_cast<std::size_t>(n));
  for (Index i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = start + static_cast<double>(i);
  return v;
}

// Components to plot: all when few, else the `limit` with the smallest SBC p-values.
std::vector<Index> plotted_components(const SbcResult& s, Index limit) {
  std::vector<Index> c(static_cast<std::size_t>(s.dimension));
  std::iota(c.begin(), c.end(), Index{0});
  if (s.dimension > limit) {
    std::stable_sort(c.begin(), c.end(), [&](Index a, Index b) { return s.p_values[a] < s.p_values[b]; });
    c.resize(static_cast<std::size_t>(limit));
    std::sort(c.begin(), c.end());
  }
  return c;
}

// SBC rank histogram of component i: translucent bars (red outside the band), the band of one bin's
// count under uniform ranks drawn above them, the expected count dashed.
std::string rank_histogram_svg(const SbcResult& s, Index i) {
  svg::Plot p(format_message("x[", i, "]: SBC p = ", fmt(s.p_values[i])), "rank of the truth among the draws",
              "simulations per bin");
  const double width = static_cast<double>(s.posterior_draws + 1) / static_cast<double>(s.bins);
  std::vector<double> l_in, r_in, c_in, l_out, r_out, c_out;
  for (Index b = 0; b < s.bins; ++b) {
    const bool outside = s.histogram(i, b) < s.histogram_band_lower || s.histogram(i, b) > s.histogram_band_upper;
    (outside ? l_out : l_in).push_back(static_cast<double>(b) * width);
    (outside ? r_out : r_in).push_back(static_cast<double>(b + 1) * width);
    (outside ? c_out : c_in).push_back(static_cast<double>(s.histogram(i, b)));
  }
  p.bars("count", l_in, r_in, c_in, svg::kNeutral, 0.45);
  if (!l_out.empty()) p.bars("outside band", l_out, r_out, c_out, svg::kFail, 0.55);
  p.y_band(format_message(fmt(100.0 * s.options.histogram_band_level), "% band"),
           static_cast<double>(s.histogram_band_lower), static_cast<double>(s.histogram_band_upper), svg::kOracle,
           0.22);
  p.y_line("expected", s.expected_per_bin, svg::kOracle);
  if (!l_out.empty() && s.passed()) {
    p.note(format_message("pointwise band: ~", fmt(100.0 * (1.0 - s.options.histogram_band_level)),
                          "% of bins fall outside by chance"));
  }
  p.x_range(0.0, static_cast<double>(s.posterior_draws + 1)).integer_x();
  return p.svg();
}

std::string ecdf_svg(const SbcResult& s, Index i) {
  const Vector lo = s.ecdf_band.lower_difference(), hi = s.ecdf_band.upper_difference();
  const std::vector<double> z(s.ecdf_band.z.data(), s.ecdf_band.z.data() + s.ecdf_band.z.size());
  std::vector<double> d;
  for (Index k = 0; k < s.ecdf_difference.cols(); ++k) d.push_back(s.ecdf_difference(i, k));
  svg::Plot p(format_message("x[", i, "]: ", s.ecdf_violations[i], " points outside"), "fractional rank z",
              "ECDF difference F(z) - z");
  p.band(format_message(fmt(100.0 * (1.0 - s.ecdf_band.alpha), 4), "% simultaneous band"), z,
         {lo.data(), lo.data() + lo.size()}, {hi.data(), hi.data() + hi.size()}, svg::kOracle, 0.22);
  p.line("F(z) - z", z, d, s.ecdf_violations[i] > 0 ? svg::kFail : "#222");
  p.x_range(0.0, 1.0);
  return p.svg();
}

// Contraction 1 - var_post / var_prior per component against its threshold.
std::string contraction_svg(const SbcResult& s) {
  svg::Plot p("contraction per component", "state component", "1 - posterior var / prior var (1)",
              std::max(360, static_cast<int>(std::min<Index>(s.contraction.size(), 80) * 8 + 100)));
  const std::vector<double> c(s.contraction.data(), s.contraction.data() + s.contraction.size());
  std::vector<double> x_fail, c_fail, x_ok, c_ok;
  for (Index i = 0; i < s.contraction.size(); ++i) {
    const bool ok = i < s.min_contraction.size() && std::isfinite(c[static_cast<std::size_t>(i)]) &&
                    c[static_cast<std::size_t>(i)] >= s.min_contraction[i];
    (ok ? x_ok : x_fail).push_back(static_cast<double>(i));
    (ok ? c_ok : c_fail).push_back(c[static_cast<std::size_t>(i)]);
  }
  p.points("contraction", x_ok, c_ok, svg::kFast, 3.0);
  if (!x_fail.empty()) p.points("below threshold", x_fail, c_fail, svg::kFail, 3.0);
  if (s.min_contraction.size() > 0) {
    const std::vector<double> t(s.min_contraction.data(), s.min_contraction.data() + s.min_contraction.size());
    p.line("threshold", range(s.min_contraction.size()), t, svg::kFail, true);
  }
  p.y_range(std::min(0.0, s.contraction.size() ? s.contraction.minCoeff() : 0.0), 1.0).integer_x();
  return p.svg();
}

// Every event's standardised differences d = (mean_fast - mean_oracle) / sigma_oracle per component:
// one point per event at each component, the worst event highlighted, the +-tolerance band.
std::string standardized_difference_svg(const AgreementResult& a, const std::vector<EventComparison>& events,
                                        Index worst) {
  const Matrix& d = a.standardized_difference;  // components x events
  svg::Plot p("standardised difference per component", "state component",
              "d = (mean fast - mean oracle) / sigma oracle (1)",
              std::max(420, static_cast<int>(std::min<Index>(d.rows(), 80) * 9 + 100)), 260);
  const double t = a.options.tolerance_sigma;
  p.y_band(format_message("|d| <= ", fmt(t)), -t, t, "#2e7d32", 0.15);
  std::vector<double> x, y;
  for (Index e = 0; e < d.cols(); ++e) {
    if (e == worst) continue;
    for (Index i = 0; i < d.rows(); ++i) {
      x.push_back(static_cast<double>(i));
      y.push_back(d(i, e));
    }
  }
  p.points(format_message("each event (", d.cols(), ")"), x, y, "#777", 1.8);
  if (worst >= 0 && worst < d.cols()) {
    p.points(format_message("worst: ", events[static_cast<std::size_t>(worst)].name), range(d.rows()),
             column(d, worst), svg::kFail, 2.8);
  }
  p.y_line("", 0.0, "#999", false);
  p.integer_x();
  return p.svg();
}

// Spread ratio r = sigma_fast / sigma_oracle per component, every event, with the allowed band.
std::string spread_ratio_svg(const AgreementResult& a) {
  const Matrix& r = a.spread_ratio;
  svg::Plot p("spread ratio per component", "state component", "sigma fast / sigma oracle (1)",
              std::max(420, static_cast<int>(std::min<Index>(r.rows(), 80) * 9 + 100)), 260);
  p.y_band(format_message("allowed [", fmt(a.options.min_spread_ratio), ", ", fmt(a.options.max_spread_ratio), "]"),
           a.options.min_spread_ratio, a.options.max_spread_ratio, "#2e7d32", 0.15);
  std::vector<double> x, y;
  for (Index e = 0; e < r.cols(); ++e)
    for (Index i = 0; i < r.rows(); ++i) {
      x.push_back(static_cast<double>(i));
      y.push_back(r(i, e));
    }
  p.points(format_message("each event (", r.cols(), ")"), x, y, svg::kFast, 1.8);
  p.y_line("", 1.0, "#999", false);
  p.integer_x();
  return p.svg();
}

// One strip per event: the d of all its components at x = event, with the +-tolerance band.
std::string event_strips_svg(const AgreementResult& a) {
  const Matrix& d = a.standardized_difference;
  svg::Plot p("every event: d of all components", "held-out event", "d (oracle sigmas)",
              std::max(420, static_cast<int>(std::min<Index>(d.cols(), 100) * 16 + 100)), 240);
  const double t = a.options.tolerance_sigma;
  p.y_band(format_message("|d| <= ", fmt(t)), -t, t, "#2e7d32", 0.15);
  std::vector<double> x_in, y_in, x_out, y_out;
  Index non_finite = 0;
  for (Index e = 0; e < d.cols(); ++e)
    for (Index i = 0; i < d.rows(); ++i) {
      if (!std::isfinite(d(i, e))) {
        ++non_finite;
        continue;
      }
      const bool out = std::abs(d(i, e)) > t;
      (out ? x_out : x_in).push_back(static_cast<double>(e));
      (out ? y_out : y_in).push_back(d(i, e));
    }
  p.points("component", x_in, y_in, "#555", 1.8);
  if (!x_out.empty()) p.points("outside", x_out, y_out, svg::kFail, 2.2);
  if (non_finite > 0) p.note(format_message(non_finite, " non-finite d (a failed fast posterior) not drawn"));
  p.x_range(-0.7, static_cast<double>(d.cols()) - 0.3).integer_x();
  return p.svg();
}

// One event in full: per component the oracle mean +-1 sigma (left) and the fast one (right).
std::string event_svg(const EventComparison& e, double max_abs_d) {
  const Index n = e.oracle_mean.size();
  std::vector<double> xo, xf, om, olo, ohi, fm, flo, fhi;
  for (Index i = 0; i < n; ++i) {
    xo.push_back(static_cast<double>(i) - 0.18);
    xf.push_back(static_cast<double>(i) + 0.18);
    om.push_back(e.oracle_mean[i]);
    olo.push_back(e.oracle_mean[i] - e.oracle_std[i]);
    ohi.push_back(e.oracle_mean[i] + e.oracle_std[i]);
    fm.push_back(e.fast_mean[i]);
    flo.push_back(e.fast_mean[i] - e.fast_std[i]);
    fhi.push_back(e.fast_mean[i] + e.fast_std[i]);
  }
  svg::Plot p(format_message(e.name, ": max |d| = ", fmt(max_abs_d)), "state component",
              "posterior mean +-1 sigma (1)", std::max(360, static_cast<int>(std::min<Index>(n, 60) * 14 + 100)));
  p.error_bars("oracle", xo, om, olo, ohi, svg::kOracle);
  p.error_bars("fast", xf, fm, flo, fhi, svg::kFast);
  p.x_range(-0.6, static_cast<double>(n) - 0.4).integer_x();
  return p.svg();
}

std::string probes_svg(const JacobianProbeResult& j) {
  std::vector<double> x_ok, e_ok, x_bad, e_bad;
  double top = 2.0 * j.probe_tolerance;
  for (std::size_t k = 0; k < j.probe_errors.size(); ++k) {
    const double e = j.probe_errors[k];
    const bool ok = std::isfinite(e) && e < j.probe_tolerance;
    if (std::isfinite(e)) top = std::max(top, 1.1 * e);
    (ok ? x_ok : x_bad).push_back(static_cast<double>(k + 1));
    (ok ? e_ok : e_bad).push_back(std::isfinite(e) ? e : 1e300);  // a non-finite error drawn at the top
  }
  svg::Plot p(format_message(j.name, ": rho = ", fmt(j.relative_operator_norm_difference)), "probe",
              "relative error of J v (1)");
  p.y_line(format_message("tolerance ", fmt(j.probe_tolerance)), j.probe_tolerance, svg::kFail);
  p.points("within", x_ok, e_ok, "#222", 3.0);
  if (!x_bad.empty()) p.points("above tolerance", x_bad, e_bad, svg::kFail, 3.0);
  p.y_range(0.0, top).x_range(0.0, static_cast<double>(j.probe_errors.size()) + 1.0).integer_x();
  return p.svg();
}

std::string loss_svg(const nn::TrainingSummary& t) {
  const std::vector<double> epochs = range(static_cast<Index>(t.train_loss.size()), 1.0);
  svg::Plot p("loss per epoch", "epoch", "loss (normalised units)", 560, 260);
  p.line("training", epochs, t.train_loss, "#222");
  p.line("validation", range(static_cast<Index>(t.validation_loss.size()), 1.0), t.validation_loss, svg::kFast);
  p.integer_x();
  return p.svg();
}

std::string verdict(bool passed) {
  return passed ? "<span class=\"pass\">PASS</span>" : "<span class=\"fail\">FAIL</span>";
}

}  // namespace

std::string report_json(const ValidationReport& r) {
  const auto& d = r.decision;
  Json events = Json::array();
  for (const EventComparison& e : r.events) {
    events.push_back(Json{{"name", e.name},
                          {"y", numbers(e.y)},
                          {"fast_mean", numbers(e.fast_mean)},
                          {"fast_std", numbers(e.fast_std)},
                          {"oracle_mean", numbers(e.oracle_mean)},
                          {"oracle_std", numbers(e.oracle_std)}});
  }
  const auto& t = r.training;
  Json failed = Json::array();
  for (Gate g : d.failed_gates()) failed.push_back(to_string(g));
  const Json report{
      {"format", "varflow_validation_report"},
      {"format_version", 1},
      {"varflow_version", r.version},
      {"model", r.model_path},
      {"model_checksum", r.model_checksum},
      {"problem", r.problem},
      {"problem_description", r.problem_description},
      {"head", r.head},
      {"oracle", r.oracle_description},
      {"seed", r.seed},
      // The run's provenance (io/provenance.h), as in the netCDF files.
      {"date_created", utc_timestamp()},
      {"command_line", run_provenance().command_line},
      {"config", run_provenance().config},
      {"config_hash", provenance_config_hash(run_provenance().config)},
      {"seconds", number(r.seconds)},
      {"state_size", r.shape.state_size},
      {"obs_size", r.shape.obs_size},
      {"passed", r.passed()},
      {"failed_gates", std::move(failed)},
      {"gates",
       {{"posterior_agreement", agreement_json(d.agreement)},
        {"adjoint_calibration", adjoint_json(d.adjoint_calibration)},
        {"simulation_based_calibration", sbc_json(d.sbc)}}},
      {"events", std::move(events)},
      {"training",
       {{"stored", r.training_stored},
        {"status", nn::to_string(t.status)},
        {"message", t.message},
        {"epochs_run", t.epochs_run},
        {"best_epoch", t.best_epoch},
        {"best_validation_loss", number(t.best_validation_loss)},
        {"train_loss", numbers(t.train_loss)},
        {"validation_loss", numbers(t.validation_loss)},
        {"learning_rate", numbers(t.learning_rate)}}},
      {"notes", r.notes}};
  // Indented, so that every key reads `"key": value`; invalid UTF-8 in a text field is replaced.
  return report.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

std::string report_html(const ValidationReport& r) {
  const auto& d = r.decision;
  const auto& s = d.sbc;
  std::ostringstream h;
  h << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>varflow validation: "
    << escape_html(r.problem) << "</title><style>"
    << "body{font-family:sans-serif;margin:20px;max-width:1150px;color:#222}"
    << "h1{font-size:20px}h2{font-size:16px;margin-top:26px;border-bottom:1px solid #ccc}"
    << "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}"
    << ".pass{color:#fff;background:#2e7d32;padding:1px 6px;border-radius:3px;font-weight:bold}"
    << ".fail{color:#fff;background:#c62828;padding:1px 6px;border-radius:3px;font-weight:bold}"
    << ".grid{display:flex;flex-wrap:wrap;gap:6px}h3{font-size:14px}p.caption{font-size:12px;color:#555;max-width:1000px}"
    << "pre{font-size:11px;background:#f6f6f6;padding:8px;overflow-x:auto}</style></head><body>\n";
  h << "<h1>varflow validation report " << verdict(r.passed()) << "</h1>\n<table>"
    << "<tr><th>model</th><td>" << escape_html(r.model_path) << " (checksum " << escape_html(r.model_checksum)
    << ")</td></tr>"
    << "<tr><th>problem</th><td>" << escape_html(r.problem_description) << "</td></tr>"
    << "<tr><th>head</th><td>" << escape_html(r.head) << "</td></tr>"
    << "<tr><th>oracle</th><td>" << escape_html(r.oracle_description) << "</td></tr>"
    << "<tr><th>seed</th><td>" << r.seed << "</td></tr>"
    << "<tr><th>varflow</th><td>" << escape_html(r.version) << "</td></tr>"
    << "<tr><th>run time</th><td>" << fmt(r.seconds) << " s</td></tr></table>\n"
    << "<p class=\"caption\">Each plot names its axes with their units (the state is dimensionless: units 1); "
       "the legend above each frame says what every mark is.</p>\n";

  h << "<h2>Gates</h2><table><tr><th>gate</th><th>result</th><th>key figures</th></tr>";
  h << "<tr><td>posterior agreement</td><td>" << verdict(d.agreement.passed()) << "</td><td>max |d| = "
    << fmt(std::abs(d.agreement.worst_difference.value)) << " (limit " << fmt(d.agreement.options.tolerance_sigma)
    << "), spread ratio in [" << fmt(d.agreement.min_spread.value) << ", " << fmt(d.agreement.max_spread.value)
    << "] (limits " << fmt(d.agreement.options.min_spread_ratio) << ", " << fmt(d.agreement.options.max_spread_ratio)
    << "), " << d.agreement.events << " events</td></tr>";
  double worst_probe = 0.0, worst_rho = 0.0;
  for (const auto& j : d.adjoint_calibration.jacobians) {
    worst_probe = std::max(worst_probe, std::isfinite(j.max_probe_error) ? j.max_probe_error : INFINITY);
    worst_rho = std::max(worst_rho, std::isfinite(j.relative_operator_norm_difference)
                                        ? j.relative_operator_norm_difference
                                        : INFINITY);
  }
  h << "<tr><td>adjoint calibration</td><td>" << verdict(d.adjoint_calibration.passed())
    << "</td><td>max probe error " << fmt(worst_probe) << " (limit "
    << fmt(d.adjoint_calibration.jacobians.empty() ? 0.0 : d.adjoint_calibration.jacobians[0].probe_tolerance)
    << "), max rho " << fmt(worst_rho) << ", " << d.adjoint_calibration.jacobians.size()
    << " Jacobian cases</td></tr>";
  h << "<tr><td>simulation-based calibration</td><td>" << verdict(s.passed()) << "</td><td>min p = "
    << fmt(s.min_p_value) << " (limit " << fmt(s.chi_square_threshold) << "), ECDF "
    << (s.ecdf_passed ? "inside" : "outside") << " band, min contraction "
    << fmt(s.contraction.size() ? s.contraction.minCoeff() : NAN) << ", " << s.simulations << " simulations x "
    << s.posterior_draws << " draws</td></tr></table>\n";
  if (!r.notes.empty()) {
    h << "<h2>Notes</h2><ul>";
    for (const auto& n : r.notes) h << "<li>" << escape_html(n) << "</li>";
    h << "</ul>";
  }

  const auto comps = plotted_components(s, 12);
  const bool subset = static_cast<Index>(comps.size()) < s.dimension;
  h << "<h2>SBC rank histograms</h2><p class=\"caption\">Ranks of the true state among " << s.posterior_draws
    << " fast-posterior draws over " << s.simulations << " simulations, in " << s.bins
    << " bins. Shaded: the pointwise " << fmt(100.0 * s.options.histogram_band_level)
    << "% binomial band of one bin's count under uniform ranks; dashed: the expected count " << fmt(s.expected_per_bin)
    << ". Red bars lie outside the band; being pointwise, the band leaves about "
    << fmt(100.0 * (1.0 - s.options.histogram_band_level))
    << "% of bins outside by chance, so the verdict is the chi-square test and the ECDF band, not single bars. "
       "A hump means over-dispersion, a U shape under-dispersion, a slope bias."
    << (subset ? format_message(" Shown: the ", comps.size(), " of ", s.dimension,
                                " components with the smallest p-values.")
               : std::string())
    << "</p><div class=\"grid\">";
  for (Index i : comps) h << rank_histogram_svg(s, i);
  h << "</div>\n<h2>ECDF difference</h2><p class=\"caption\">F(z) - z of the fractional ranks with the "
    << "simultaneous " << fmt(100.0 * (1.0 - s.ecdf_band.alpha), 4)
    << "% band (Sailynoja, Burkner &amp; Vehtari 2022; level corrected for " << s.dimension
    << " components). The curve must stay inside the shaded band.</p><div class=\"grid\">";
  for (Index i : comps) h << ecdf_svg(s, i);
  h << "</div>\n<h3>Contraction</h3><p class=\"caption\">1 - posterior variance / prior variance of every "
    << "component against its threshold (the sharpness check): near 0 the observation teaches nothing, near 1 it "
    << "pins the component down.</p>" << contraction_svg(s) << "\n";

  // Posterior agreement: every event and component, then the worst events in full.
  const AgreementResult& a = d.agreement;
  std::vector<std::pair<double, Index>> by_worst;  // (max |d| of the event, event)
  for (Index e = 0; e < a.standardized_difference.cols(); ++e) {
    double m = 0.0;
    for (Index i = 0; i < a.standardized_difference.rows(); ++i) {
      const double v = std::abs(a.standardized_difference(i, e));
      m = std::isfinite(v) ? std::max(m, v) : INFINITY;
    }
    by_worst.emplace_back(m, e);
  }
  std::stable_sort(by_worst.begin(), by_worst.end(), [](const auto& x, const auto& y) { return x.first > y.first; });
  const Index worst = by_worst.empty() ? -1 : by_worst.front().second;
  h << "<h2>Fast against oracle</h2><p class=\"caption\">The posterior agreement gate compares, at "
    << a.events << " held-out events, the fast posterior's mean and marginal spread with the oracle's, "
    << "per component: the standardised difference d = (mean fast - mean oracle) / sigma oracle must lie within "
    << "+-" << fmt(a.options.tolerance_sigma) << " and the spread ratio sigma fast / sigma oracle inside ["
    << fmt(a.options.min_spread_ratio) << ", " << fmt(a.options.max_spread_ratio)
    << "]. Each point is one component of one event.</p><div class=\"grid\">"
    << standardized_difference_svg(a, r.events, worst) << spread_ratio_svg(a) << "</div>\n"
    << "<h3>Every event</h3><p class=\"caption\">One strip per event: the d of all its components.</p>"
    << event_strips_svg(a) << "\n<h3>The worst events in full</h3><p class=\"caption\">Posterior means with +-1 "
    << "marginal standard deviation, oracle (blue, left) and fast (orange, right), for the events with the largest "
    << "max |d|.</p><div class=\"grid\">";
  for (std::size_t k = 0; k < std::min<std::size_t>(3, by_worst.size()); ++k) {
    const auto e = static_cast<std::size_t>(by_worst[k].second);
    if (e < r.events.size()) h << event_svg(r.events[e], by_worst[k].first);
  }
  h << "</div>\n<h2>Jacobian probes</h2><p class=\"caption\">Relative error ||J_fast v - J_oracle v|| / "
    << "||J_oracle v|| of the sensitivity of the posterior mean to the observations for random unit probes v, "
    << "against the tolerance (dashed). rho is the relative operator-norm difference.</p><div class=\"grid\">";
  for (const auto& j : d.adjoint_calibration.jacobians) h << probes_svg(j);
  h << "</div>\n<h2>Training</h2>";
  if (r.training_stored) {
    h << "<p class=\"caption\">" << r.training.epochs_run << " epochs, status " << nn::to_string(r.training.status)
      << ", best validation loss " << fmt(r.training.best_validation_loss, 5) << " at epoch "
      << r.training.best_epoch << " (normalised units).</p>" << loss_svg(r.training);
  } else {
    h << "<p>The model file holds no training loss curves.</p>";
  }
  h << "\n<h2>Full gate reports</h2><pre>" << escape_html(d.report()) << "</pre>\n</body></html>\n";
  return h.str();
}

void write_report(const ValidationReport& r, const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec || !std::filesystem::is_directory(dir)) {
    throw InvalidArgument(format_message("--out = '", dir.string(), "' is not a directory and cannot be created",
                                         ec ? ": " + ec.message() : std::string()));
  }
  write_text_atomically(dir / "report.json", report_json(r));
  write_text_atomically(dir / "report.html", report_html(r));
}

}  // namespace varflow::report
