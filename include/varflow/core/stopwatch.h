#pragma once
// Wall-clock time since construction (steady clock), for timings reported in summaries and logs.
#include <chrono>

namespace varflow {

class Stopwatch {
 public:
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

}  // namespace varflow
