#include "varflow/core/limits.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "varflow/core/error.h"

namespace varflow::limits {

double memory_limit_bytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page_size = ::sysconf(_SC_PAGESIZE);
  const double physical = pages > 0 && page_size > 0 ? static_cast<double>(pages) * static_cast<double>(page_size) : 0.0;
  return std::max(physical, 1024.0 * 1024.0 * 1024.0);
}

std::string bytes_text(double bytes) {
  static const char* const units[] = {"bytes", "kB", "MB", "GB", "TB", "PB", "EB"};
  int u = 0;
  while (bytes >= 1000.0 && u < 6) {
    bytes /= 1000.0;
    ++u;
  }
  char text[48];
  std::snprintf(text, sizeof text, "%.3g %s", bytes, units[u]);
  return text;
}

void check_at_most(std::string_view where, std::string_view name, long long value, long long limit,
                   std::string_view reason) {
  if (value <= limit) return;
  if (reason.empty()) {
    throw InvalidArgument(format_message(where, ": ", name, " = ", value, " is above the limit ", limit));
  }
  throw InvalidArgument(format_message(where, ": ", name, " = ", value, " is above the limit ", limit, " (", reason, ")"));
}

void check_memory(std::string_view where, std::string_view what, double bytes) {
  const double limit = memory_limit_bytes();
  if (bytes <= limit) return;
  throw InvalidArgument(format_message(where, ": ", what, " would take ", bytes_text(bytes),
                                       ", above the memory of this machine (", bytes_text(limit), ")"));
}

}  // namespace varflow::limits
