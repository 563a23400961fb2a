#pragma once
// Upper bounds on the sizes and counts read from configs, options and files, checked before
// anything is allocated (design/reliability.md, "Bounds"). The limits are far above any real run;
// they keep a mistyped or hostile value from becoming an allocation of terabytes.
//
//   config: model.n = 1000000000000 is above the limit 100000000 (one state would take 8 TB)
#include <cstdint>
#include <string>
#include <string_view>

#include "varflow/core/types.h"

namespace varflow::limits {

// State variables of a model (0.8 GB for one state at the limit).
inline constexpr long long kMaxStateSize = 100'000'000;
// Any other count: steps, cycles, windows, iterations, epochs, pairs, widths, draws.
inline constexpr long long kMaxCount = 1'000'000'000;

// The bytes a run may plan to hold at once: the physical memory of this machine (at least 1 GiB).
double memory_limit_bytes();
// "8 TB", "12.5 GB", "640 kB": decimal units, three significant digits.
std::string bytes_text(double bytes);

// Throws InvalidArgument "<where>: <name> = <value> is above the limit <limit> (<reason>)" when
// value > limit (reason omitted when empty).
void check_at_most(std::string_view where, std::string_view name, long long value, long long limit,
                   std::string_view reason = "");
// Throws InvalidArgument "<where>: <what> would take <bytes>, above the memory of this machine
// (<limit>)" when bytes > memory_limit_bytes(). `bytes` is a double so that products of counts
// cannot overflow.
void check_memory(std::string_view where, std::string_view what, double bytes);

}  // namespace varflow::limits
