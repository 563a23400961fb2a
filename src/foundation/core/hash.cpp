#include "varflow/core/hash.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <vector>

#include "varflow/core/error.h"

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

std::uint64_t fnv1a_file(const std::filesystem::path& file, std::uintmax_t bytes) {
  std::ifstream in(file, std::ios::binary);
  std::vector<char> block(1 << 20);
  std::uint64_t hash = fnv1a_offset_basis();
  while (bytes > 0) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uintmax_t>(bytes, block.size()));
    if (!in.read(block.data(), static_cast<std::streamsize>(n))) {
      throw Error(format_message("cannot read ", file.string(), " to compute its checksum"));
    }
    hash = fnv1a(block.data(), n, hash);
    bytes -= n;
  }
  return hash;
}

std::uint64_t fnv1a_file(const std::filesystem::path& file) {
  std::error_code ec;
  const std::uintmax_t size = std::filesystem::file_size(file, ec);
  if (ec) throw Error(format_message("cannot read ", file.string(), " to compute its checksum: ", ec.message()));
  return fnv1a_file(file, size);
}

std::string hex64(std::uint64_t value) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(value));
  return buf;
}

}  // namespace varflow
