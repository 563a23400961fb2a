#pragma once
// Seeded, reproducible random numbers.
//
// Every random computation in varflow takes an Rng& explicitly; there is no global generator.
// The same seed on the same build gives the same stream. Programs print the seed they use and take
// --seed; tests take it from the environment variable VARFLOW_TEST_SEED (see seed_from_env).
#include <cstdint>
#include <random>
#include <string_view>

#include "varflow/core/types.h"

namespace varflow {

class Rng {
 public:
  explicit Rng(std::uint64_t seed) : seed_(seed), engine_(seed) {}

  std::uint64_t seed() const { return seed_; }
  double normal() { return normal_(engine_); }
  double uniform() { return uniform_(engine_); }  // in [0, 1)
  // A vector of n independent N(0, 1) draws.
  Vector normal_vector(Index n);
  // A derived generator for an independent stream (e.g. one per thread or per component).
  Rng split();
  std::mt19937_64& engine() { return engine_; }

 private:
  std::uint64_t seed_;
  std::mt19937_64 engine_;
  std::normal_distribution<double> normal_{0.0, 1.0};
  std::uniform_real_distribution<double> uniform_{0.0, 1.0};
};

// The seed from environment variable `variable` when it is set (a non-negative integer; anything else
// throws InvalidArgument naming the variable and its value), otherwise `fallback`.
std::uint64_t seed_from_env(std::uint64_t fallback, const char* variable = "VARFLOW_TEST_SEED");

}  // namespace varflow
