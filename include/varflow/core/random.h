#pragma once
// Seeded, reproducible random numbers.
//
// Every random computation in varflow takes an Rng& explicitly; there is no global generator.
// Programs print the seed they use and take --seed; tests take it from the environment variable
// VARFLOW_TEST_SEED (see seed_from_env).
//
// The stream is a contract, the same with every C++ library: the engine is std::mt19937_64 (fully
// specified by the standard), and the draws are written here instead of taken from the standard
// distributions, whose algorithms are implementation-defined (libstdc++ and libc++ differ):
//  - uniform(): one engine output u, double(u) / 2^64 (round to nearest), and the largest double
//    below 1 when that rounds to 1. This is libstdc++'s generate_canonical<double, 53> for a 64-bit
//    engine, so the numbers are those of std::uniform_real_distribution(0, 1) there.
//  - normal(): Marsaglia's polar method as libstdc++'s std::normal_distribution does it: draw
//    x = 2 uniform() - 1, then y = 2 uniform() - 1, until 0 < r2 = x^2 + y^2 <= 1; with
//    m = sqrt(-2 log(r2) / r2), return y m and keep x m for the next call. The kept value is part of
//    the Rng's state (copied with it; split() and uniform() leave it alone). Besides the engine it
//    depends only on the C library's log, which glibc rounds correctly.
//  - uniform_index(n): the integer uniform in [0, n) by bitmask rejection: u & (2^b - 1) for the
//    smallest 2^b >= n, drawn again while >= n (fewer than 2 engine outputs on average).
// tests/core_test.cpp pins the first values for fixed seeds.
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>

#include "varflow/core/types.h"

namespace varflow {

class Rng {
 public:
  explicit Rng(std::uint64_t seed) : seed_(seed), engine_(seed) {}

  std::uint64_t seed() const { return seed_; }
  // In [0, 1).
  double uniform() {
    const double u = static_cast<double>(engine_()) * 0x1p-64;
    return u < 1.0 ? u : std::nextafter(1.0, 0.0);
  }
  // N(0, 1).
  double normal() {
    if (has_saved_normal_) {
      has_saved_normal_ = false;
      return saved_normal_;
    }
    double x, y, r2;
    do {
      x = 2.0 * uniform() - 1.0;
      y = 2.0 * uniform() - 1.0;
      r2 = x * x + y * y;
    } while (r2 > 1.0 || r2 == 0.0);
    const double m = std::sqrt(-2.0 * std::log(r2) / r2);
    saved_normal_ = x * m;
    has_saved_normal_ = true;
    return y * m + 0.0;  // + 0.0: -0 becomes +0, as in libstdc++'s `* stddev + mean`
  }
  // Uniform in {0, ..., n - 1}; n >= 1 (InvalidArgument otherwise).
  Index uniform_index(Index n);
  // A vector of n independent N(0, 1) draws.
  Vector normal_vector(Index n);
  // A rows x cols matrix of independent N(0, 1) draws, filled column by column (the draws of
  // normal_vector(rows) for each column in turn).
  Matrix normal_matrix(Index rows, Index cols);
  // A derived generator for an independent stream (e.g. one per thread or per component).
  Rng split();
  std::mt19937_64& engine() { return engine_; }
  // The full state as text (engine and the saved normal), and its restoration: a restored Rng draws
  // exactly what the saved one would have drawn. restore() throws InvalidArgument on malformed text.
  std::string state() const;
  void restore(const std::string& text);

 private:
  std::uint64_t seed_;
  std::mt19937_64 engine_;
  double saved_normal_ = 0.0;  // the second value of the last polar pair, when has_saved_normal_
  bool has_saved_normal_ = false;
};

// The seed from environment variable `variable` when it is set (a non-negative integer; anything else
// throws InvalidArgument naming the variable and its value), otherwise `fallback`.
std::uint64_t seed_from_env(std::uint64_t fallback, const char* variable = "VARFLOW_TEST_SEED");

}  // namespace varflow
