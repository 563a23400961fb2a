#pragma once
// Errors and argument checks.
//
// Two tiers (see design/architecture.md):
//  - programmer errors (broken invariants inside varflow) are caught by assert();
//  - user input errors throw varflow::InvalidArgument with a message that names the function, the
//    quantity and the offending value; numerical failures that a caller may want to handle are
//    reported as a status where the API has one, and as varflow::NumericalError otherwise.
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

#include "varflow/core/types.h"

namespace varflow {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Bad user input: wrong size, out-of-range parameter, non-finite data, malformed file or config.
class InvalidArgument : public Error {
 public:
  using Error::Error;
};

// A numerical failure: a matrix that is not symmetric positive definite, a blown-up integration.
class NumericalError : public Error {
 public:
  using Error::Error;
};

// Formats any streamable values into one string: format_message("x[", i, "] = ", v).
template <typename... Args>
std::string format_message(const Args&... args) {
  std::ostringstream os;
  os.precision(12);
  (os << ... << args);
  return os.str();
}

// Throws InvalidArgument "<where>: <name> has size <actual>, expected <expected>".
// Options structs check themselves with `void validate() const`, throwing InvalidArgument
// "<Struct>: <field> = <value> <rule>"; a caller adds where it was checking with with_context:
// with_context("sbc_gate", [&] { options.validate(); }) throws "sbc_gate: SbcOptions: bins = ...".
// with_prefix puts `prefix` in front verbatim ("StrongFourDVar: options." + "max_iterations = 0 ...").
template <typename F>
void with_prefix(std::string_view prefix, F&& f) {
  try {
    f();
  } catch (const InvalidArgument& e) {
    throw InvalidArgument(format_message(prefix, e.what()));
  }
}
template <typename F>
void with_context(std::string_view where, F&& f) {
  with_prefix(format_message(where, ": "), std::forward<F>(f));
}

void check_size(std::string_view where, std::string_view name, Index actual, Index expected);

// Throws InvalidArgument naming the first non-finite entry: "<where>: <name>[i] = nan is not finite".
void check_finite(std::string_view where, std::string_view name, const Eigen::Ref<const Vector>& v);
void check_finite(std::string_view where, std::string_view name, double value);

// Throws InvalidArgument unless value > 0 (and finite).
void check_positive(std::string_view where, std::string_view name, double value);
// Throws InvalidArgument unless value >= 0 (and finite).
void check_nonnegative(std::string_view where, std::string_view name, double value);
// Throws InvalidArgument unless value >= minimum.
void check_at_least(std::string_view where, std::string_view name, Index value, Index minimum);

}  // namespace varflow
