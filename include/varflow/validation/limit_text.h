#pragma once
// One way of writing a gate's number next to its limit, so that a console line never reads as a
// contradiction ("max probe error 0.164 (< 0.05)"):
//
//   limit_text("probe error", 0.164, Limit::kBelow, 0.05)     -> "probe error 0.164, must be < 0.05: FAIL"
//   band_text("spread", 0.93, 1.04, 0.8, 1.25)                -> "spread 0.93..1.04, must be in [0.8, 1.25]: pass"
//
// Numbers have 3 significant digits. A NaN value fails.
#include <string>
#include <string_view>

namespace varflow {

enum class Limit { kBelow, kAtMost, kAbove, kAtLeast };  // <, <=, >, >=

// Whether `value` satisfies `limit` (false for NaN).
bool within(double value, Limit relation, double limit);
std::string limit_text(std::string_view quantity, double value, Limit relation, double limit);
std::string band_text(std::string_view quantity, double low, double high, double band_low, double band_high);

}  // namespace varflow
