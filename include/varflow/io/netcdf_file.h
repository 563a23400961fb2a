#pragma once
// Reading and writing the netCDF-4 files of varflow (formats in design/formats.md).
//
// Layout convention: a Matrix with one item per column (Eigen's column-major storage) is written as
// a 2-D variable (items, components) in C order, so `samples(sample, state)` holds draw j in row j.
// Every variable carries `long_name` and `units` attributes (integer variables: units when given).
//
// NetcdfWriter writes through AtomicOutput: nothing appears at the target path until commit(); a
// writer destroyed without commit() leaves no file behind. NetcdfReader errors name the file (or the
// `where` text it was opened with), the variable or attribute and what was expected
// (varflow::InvalidArgument); so do errors of the netCDF library during a read or a write.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "varflow/core/types.h"

namespace varflow {

class NetcdfWriter {
 public:
  explicit NetcdfWriter(const std::filesystem::path& target);
  ~NetcdfWriter();
  NetcdfWriter(const NetcdfWriter&) = delete;
  NetcdfWriter& operator=(const NetcdfWriter&) = delete;

  void add_dimension(const std::string& name, Index size);
  // An unlimited dimension: it takes the length of the first variable written over it (may be 0).
  void add_unlimited_dimension(const std::string& name);
  // 1-D variable over `dim` (a fixed dimension of values.size(), or an unlimited one).
  void write(const std::string& name, const std::string& dim, const Vector& values, const std::string& long_name,
             const std::string& units = "1");
  // 2-D variable (slow_dim, fast_dim) from a Matrix with fast_dim rows and slow_dim columns.
  void write(const std::string& name, const std::string& slow_dim, const std::string& fast_dim, const Matrix& m,
             const std::string& long_name, const std::string& units = "1");
  // 1-D 64-bit integer variable; `units` is written when not empty.
  void write_int(const std::string& name, const std::string& dim, const std::vector<long long>& values,
                 const std::string& long_name, const std::string& units = "");
  // 2-D 64-bit integer variable (slow_dim, fast_dim), values in C order (slow x fast).
  void write_int(const std::string& name, const std::string& slow_dim, const std::string& fast_dim,
                 const std::vector<long long>& values, const std::string& long_name, const std::string& units = "");
  // Strings as a 2-D char variable (dim, length_dim), each padded with NULs to the length of
  // length_dim (a longer string is an error).
  void write_text(const std::string& name, const std::string& dim, const std::string& length_dim,
                  const std::vector<std::string>& values, const std::string& long_name,
                  const std::string& units = "1");
  // Global attributes: text, NC_DOUBLE, NC_INT (int), NC_INT64 (long long), NC_UINT64 (uint64_t).
  void attribute(const std::string& name, const std::string& value);
  void attribute(const std::string& name, double value);
  void attribute(const std::string& name, int value);
  void attribute(const std::string& name, long long value);
  void attribute(const std::string& name, std::uint64_t value);
  // Attributes of a variable already written: text, and 64-bit integers (e.g. CF flag_values of an
  // integer flag variable, with flag_meanings as text).
  void variable_attribute(const std::string& variable, const std::string& name, const std::string& value);
  void variable_attribute(const std::string& variable, const std::string& name, const std::vector<long long>& values);
  // An N-D double variable over `dims` (fixed dimensions), values in C order (the last dimension
  // fastest), e.g. covariance(window, state, state_column) from one column-major n x n matrix per window.
  void write_array(const std::string& name, const std::vector<std::string>& dims, const std::vector<double>& values,
                   const std::string& long_name, const std::string& units = "1");
  // Closes the file and moves it into place. Before closing it adds what every varflow file carries
  // (design/formats.md, "CF and provenance"): the CF-1.10 global attributes, the run's provenance
  // (io/provenance.h) and an index coordinate variable for every dimension without one.
  void commit();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class NetcdfReader {
 public:
  // Throws InvalidArgument when the file is missing or is not netCDF. `where` starts every error
  // message (default: the path), e.g. "model file m.nc".
  explicit NetcdfReader(const std::filesystem::path& path, const std::string& where = "");
  ~NetcdfReader();

  const std::filesystem::path& path() const;
  const std::string& where() const;
  bool has_variable(const std::string& name) const;
  bool has_dimension(const std::string& name) const;
  Index dimension(const std::string& name) const;
  // A 1-D variable; with expected_size >= 0 a different size is an error naming both sizes.
  Vector read_vector(const std::string& name, Index expected_size = -1) const;
  // A 2-D variable (slow, fast) as a Matrix with fast rows and slow columns.
  Matrix read_matrix(const std::string& name, Index expected_slow = -1, Index expected_fast = -1) const;
  // An integer variable of any rank, in C order.
  std::vector<long long> read_int(const std::string& name) const;
  // A 2-D char variable (items, length) as one string per item, trailing NULs removed.
  std::vector<std::string> read_text(const std::string& name) const;
  // Global attributes, converted to the type asked for; nullopt when absent. Text loses trailing
  // NULs (some writers add one).
  std::optional<std::string> string_attribute(const std::string& name) const;
  std::optional<double> double_attribute(const std::string& name) const;
  std::optional<long long> int_attribute(const std::string& name) const;
  std::optional<std::uint64_t> unsigned_attribute(const std::string& name) const;
  // An attribute of a variable (e.g. "_FillValue"), as a double; nullopt when absent.
  std::optional<double> variable_double_attribute(const std::string& variable, const std::string& name) const;
  // A double variable of any rank in C order; `shape` (when given) receives its dimension lengths.
  std::vector<double> read_array(const std::string& name, std::vector<Index>* shape = nullptr) const;
  // The same, throwing InvalidArgument "<where>: attribute '<name>' is missing" when absent.
  std::string require_string(const std::string& name) const;
  double require_double(const std::string& name) const;
  long long require_int(const std::string& name) const;
  std::uint64_t require_unsigned(const std::string& name) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace varflow
