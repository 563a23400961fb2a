#include "varflow/core/random.h"

#include <cstring>
#include <sstream>

#include <bit>
#include <cstdlib>
#include <string>

#include "varflow/core/error.h"

namespace varflow {

Index Rng::uniform_index(Index n) {
  if (n < 1) throw InvalidArgument(format_message("Rng::uniform_index: n = ", n, " must be >= 1"));
  const auto range = static_cast<std::uint64_t>(n);
  const std::uint64_t mask = std::bit_ceil(range) - 1;
  std::uint64_t u = engine_() & mask;
  while (u >= range) u = engine_() & mask;
  return static_cast<Index>(u);
}

Vector Rng::normal_vector(Index n) {
  Vector v(n);
  for (Index i = 0; i < n; ++i) v[i] = normal();
  return v;
}

Matrix Rng::normal_matrix(Index rows, Index cols) {
  Matrix m(rows, cols);
  for (Index i = 0; i < m.size(); ++i) m.data()[i] = normal();
  return m;
}

std::string Rng::state() const {
  std::ostringstream os;
  std::uint64_t bits = 0;
  std::memcpy(&bits, &saved_normal_, sizeof bits);
  os << seed_ << ' ' << (has_saved_normal_ ? 1 : 0) << ' ' << bits << ' ' << engine_;
  return os.str();
}

void Rng::restore(const std::string& text) {
  std::istringstream in(text);
  std::uint64_t seed = 0, bits = 0;
  int has = 0;
  std::mt19937_64 engine;
  in >> seed >> has >> bits >> engine;
  if (!in || (has != 0 && has != 1)) throw InvalidArgument("Rng::restore: malformed random-generator state");
  seed_ = seed;
  has_saved_normal_ = has == 1;
  std::memcpy(&saved_normal_, &bits, sizeof bits);
  engine_ = engine;
}

Rng Rng::split() {
  // SplitMix64 of a fresh draw: decorrelates the child stream from the parent's.
  std::uint64_t z = engine_() + 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return Rng(z ^ (z >> 31));
}

std::uint64_t seed_from_env(std::uint64_t fallback, const char* variable) {
  const char* text = std::getenv(variable);
  if (text == nullptr || *text == '\0') return fallback;
  const std::string s(text);
  if (s.find_first_not_of("0123456789") != std::string::npos || s.size() > 19) {
    throw InvalidArgument(format_message("seed_from_env: ", variable, " = '", s,
                                         "' is not a non-negative integer"));
  }
  return std::stoull(s);
}

}  // namespace varflow
