#pragma once
// Pairs (x, y) simulated outside varflow, for `varflow train --pairs FILE.nc` (design/formats.md,
// "pairs.nc"). A netCDF file with
//   dimensions  pair, state, observation
//   x(pair, state)          double: one state per pair (physical units)
//   y(pair, observation)    double: its observations; NaN, or the variable's _FillValue, is missing
//   mask(pair, observation) optional integer: 1 observed, 0 missing (a 0 makes y missing, whatever it holds)
// Missing observations are allowed only where the problem's observations are gridded (Dataset::validate).
#include <filesystem>
#include <string>

#include "varflow/amortized/problems.h"

namespace varflow::amortized {

// Reads and checks a pairs file against `shape` (the problem the pairs claim to come from). Throws
// InvalidArgument naming the file and: a missing variable or dimension, a dimension that is not the
// problem's ("state = 12, but problem lorenz96 has 40 state variables"), fewer than 2 pairs, a mask
// value other than 0 or 1, or the first bad value ("x(pair 17, state 3) = nan is not finite").
Dataset read_pairs_file(const std::filesystem::path& path, const ProblemShape& shape, const std::string& problem);

// Writes data (x, y with NaN for missing observations) in that format, atomically. Its labels are not
// written.
void write_pairs_file(const std::filesystem::path& path, const Dataset& data);

}  // namespace varflow::amortized
