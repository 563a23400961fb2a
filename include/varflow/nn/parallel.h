#pragma once
// When an OpenMP loop over the batch is worth its fork/join cost. Loops over a few thousand flops are
// faster serial (and do not wake spinning threads on a busy machine); inside an enclosing parallel
// region (data-parallel replicas) loops always run serially. OpenMP stays a private dependency.
#include "varflow/core/types.h"

namespace varflow::nn {
constexpr Index kParallelWorkThreshold = 16384;
// `work` is the loop's flop count, roughly.
bool parallel_worth_it(Index work);
}  // namespace varflow::nn
