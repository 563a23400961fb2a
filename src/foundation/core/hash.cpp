#include "varflow/core/hash.h"

#include <cstdio>

namespace varflow {

std::uint64_t fnv1a(const void* data, std::size_t bytes, std::uint64_t hash) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < bytes; ++i) {
    hash ^= p[i];
    hash *= 0x100000001b3ULL;  // the 64-bit FNV prime
  }
  return hash;
}

std::uint64_t fnv1a(const Vector& v, std::uint64_t hash) {
  return fnv1a(v.data(), static_cast<std::size_t>(v.size()) * sizeof(double), hash);
}

std::uint64_t fnv1a(const std::string& s, std::uint64_t hash) { return fnv1a(s.data(), s.size(), hash); }

std::string hex64(std::uint64_t value) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(value));
  return buf;
}

}  // namespace varflow
