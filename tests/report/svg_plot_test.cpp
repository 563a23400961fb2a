// The SVG plots of the report pages (report/svg_plot.h): ticks, axis labels, legend, drawing order,
// missing values; and the validation report's page structure built from them.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "varflow/report/svg_plot.h"

namespace varflow::report::svg {
namespace {

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
  return n;
}

TEST(NiceTicks, AreRoundNumbersSpanningTheRange) {
  const auto t = nice_ticks(0.0, 1.0, 5);
  ASSERT_EQ(t.size(), 6u);  // 0, 0.2, ..., 1
  EXPECT_NEAR(t[1], 0.2, 1e-12);
  EXPECT_NEAR(t.back(), 1.0, 1e-12);
  const auto u = nice_ticks(-3.7, 12.1, 5);  // step 5: -0, 5, 10
  ASSERT_GE(u.size(), 3u);
  for (double v : u) {
    EXPECT_GE(v, -3.7);
    EXPECT_LE(v, 12.1);
    EXPECT_NEAR(std::fmod(std::abs(v), 5.0), 0.0, 1e-9);
  }
  EXPECT_EQ(number_text(-1e-17), "0");
  EXPECT_EQ(number_text(NAN), "n/a");
}

TEST(Plot, HasTicksAxisLabelsWithUnitsAndALegendOfLabelledElements) {
  Plot p("loss per epoch", "epoch", "loss (normalised units)");
  p.line("training", {1, 2, 3, 4}, {1.0, 0.5, 0.4, 0.35}, "#222");
  p.line("validation", {1, 2, 3, 4}, {1.1, 0.6, 0.5, 0.45}, kFast);
  p.y_line("", 0.3, "#999");  // unlabelled: not in the legend
  p.integer_x();
  const std::string s = p.svg();
  EXPECT_NE(s.find("class=\"x-axis\""), std::string::npos);
  EXPECT_NE(s.find("class=\"y-axis\""), std::string::npos);
  EXPECT_NE(s.find(">epoch</text>"), std::string::npos);
  EXPECT_NE(s.find(">loss (normalised units)</text>"), std::string::npos);
  EXPECT_EQ(count(s, "class=\"legend-entry\""), 2u);
  EXPECT_NE(s.find(">training</text>"), std::string::npos);
  EXPECT_NE(s.find(">validation</text>"), std::string::npos);
  EXPECT_GE(count(s, "class=\"tick\""), 6u);  // several on each axis, not only min and max
  // Integer x ticks: no "1.5".
  EXPECT_EQ(s.find(">1.5</text>"), std::string::npos);
  EXPECT_EQ(s.find("http"), std::string::npos);  // self-contained markup
}

TEST(Plot, DrawsElementsInTheOrderAddedSoABandLiesAboveBars) {
  Plot p("ranks", "rank", "count");
  p.bars("count", {0, 1, 2}, {1, 2, 3}, {4, 6, 5}, kNeutral, 0.45);
  p.y_band("99% band", 3.0, 7.0, kOracle, 0.22);
  const std::string s = p.svg();
  const auto bar = s.find("fill-opacity=\"0.45\"");
  const auto band = s.find("fill-opacity=\"0.22\"");
  ASSERT_NE(bar, std::string::npos);
  ASSERT_NE(band, std::string::npos);
  EXPECT_LT(bar, band);  // later in the document = drawn on top
  EXPECT_EQ(count(s, "<rect") - count(s, "class=\"legend-entry\"><rect"), 3u + 1u + 1u + 1u)
      << "3 bars, the band, the background and the frame";
}

TEST(Plot, LeavesOutNonFiniteValues) {
  Plot p("gaps", "x", "y");
  p.points("p", {0, 1, 2}, {1.0, NAN, 3.0}, kFast);
  p.line("l", {0, 1, 2}, {1.0, NAN, 3.0}, kOracle);
  const std::string s = p.svg();
  EXPECT_EQ(s.find("nan"), std::string::npos);
  EXPECT_EQ(s.find("inf"), std::string::npos);
  EXPECT_EQ(count(s, "<circle") - 1, 2u);  // two finite points (and one legend marker)
  EXPECT_EQ(count(s, "<polyline"), 2u);    // the line is broken at the gap
}

}  // namespace
}  // namespace varflow::report::svg
