#include "varflow/validation/limit_text.h"

#include <iomanip>
#include <sstream>

namespace varflow {

bool within(double value, Limit relation, double limit) {
  switch (relation) {
    case Limit::kBelow: return value < limit;
    case Limit::kAtMost: return value <= limit;
    case Limit::kAbove: return value > limit;
    case Limit::kAtLeast: return value >= limit;
  }
  return false;
}

std::string limit_text(std::string_view quantity, double value, Limit relation, double limit) {
  static constexpr const char* kSymbol[] = {"<", "<=", ">", ">="};
  std::ostringstream os;
  os << std::setprecision(3) << quantity << " " << value << ", must be " << kSymbol[static_cast<int>(relation)] << " "
     << limit << ": " << (within(value, relation, limit) ? "pass" : "FAIL");
  return os.str();
}

std::string band_text(std::string_view quantity, double low, double high, double band_low, double band_high) {
  const bool inside = low >= band_low && high <= band_high;  // false for NaN
  std::ostringstream os;
  os << std::setprecision(3) << quantity << " " << low << ".." << high << ", must be in [" << band_low << ", "
     << band_high << "]: " << (inside ? "pass" : "FAIL");
  return os.str();
}

}  // namespace varflow
