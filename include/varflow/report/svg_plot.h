#pragma once
// Plots as inline SVG for the report pages (validation report, six-step report); internal. One plot
// is a frame with ticked, labelled axes (the labels carry the units), a legend of every labelled
// element above the frame, and its elements drawn in the order they were added (so a band added
// after bars is drawn above them). Non-finite values are left out of lines and ranges.
//
//   svg::Plot p("x[3]: ranks", "rank of the truth among the draws", "simulations per bin");
//   p.bars("count", left, right, counts, "#777", 0.55);
//   p.y_band("99% band of one bin", lower, upper, "#1f5fa8", 0.25);
//   std::string html = p.svg();
//
// The markup carries classes tests look for: `plot`, `x-axis`, `y-axis`, `tick`, `axis-label`,
// `legend`, `legend-entry`.
#include <string>
#include <vector>

namespace varflow::report::svg {

// Colours of the report pages.
inline constexpr const char* kOracle = "#1f5fa8";  // oracle, physics, truth: blue
inline constexpr const char* kFast = "#e07b00";    // fast / learned side: orange
inline constexpr const char* kFail = "#c62828";    // outside a band, failed
inline constexpr const char* kNeutral = "#555";

class Plot {
 public:
  Plot(std::string title, std::string x_label, std::string y_label, int width = 330, int height = 230);

  // Fixes an axis range (otherwise it spans the data, with 5% padding).
  Plot& x_range(double lo, double hi);
  Plot& y_range(double lo, double hi);
  // Integer tick labels only (e.g. components, epochs).
  Plot& integer_x();

  // A line through (x, y) (a gap at non-finite y); `dashed` for references.
  void line(const std::string& label, const std::vector<double>& x, const std::vector<double>& y,
            const std::string& colour, bool dashed = false);
  void points(const std::string& label, const std::vector<double>& x, const std::vector<double>& y,
              const std::string& colour, double radius = 2.5);
  // Vertical error bars from lo to hi at x, with a dot at mid (mean +- sigma).
  void error_bars(const std::string& label, const std::vector<double>& x, const std::vector<double>& mid,
                  const std::vector<double>& lo, const std::vector<double>& hi, const std::string& colour);
  // Bars on [left, right] x [0, height], translucent (opacity in (0, 1]).
  void bars(const std::string& label, const std::vector<double>& left, const std::vector<double>& right,
            const std::vector<double>& height, const std::string& colour, double opacity);
  // A band between lo(x) and hi(x), translucent, with its edges drawn.
  void band(const std::string& label, const std::vector<double>& x, const std::vector<double>& lo,
            const std::vector<double>& hi, const std::string& colour, double opacity);
  // A horizontal band [lo, hi] across the frame, and a horizontal line at y.
  void y_band(const std::string& label, double lo, double hi, const std::string& colour, double opacity);
  void y_line(const std::string& label, double y, const std::string& colour, bool dashed = true);
  // A short text in the frame's top-left corner (e.g. why red marks may appear under a PASS).
  void note(const std::string& text);

  std::string svg() const;

 private:
  struct Element {
    std::string label, colour, kind;  // kind: line, points, error_bars, bars, band, y_band, y_line
    std::vector<double> a, b, c, d;
    bool dashed = false;
    double size = 0.0;  // radius or opacity
  };
  void add(Element e);
  std::string title_, x_label_, y_label_, note_;
  int width_, height_;
  bool fixed_x_ = false, fixed_y_ = false, integer_x_ = false;
  double x0_ = 0, x1_ = 1, y0_ = 0, y1_ = 1;
  std::vector<Element> elements_;
};

// Ticks at 1, 2 or 5 x 10^k spanning [lo, hi], about `target` of them.
std::vector<double> nice_ticks(double lo, double hi, int target = 5);
// A number for a label: up to `digits` significant digits, "n/a" when not finite.
std::string number_text(double v, int digits = 3);

}  // namespace varflow::report::svg
