#pragma once
// FNV-1a 64-bit hashes for model-file checksums, configuration hashes and artifact fingerprints:
// cheap and deterministic across platforms (bytes are hashed as stored, little-endian doubles on
// every supported target), not cryptographic.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

#include "varflow/core/types.h"

namespace varflow {

constexpr std::uint64_t fnv1a_offset_basis() { return 0xcbf29ce484222325ULL; }
// Hash of raw bytes, continuing from `hash` (start with fnv1a_offset_basis()).
std::uint64_t fnv1a(const void* data, std::size_t bytes, std::uint64_t hash = fnv1a_offset_basis());
std::uint64_t fnv1a(const Vector& v, std::uint64_t hash = fnv1a_offset_basis());
std::uint64_t fnv1a(const std::string& s, std::uint64_t hash = fnv1a_offset_basis());
// Hash of the first `bytes` bytes of a file, read in blocks; Error naming the file when it cannot be
// read that far.
std::uint64_t fnv1a_file(const std::filesystem::path& file, std::uintmax_t bytes);
// Hash of the whole file.
std::uint64_t fnv1a_file(const std::filesystem::path& file);
// 16 lower-case hex digits.
std::string hex64(std::uint64_t value);

}  // namespace varflow
