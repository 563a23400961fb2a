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

// ---- SVG -------------------------------------------------------------------------------------------

std::string fmt(double v, int digits = 3) {
  if (!std::isfinite(v)) return "n/a";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*g", digits, v);
  return buf;
}

// A plot area: data ranges mapped to a w x h pixel box with margins for labels.
struct Frame {
  double x0, x1, y0, y1;
  int w = 260, h = 170;
  int left = 44, right = 8, top = 20, bottom = 22;
  double px(double x) const { return left + (x - x0) / (x1 - x0) * (w - left - right); }
  double py(double y) const {
    const double c = std::clamp(y, y0, y1);
    return top + (y1 - c) / (y1 - y0) * (h - top - bottom);
  }
};

std::string svg_open(const Frame& f, const std::string& title, const std::string& xlabel) {
  std::ostringstream s;
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << f.w << "\" height=\"" << f.h << "\" viewBox=\"0 0 "
    << f.w << ' ' << f.h << "\" font-family=\"sans-serif\" font-size=\"10\">"
    << "<rect x=\"0\" y=\"0\" width=\"" << f.w << "\" height=\"" << f.h << "\" fill=\"white\"/>"
    << "<text x=\"" << f.left << "\" y=\"13\" font-size=\"11\" font-weight=\"bold\">" << escape_html(title)
    << "</text>"
    << "<rect x=\"" << f.left << "\" y=\"" << f.top << "\" width=\"" << f.w - f.left - f.right << "\" height=\""
    << f.h - f.top - f.bottom << "\" fill=\"none\" stroke=\"#888\"/>"
    // y range labels, x range labels
    << "<text x=\"" << f.left - 3 << "\" y=\"" << f.top + 8 << "\" text-anchor=\"end\">" << fmt(f.y1) << "</text>"
    << "<text x=\"" << f.left - 3 << "\" y=\"" << f.h - f.bottom << "\" text-anchor=\"end\">" << fmt(f.y0)
    << "</text>"
    << "<text x=\"" << f.left << "\" y=\"" << f.h - 8 << "\">" << fmt(f.x0) << "</text>"
    << "<text x=\"" << f.w - f.right << "\" y=\"" << f.h - 8 << "\" text-anchor=\"end\">" << fmt(f.x1) << "</text>"
    << "<text x=\"" << (f.left + f.w - f.right) / 2 << "\" y=\"" << f.h - 8 << "\" text-anchor=\"middle\">"
    << escape_html(xlabel) << "</text>";
  return s.str();
}

std::string polyline(const Frame& f, const std::vector<double>& x, const std::vector<double>& y,
                     const std::string& style) {
  std::ostringstream s;
  s << "<polyline fill=\"none\" " << style << " points=\"";
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (!std::isfinite(y[i])) continue;
    s << fmt(f.px(x[i]), 6) << ',' << fmt(f.py(y[i]), 6) << ' ';
  }
  s << "\"/>";
  return s.str();
}

