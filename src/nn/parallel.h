#pragma once
// Internal: when an OpenMP loop over the batch is worth its fork/join cost. Loops over a few
// thousand flops are faster serial (and do not wake spinning threads on a busy machine); inside an
// enclosing parallel region (data-parallel replicas) loops always run serially.
#include <omp.h>

#include "varflow/core/types.h"

namespace varflow::nn {
constexpr Index kParallelWorkThreshold = 16384;
inline bool parallel_worth_it(Index work) { return work >= kParallelWorkThreshold && !omp_in_parallel(); }
}  // namespace varflow::nn
