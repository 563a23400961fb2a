#include "varflow/nn/parallel.h"

#include <omp.h>

namespace varflow::nn {
bool parallel_worth_it(Index work) { return work >= kParallelWorkThreshold && !omp_in_parallel(); }
}  // namespace varflow::nn