std::string hline(const Frame& f, double y, const std::string& style) {
  std::ostringstream s;
  s << "<line x1=\"" << f.left << "\" x2=\"" << f.w - f.right << "\" y1=\"" << fmt(f.py(y), 6) << "\" y2=\""
    << fmt(f.py(y), 6) << "\" " << style << "/>";
  return s.str();
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

std::string rank_histogram_svg(const SbcResult& s, Index i) {
  const double ymax = std::max<double>(static_cast<double>(s.histogram.row(i).maxCoeff()),
                                       static_cast<double>(s.histogram_band_upper)) * 1.1 + 1.0;
  Frame f{0.0, static_cast<double>(s.posterior_draws + 1), 0.0, ymax};
  std::ostringstream o;
  o << svg_open(f, format_message("x[", i, "]  p = ", fmt(s.p_values[i])), "rank");
  // The band of one bin's count under uniform ranks.
  o << "<rect x=\"" << f.px(f.x0) << "\" width=\"" << f.px(f.x1) - f.px(f.x0) << "\" y=\""
    << f.py(static_cast<double>(s.histogram_band_upper)) << "\" height=\""
    << f.py(static_cast<double>(s.histogram_band_lower)) - f.py(static_cast<double>(s.histogram_band_upper))
    << "\" fill=\"#cfe3f7\"/>";
  const double width = static_cast<double>(s.posterior_draws + 1) / static_cast<double>(s.bins);
  for (Index b = 0; b < s.bins; ++b) {
    const double c = static_cast<double>(s.histogram(i, b));
    const bool outside = s.histogram(i, b) < s.histogram_band_lower || s.histogram(i, b) > s.histogram_band_upper;
    o << "<rect x=\"" << fmt(f.px(b * width) + 0.5, 6) << "\" width=\""
      << fmt(f.px((b + 1) * width) - f.px(b * width) - 1.0, 6) << "\" y=\"" << fmt(f.py(c), 6) << "\" height=\""
      << fmt(f.py(0.0) - f.py(c), 6) << "\" fill=\"" << (outside ? "#d9534f" : "#777") << "\"/>";
  }
  o << hline(f, s.expected_per_bin, "stroke=\"#1f5fa8\" stroke-dasharray=\"3,2\"") << "</svg>";
  return o.str();
}

std::string ecdf_svg(const SbcResult& s, Index i) {
  const Vector lo = s.ecdf_band.lower_difference(), hi = s.ecdf_band.upper_difference();
  const double m = std::max({hi.cwiseAbs().maxCoeff(), lo.cwiseAbs().maxCoeff(),
                             s.ecdf_difference.row(i).cwiseAbs().maxCoeff()}) * 1.15;
  Frame f{0.0, 1.0, -m, m};
  std::ostringstream o;
  o << svg_open(f, format_message("x[", i, "]  ", s.ecdf_violations[i], " points outside"), "fractional rank z");
  std::ostringstream band;
  band << "<polygon fill=\"#cfe3f7\" points=\"";
  for (Index k = 0; k < s.ecdf_band.z.size(); ++k) band << fmt(f.px(s.ecdf_band.z[k]), 6) << ',' << fmt(f.py(hi[k]), 6) << ' ';
  for (Index k = s.ecdf_band.z.size() - 1; k >= 0; --k)
    band << fmt(f.px(s.ecdf_band.z[k]), 6) << ',' << fmt(f.py(lo[k]), 6) << ' ';
  band << "\"/>";
  o << band.str() << hline(f, 0.0, "stroke=\"#999\"");
  std::vector<double> z(s.ecdf_band.z.data(), s.ecdf_band.z.data() + s.ecdf_band.z.size()), d;
  for (Index k = 0; k < s.ecdf_difference.cols(); ++k) d.push_back(s.ecdf_difference(i, k));
  o << polyline(f, z, d, std::string("stroke=\"") + (s.ecdf_violations[i] > 0 ? "#d9534f" : "#222") +
                             "\" stroke-width=\"1.5\"")
    << "</svg>";
  return o.str();
}

std::string means_svg(const EventComparison& e) {
  const Index n = e.oracle_mean.size();
  double lo = 0.0, hi = 0.0;
  bool first = true;
  for (Index i = 0; i < n; ++i) {
    for (double v : {e.oracle_mean[i] - e.oracle_std[i], e.oracle_mean[i] + e.oracle_std[i],
                     e.fast_mean[i] - e.fast_std[i], e.fast_mean[i] + e.fast_std[i]}) {
      if (!std::isfinite(v)) continue;
      lo = first ? v : std::min(lo, v);
      hi = first ? v : std::max(hi, v);
      first = false;
    }
  }
  if (hi <= lo) hi = lo + 1.0;
  const double pad = 0.08 * (hi - lo);
  Frame f{-0.5, static_cast<double>(n) - 0.5, lo - pad, hi + pad};
  f.w = std::max<int>(360, static_cast<int>(std::min<Index>(n, 60) * 18 + 60));
  f.h = 200;
  std::ostringstream o;
  o << svg_open(f, e.name + ": oracle (blue) and fast (orange), mean +-1 sigma", "component");
  auto bar = [&](double x, double m, double sd, const char* colour) {
    if (!std::isfinite(m) || !std::isfinite(sd)) return;
    o << "<line x1=\"" << fmt(f.px(x), 6) << "\" x2=\"" << fmt(f.px(x), 6) << "\" y1=\"" << fmt(f.py(m - sd), 6)
      << "\" y2=\"" << fmt(f.py(m + sd), 6) << "\" stroke=\"" << colour << "\" stroke-width=\"1.5\"/>"
      << "<circle cx=\"" << fmt(f.px(x), 6) << "\" cy=\"" << fmt(f.py(m), 6) << "\" r=\"2.5\" fill=\"" << colour
      << "\"/>";
  };
  const double off = 0.18;
  for (Index i = 0; i < n; ++i) {
    bar(static_cast<double>(i) - off, e.oracle_mean[i], e.oracle_std[i], "#1f5fa8");
    bar(static_cast<double>(i) + off, e.fast_mean[i], e.fast_std[i], "#e07b00");
  }
  o << "</svg>";
  return o.str();
}

std::string probes_svg(const JacobianProbeResult& j) {
  double ymax = 2.0 * j.probe_tolerance;
  for (double e : j.probe_errors)
    if (std::isfinite(e)) ymax = std::max(ymax, e * 1.1);
  Frame f{0.0, static_cast<double>(j.probe_errors.size()) + 1.0, 0.0, ymax};
  std::ostringstream o;
  o << svg_open(f, format_message(j.name, ": probe errors, rho = ", fmt(j.relative_operator_norm_difference)),
                "probe");
  o << hline(f, j.probe_tolerance, "stroke=\"#d9534f\" stroke-dasharray=\"4,2\"");
  for (std::size_t k = 0; k < j.probe_errors.size(); ++k) {
    const double e = j.probe_errors[k];
    o << "<circle cx=\"" << fmt(f.px(static_cast<double>(k + 1)), 6) << "\" cy=\""
      << fmt(f.py(std::isfinite(e) ? e : ymax), 6) << "\" r=\"3\" fill=\""
      << (std::isfinite(e) && e < j.probe_tolerance ? "#222" : "#d9534f") << "\"/>";
  }
  o << "</svg>";
  return o.str();
}

std::string loss_svg(const nn::TrainingSummary& t) {
  std::vector<double> x, tr, va;
  double lo = 0.0, hi = 0.0;
  bool first = true;
  for (std::size_t e = 0; e < t.train_loss.size(); ++e) {
    x.push_back(static_cast<double>(e + 1));
    tr.push_back(t.train_loss[e]);
    va.push_back(e < t.validation_loss.size() ? t.validation_loss[e] : std::nan(""));
    for (double v : {tr.back(), va.back()}) {
      if (!std::isfinite(v)) continue;
      lo = first ? v : std::min(lo, v);
      hi = first ? v : std::max(hi, v);
      first = false;
    }
  }
  if (hi <= lo) hi = lo + 1.0;
  Frame f{1.0, std::max(2.0, static_cast<double>(x.size())), lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo)};
  f.w = 520;
  f.h = 240;
  std::ostringstream o;
  o << svg_open(f, "training (black) and validation (orange) loss", "epoch")
    << polyline(f, x, tr, "stroke=\"#222\" stroke-width=\"1.5\"")
    << polyline(f, x, va, "stroke=\"#e07b00\" stroke-width=\"1.5\"") << "</svg>";
  return o.str();
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
      {"problem", r.problem},
      {"problem_description", r.problem_description},
      {"head", r.head},
      {"oracle", r.oracle_description},
      {"seed", r.seed},
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
    << ".grid{display:flex;flex-wrap:wrap;gap:6px}p.caption{font-size:12px;color:#555;max-width:1000px}"
    << "pre{font-size:11px;background:#f6f6f6;padding:8px;overflow-x:auto}</style></head><body>\n";
  h << "<h1>varflow validation report " << verdict(r.passed()) << "</h1>\n<table>"
    << "<tr><th>model</th><td>" << escape_html(r.model_path) << "</td></tr>"
    << "<tr><th>problem</th><td>" << escape_html(r.problem_description) << "</td></tr>"
    << "<tr><th>head</th><td>" << escape_html(r.head) << "</td></tr>"
    << "<tr><th>oracle</th><td>" << escape_html(r.oracle_description) << "</td></tr>"
    << "<tr><th>seed</th><td>" << r.seed << "</td></tr>"
    << "<tr><th>varflow</th><td>" << escape_html(r.version) << "</td></tr>"
    << "<tr><th>run time</th><td>" << fmt(r.seconds) << " s</td></tr></table>\n";

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
    << ". Red bars lie outside the band. A hump means over-dispersion, a U shape under-dispersion, a slope bias."
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
  h << "</div><p class=\"caption\">Contraction 1 - posterior variance / prior variance per component: ";
  for (Index i = 0; i < s.contraction.size(); ++i) h << (i ? ", " : "") << fmt(s.contraction[i], 2);
  h << " (threshold " << fmt(s.min_contraction.size() ? s.min_contraction.minCoeff() : NAN) << ").</p>\n";

  h << "<h2>Fast against oracle</h2><p class=\"caption\">Posterior means with +-1 marginal standard deviation "
    << "at held-out events: oracle in blue (left), fast in orange (right). The agreement gate requires every "
    << "fast mean within " << fmt(d.agreement.options.tolerance_sigma)
    << " oracle sigma and every spread ratio inside its band.</p><div class=\"grid\">";
  for (std::size_t e = 0; e < std::min<std::size_t>(3, r.events.size()); ++e) h << means_svg(r.events[e]);
  h << "</div>\n<h2>Jacobian probes</h2><p class=\"caption\">Relative error ||J_fast v - J_oracle v|| / "
    << "||J_oracle v|| of the sensitivity of the posterior mean to the observations for random unit probes v; "
    << "dashed red: the tolerance. rho is the relative operator-norm difference.</p><div class=\"grid\">";
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
