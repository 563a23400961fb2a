#pragma once
// Enum values to text and back through one table per enum, written once beside the enum's
// to_string:
//
//   constexpr EnumNames<Sampler, 2> kSamplerNames{{{Sampler::kSde, "sde"}, {Sampler::kOde, "ode"}}};
//   to_text(kSamplerNames, Sampler::kOde)                  -> "ode"
//   from_text(kSamplerNames, "score.sampler", "sd")        -> InvalidArgument
//       "score.sampler = 'sd' is not one of: sde, ode"
//
// A table lists every value of its enum once; names are compared exactly (case-sensitive).
#include <array>
#include <cstddef>
#include <string>
#include <string_view>

#include "varflow/core/error.h"

namespace varflow {

template <typename E>
struct EnumName {
  E value;
  std::string_view name;
};

template <typename E, std::size_t N>
using EnumNames = std::array<EnumName<E>, N>;

// The name of `value`; "unknown" for a value the table lacks (a cast out of the enum's range).
template <typename E, std::size_t N>
constexpr std::string_view to_text(const EnumNames<E, N>& names, E value) {
  for (const auto& n : names) {
    if (n.value == value) return n.name;
  }
  return "unknown";
}

// The names in table order: "a, b, c".
template <typename E, std::size_t N>
std::string names_text(const EnumNames<E, N>& names) {
  std::string out;
  for (const auto& n : names) out.append(out.empty() ? "" : ", ").append(n.name);
  return out;
}

// Sets *value to the value named `text` and returns true; false (and *value untouched) when no
// value has that name.
template <typename E, std::size_t N>
constexpr bool find_value(const EnumNames<E, N>& names, std::string_view text, E* value) {
  for (const auto& n : names) {
    if (n.name == text) {
      *value = n.value;
      return true;
    }
  }
  return false;
}

// The value named `text`; otherwise InvalidArgument "<field> = '<text>' is not one of: a, b, c"
// (`field` names where the text came from, e.g. a config key, with its context as a prefix).
template <typename E, std::size_t N>
E from_text(const EnumNames<E, N>& names, std::string_view field, std::string_view text) {
  E value{};
  if (!find_value(names, text, &value)) {
    throw InvalidArgument(format_message(field, " = '", text, "' is not one of: ", names_text(names)));
  }
  return value;
}

}  // namespace varflow
