#pragma once
// Checkpoint files: a magic line naming the kind, a fingerprint of the run that wrote it, a binary
// payload (fields in native byte order, little-endian on every supported platform) and FNV-1a 64 of
// all of it. Written through AtomicOutput (flushed, renamed into place).
//
//   ByteWriter w;  w.put(epoch);  w.put(weights);
//   write_checkpoint(file, "varflow_trainer_checkpoint 1", fingerprint, w.bytes);
//   ByteReader r = ...read_checkpoint(file, "varflow_trainer_checkpoint 1", fingerprint)...;
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "varflow/core/error.h"
#include "varflow/core/types.h"

namespace varflow {

class ByteWriter {
 public:
  template <typename T>
  void put(const T& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    bytes.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  void put(const std::string& s) {
    put(static_cast<std::uint64_t>(s.size()));
    bytes += s;
  }
  void put(const Vector& v) {
    put(static_cast<std::uint64_t>(v.size()));
    bytes.append(reinterpret_cast<const char*>(v.data()), sizeof(double) * static_cast<std::size_t>(v.size()));
  }
  void put(const Matrix& m) {
    put(static_cast<std::int64_t>(m.rows()));
    put(static_cast<std::int64_t>(m.cols()));
    bytes.append(reinterpret_cast<const char*>(m.data()), sizeof(double) * static_cast<std::size_t>(m.size()));
  }
  void put(const std::vector<double>& v) {
    put(static_cast<std::uint64_t>(v.size()));
    bytes.append(reinterpret_cast<const char*>(v.data()), sizeof(double) * v.size());
  }
  std::string bytes;
};

// Reads what a ByteWriter wrote, in the same order; InvalidArgument "<where>: truncated checkpoint"
// when the bytes run out.
class ByteReader {
 public:
  ByteReader(std::string bytes, std::string where) : bytes_(std::move(bytes)), where_(std::move(where)) {}
  template <typename T>
  T get() {
    static_assert(std::is_trivially_copyable_v<T>);
    T v;
    std::memcpy(&v, take(sizeof v), sizeof v);
    return v;
  }
  std::string get_string() {
    const auto n = count(1);
    return std::string(take(n), n);
  }
  Vector get_vector() {
    const auto n = count(sizeof(double));
    Vector v(static_cast<Index>(n));
    if (n > 0) std::memcpy(v.data(), take(n * sizeof(double)), n * sizeof(double));
    return v;
  }
  Matrix get_matrix() {
    const auto rows = get<std::int64_t>(), cols = get<std::int64_t>();
    if (rows < 0 || cols < 0 || (rows > 0 && static_cast<std::uint64_t>(cols) > remaining() / sizeof(double) / static_cast<std::uint64_t>(rows))) {
      throw InvalidArgument(where_ + ": truncated checkpoint");
    }
    Matrix m(rows, cols);
    const std::size_t n = static_cast<std::size_t>(rows * cols);
    if (n > 0) std::memcpy(m.data(), take(n * sizeof(double)), n * sizeof(double));
    return m;
  }
  std::vector<double> get_doubles() {
    const Vector v = get_vector();
    return std::vector<double>(v.data(), v.data() + v.size());
  }
  std::size_t remaining() const { return bytes_.size() - at_; }
  bool done() const { return at_ == bytes_.size(); }
  const std::string& where() const { return where_; }

 private:
  std::size_t count(std::size_t element) {
    const auto n = get<std::uint64_t>();
    if (n > remaining() / element) throw InvalidArgument(where_ + ": truncated checkpoint");
    return static_cast<std::size_t>(n);
  }
  const char* take(std::size_t n) {
    if (n > remaining()) throw InvalidArgument(where_ + ": truncated checkpoint");
    const char* p = bytes_.data() + at_;
    at_ += n;
    return p;
  }
  std::string bytes_;
  std::string where_;
  std::size_t at_ = 0;
};

// Writes `kind` (one line), `fingerprint`, `payload` and the checksum to `file` through AtomicOutput.
void write_checkpoint(const std::filesystem::path& file, std::string_view kind, const std::string& fingerprint,
                      const std::string& payload);
// The payload of a checkpoint of `kind` written with `fingerprint`. InvalidArgument naming the file
// when it cannot be read, is not a `kind` checkpoint, is damaged (checksum) or has another
// fingerprint ("... was written by a run of other settings ...").
ByteReader read_checkpoint(const std::filesystem::path& file, std::string_view kind, const std::string& fingerprint);

}  // namespace varflow
