#include "varflow/report/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>

#include "varflow/report/html.h"

namespace varflow::report::svg {

std::string number_text(double v, int digits) {
  if (!std::isfinite(v)) return "n/a";
  if (std::abs(v) < 1e-12) v = 0.0;  // a tick at -1e-17 reads 0
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*g", digits, v);
  return buf;
}

std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!(hi > lo)) return {lo};
  // The step of 1, 2 or 5 x 10^k whose tick count is nearest the target (the larger count on a tie).
  const double raw = (hi - lo) / std::max(1, target - 1);
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  double step = magnitude, best = std::numeric_limits<double>::infinity();
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    const double candidate = m * magnitude;
    const double count = std::floor(hi / candidate) - std::ceil(lo / candidate) + 1.0;
    const double miss = std::abs(count - target);
    if (miss < best) {
      best = miss;
      step = candidate;
    }
  }
  std::vector<double> ticks;
  for (double t = std::ceil(lo / step - 1e-9) * step; t <= hi + 1e-9 * step; t += step) ticks.push_back(t);
  return ticks;
}

namespace {

std::string px(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

// Widens [lo, hi] by 5% each side (or to +-0.5 around a single value).
void pad(double& lo, double& hi) {
  if (!(hi > lo)) {
    lo -= 0.5;
    hi += 0.5;
    return;
  }
  const double p = 0.05 * (hi - lo);
  lo -= p;
  hi += p;
}

}  // namespace

Plot::Plot(std::string title, std::string x_label, std::string y_label, int width, int height)
    : title_(std::move(title)), x_label_(std::move(x_label)), y_label_(std::move(y_label)), width_(width),
      height_(height) {}

Plot& Plot::x_range(double lo, double hi) {
  fixed_x_ = true;
  x0_ = lo;
  x1_ = hi;
  return *this;
}
Plot& Plot::y_range(double lo, double hi) {
  fixed_y_ = true;
  y0_ = lo;
  y1_ = hi;
  return *this;
}
Plot& Plot::integer_x() {
  integer_x_ = true;
  return *this;
}

void Plot::add(Element e) { elements_.push_back(std::move(e)); }

void Plot::line(const std::string& label, const std::vector<double>& x, const std::vector<double>& y,
                const std::string& colour, bool dashed) {
  add({label, colour, "line", x, y, {}, {}, dashed, 1.6});
}
void Plot::points(const std::string& label, const std::vector<double>& x, const std::vector<double>& y,
                  const std::string& colour, double radius) {
  add({label, colour, "points", x, y, {}, {}, false, radius});
}
void Plot::error_bars(const std::string& label, const std::vector<double>& x, const std::vector<double>& mid,
                      const std::vector<double>& lo, const std::vector<double>& hi, const std::string& colour) {
  add({label, colour, "error_bars", x, mid, lo, hi, false, 2.5});
}
void Plot::bars(const std::string& label, const std::vector<double>& left, const std::vector<double>& right,
                const std::vector<double>& height, const std::string& colour, double opacity) {
  add({label, colour, "bars", left, right, height, {}, false, opacity});
}
void Plot::band(const std::string& label, const std::vector<double>& x, const std::vector<double>& lo,
                const std::vector<double>& hi, const std::string& colour, double opacity) {
  add({label, colour, "band", x, lo, hi, {}, false, opacity});
}
void Plot::y_band(const std::string& label, double lo, double hi, const std::string& colour, double opacity) {
  add({label, colour, "y_band", {lo}, {hi}, {}, {}, false, opacity});
}
void Plot::y_line(const std::string& label, double y, const std::string& colour, bool dashed) {
  add({label, colour, "y_line", {y}, {}, {}, {}, dashed, 1.2});
}
void Plot::note(const std::string& text) { note_ = text; }

std::string Plot::svg() const {
  // Data ranges.
  double xl = std::numeric_limits<double>::infinity(), xh = -xl, yl = xl, yh = -xl;
  auto take_x = [&](double v) {
    if (std::isfinite(v)) xl = std::min(xl, v), xh = std::max(xh, v);
  };
  auto take_y = [&](double v) {
    if (std::isfinite(v)) yl = std::min(yl, v), yh = std::max(yh, v);
  };
  for (const Element& e : elements_) {
    if (e.kind == "bars") {
      for (double v : e.a) take_x(v);
      for (double v : e.b) take_x(v);
      take_y(0.0);
      for (double v : e.c) take_y(v);
    } else if (e.kind == "y_band") {
      take_y(e.a[0]);
      take_y(e.b[0]);
    } else if (e.kind == "y_line") {
      take_y(e.a[0]);
    } else {
      for (double v : e.a) take_x(v);
      for (const auto* ys : {&e.b, &e.c, &e.d})
        for (double v : *ys) take_y(v);
    }
  }
  double x0 = x0_, x1 = x1_, y0 = y0_, y1 = y1_;
  if (!fixed_x_) {
    x0 = std::isfinite(xl) ? xl : 0.0;
    x1 = std::isfinite(xh) ? xh : 1.0;
    pad(x0, x1);
  }
  if (!fixed_y_) {
    y0 = std::isfinite(yl) ? yl : 0.0;
    y1 = std::isfinite(yh) ? yh : 1.0;
    pad(y0, y1);
  }

  // Layout: title, legend row(s), frame, x tick labels and axis label; y axis label rotated.
  std::vector<const Element*> legend;
  for (const Element& e : elements_)
    if (!e.label.empty()) legend.push_back(&e);
  const int left = 58, right = 10, bottom = 38;
  int legend_rows = 0;
  {
    double x = left;
    if (!legend.empty()) legend_rows = 1;
    for (const Element* e : legend) {
      const double w = 22.0 + 5.6 * static_cast<double>(e->label.size()) + 10.0;
      if (x + w > width_ - right && x > left) {
        ++legend_rows;
        x = left;
      }
      x += w;
    }
  }
  const int top = 22 + 14 * legend_rows + 4;
  const int height = height_ + 14 * legend_rows;
  const double fw = width_ - left - right, fh = height - top - bottom;
  auto X = [&](double v) { return left + (v - x0) / (x1 - x0) * fw; };
  auto Y = [&](double v) { return top + (y1 - std::clamp(v, y0, y1)) / (y1 - y0) * fh; };

  std::ostringstream s;
  s << "<svg class=\"plot\" width=\"" << width_ << "\" height=\"" << height
    << "\" viewBox=\"0 0 " << width_ << ' ' << height << "\" font-family=\"sans-serif\" font-size=\"10\">"
    << "<title>" << escape_html(title_) << "</title>"
    << "<rect width=\"" << width_ << "\" height=\"" << height << "\" fill=\"white\"/>"
    << "<text x=\"" << left << "\" y=\"14\" font-size=\"11.5\" font-weight=\"bold\">" << escape_html(title_)
    << "</text>";
  // Grid and ticks.
  const std::vector<double> yt = nice_ticks(y0, y1, std::max(3, static_cast<int>(fh / 32)));
  std::vector<double> xt = nice_ticks(x0, x1, std::max(3, static_cast<int>(fw / 60)));
  if (integer_x_) {
    std::vector<double> whole;
    for (double t : xt)
      if (std::abs(t - std::round(t)) < 1e-9) whole.push_back(std::round(t));
    if (whole.empty()) whole.push_back(std::round(0.5 * (x0 + x1)));
    xt = whole;
  }
  s << "<g class=\"y-axis\">";
  for (double t : yt) {
    s << "<line x1=\"" << left << "\" x2=\"" << px(left + fw) << "\" y1=\"" << px(Y(t)) << "\" y2=\"" << px(Y(t))
      << "\" stroke=\"#eee\"/><text class=\"tick\" x=\"" << left - 4 << "\" y=\"" << px(Y(t) + 3.5)
      << "\" text-anchor=\"end\">" << number_text(t) << "</text>";
  }
  s << "<text class=\"axis-label\" transform=\"translate(12," << px(top + fh / 2) << ") rotate(-90)\" "
    << "text-anchor=\"middle\">" << escape_html(y_label_) << "</text></g>";
  s << "<g class=\"x-axis\">";
  for (double t : xt) {
    s << "<line x1=\"" << px(X(t)) << "\" x2=\"" << px(X(t)) << "\" y1=\"" << px(top + fh) << "\" y2=\""
      << px(top + fh + 4) << "\" stroke=\"#888\"/><text class=\"tick\" x=\"" << px(X(t)) << "\" y=\""
      << px(top + fh + 14) << "\" text-anchor=\"middle\">" << number_text(t) << "</text>";
  }
  s << "<text class=\"axis-label\" x=\"" << px(left + fw / 2) << "\" y=\"" << height - 6
    << "\" text-anchor=\"middle\">" << escape_html(x_label_) << "</text></g>";
  s << "<svg x=\"" << left << "\" y=\"" << top << "\" width=\"" << px(fw) << "\" height=\"" << px(fh)
    << "\" viewBox=\"" << left << ' ' << top << ' ' << px(fw) << ' ' << px(fh) << "\" overflow=\"hidden\">";

  // Elements, in the order added.
  for (const Element& e : elements_) {
    const std::string dash = e.dashed ? " stroke-dasharray=\"5,3\"" : "";
    if (e.kind == "line") {
      s << "<polyline fill=\"none\" stroke=\"" << e.colour << "\" stroke-width=\"" << e.size << "\"" << dash
        << " points=\"";
      for (std::size_t i = 0; i < e.a.size() && i < e.b.size(); ++i) {
        if (!std::isfinite(e.a[i]) || !std::isfinite(e.b[i])) {
          s << "\"/><polyline fill=\"none\" stroke=\"" << e.colour << "\" stroke-width=\"" << e.size << "\"" << dash
            << " points=\"";
          continue;
        }
        s << px(X(e.a[i])) << ',' << px(Y(e.b[i])) << ' ';
      }
      s << "\"/>";
    } else if (e.kind == "points") {
      for (std::size_t i = 0; i < e.a.size() && i < e.b.size(); ++i) {
        if (!std::isfinite(e.a[i]) || !std::isfinite(e.b[i])) continue;
        s << "<circle cx=\"" << px(X(e.a[i])) << "\" cy=\"" << px(Y(e.b[i])) << "\" r=\"" << e.size << "\" fill=\""
          << e.colour << "\"/>";
      }
    } else if (e.kind == "error_bars") {
      for (std::size_t i = 0; i < e.a.size(); ++i) {
        if (!std::isfinite(e.a[i]) || !std::isfinite(e.b[i])) continue;
        if (std::isfinite(e.c[i]) && std::isfinite(e.d[i])) {
          s << "<line x1=\"" << px(X(e.a[i])) << "\" x2=\"" << px(X(e.a[i])) << "\" y1=\"" << px(Y(e.c[i]))
            << "\" y2=\"" << px(Y(e.d[i])) << "\" stroke=\"" << e.colour << "\" stroke-width=\"1.5\"/>";
        }
        s << "<circle cx=\"" << px(X(e.a[i])) << "\" cy=\"" << px(Y(e.b[i])) << "\" r=\"" << e.size
          << "\" fill=\"" << e.colour << "\"/>";
      }
    } else if (e.kind == "bars") {
      for (std::size_t i = 0; i < e.a.size(); ++i) {
        if (!std::isfinite(e.c[i])) continue;
        const double l = X(e.a[i]) + 0.5, r = X(e.b[i]) - 0.5, top_y = Y(std::max(0.0, e.c[i])),
                     base = Y(std::min(0.0, e.c[i]));
        s << "<rect x=\"" << px(l) << "\" y=\"" << px(top_y) << "\" width=\"" << px(std::max(0.5, r - l))
          << "\" height=\"" << px(base - top_y) << "\" fill=\"" << e.colour << "\" fill-opacity=\"" << e.size
          << "\"/>";
      }
    } else if (e.kind == "band") {
      s << "<polygon fill=\"" << e.colour << "\" fill-opacity=\"" << e.size << "\" stroke=\"none\" points=\"";
      for (std::size_t i = 0; i < e.a.size(); ++i) s << px(X(e.a[i])) << ',' << px(Y(e.c[i])) << ' ';
      for (std::size_t i = e.a.size(); i-- > 0;) s << px(X(e.a[i])) << ',' << px(Y(e.b[i])) << ' ';
      s << "\"/>";
      for (const auto* edge : {&e.b, &e.c}) {
        s << "<polyline fill=\"none\" stroke=\"" << e.colour << "\" stroke-width=\"1\" points=\"";
        for (std::size_t i = 0; i < e.a.size(); ++i) s << px(X(e.a[i])) << ',' << px(Y((*edge)[i])) << ' ';
        s << "\"/>";
      }
    } else if (e.kind == "y_band") {
      const double hi = Y(e.b[0]), lo = Y(e.a[0]);
      s << "<rect x=\"" << left << "\" y=\"" << px(hi) << "\" width=\"" << px(fw) << "\" height=\"" << px(lo - hi)
        << "\" fill=\"" << e.colour << "\" fill-opacity=\"" << e.size << "\"/>"
        << "<line x1=\"" << left << "\" x2=\"" << px(left + fw) << "\" y1=\"" << px(hi) << "\" y2=\"" << px(hi)
        << "\" stroke=\"" << e.colour << "\"/><line x1=\"" << left << "\" x2=\"" << px(left + fw) << "\" y1=\""
        << px(lo) << "\" y2=\"" << px(lo) << "\" stroke=\"" << e.colour << "\"/>";
    } else if (e.kind == "y_line") {
      s << "<line x1=\"" << left << "\" x2=\"" << px(left + fw) << "\" y1=\"" << px(Y(e.a[0])) << "\" y2=\""
        << px(Y(e.a[0])) << "\" stroke=\"" << e.colour << "\" stroke-width=\"" << e.size << "\"" << dash << "/>";
    }
  }
  s << "</svg><rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << px(fw) << "\" height=\"" << px(fh)
    << "\" fill=\"none\" stroke=\"#888\"/>";
  if (!note_.empty()) {
    s << "<text class=\"note\" x=\"" << left + 4 << "\" y=\"" << top + 11 << "\" font-size=\"9\" fill=\"#444\">"
      << escape_html(note_) << "</text>";
  }

  // Legend rows between the title and the frame.
  if (!legend.empty()) {
    s << "<g class=\"legend\">";
    double x = left;
    int row = 0;
    for (const Element* e : legend) {
      const double w = 22.0 + 5.6 * static_cast<double>(e->label.size()) + 10.0;
      if (x + w > width_ - right && x > left) {
        ++row;
        x = left;
      }
      const double y = 22 + 14 * row + 6;
      s << "<g class=\"legend-entry\">";
      if (e->kind == "points" || e->kind == "error_bars") {
        s << "<circle cx=\"" << px(x + 8) << "\" cy=\"" << px(y - 3) << "\" r=\"3\" fill=\"" << e->colour << "\"/>";
      } else if (e->kind == "line" || e->kind == "y_line") {
        s << "<line x1=\"" << px(x) << "\" x2=\"" << px(x + 16) << "\" y1=\"" << px(y - 3) << "\" y2=\"" << px(y - 3)
          << "\" stroke=\"" << e->colour << "\" stroke-width=\"2\"" << (e->dashed ? " stroke-dasharray=\"4,2\"" : "")
          << "/>";
      } else {
        s << "<rect x=\"" << px(x) << "\" y=\"" << px(y - 8) << "\" width=\"16\" height=\"9\" fill=\"" << e->colour
          << "\" fill-opacity=\"" << std::max(0.3, e->size) << "\" stroke=\"" << e->colour << "\"/>";
      }
      s << "<text x=\"" << px(x + 20) << "\" y=\"" << px(y) << "\">" << escape_html(e->label) << "</text></g>";
      x += w;
    }
    s << "</g>";
  }
  s << "</svg>";
  return s.str();
}

}  // namespace varflow::report::svg
