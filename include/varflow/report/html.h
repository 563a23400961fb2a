#pragma once
// HTML helpers shared by the report pages (validation report, six-step report); internal.
#include <string>

namespace varflow::report {

// `s` with <, >, & and " replaced by their entities, for text and attribute values.
std::string escape_html(const std::string& s);

}  // namespace varflow::report
