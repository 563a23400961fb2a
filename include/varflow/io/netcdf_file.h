#pragma once
// Reading and writing the netCDF-4 files of varflow (formats in design/formats.md).
//
// Layout convention: a Matrix with one item per column (Eigen's column-major storage) is written as
// a 2-D variable (items, components) in C order, so `samples(sample, state)` holds draw j in row j.
// Every variable carries `long_name` and `units` attributes.
//
// NetcdfWriter writes through AtomicOutput: nothing appears at the target path until commit(); a
// writer destroyed without commit() leaves no file behind. NetcdfReader errors name the file, the
// variable and what was expected (varflow::InvalidArgument).
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
  // 1-D variable over `dim`.
  void write(const std::string& name, const std::string& dim, const Vector& values, const std::string& long_name,
             const std::string& units = "1");
  // 2-D variable (slow_dim, fast_dim) from a Matrix with fast_dim rows and slow_dim columns.
  void write(const std::string& name, const std::string& slow_dim, const std::string& fast_dim, const Matrix& m,
             const std::string& long_name, const std::string& units = "1");
  // 1-D integer variable.
  void write_int(const std::string& name, const std::string& dim, const std::vector<long long>& values,
                 const std::string& long_name);
  void attribute(const std::string& name, const std::string& value);
  void attribute(const std::string& name, double value);
  void attribute(const std::string& name, long long value);
  // Closes the file and moves it into place.
  void commit();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class NetcdfReader {
 public:
  // Throws InvalidArgument when the file is missing or is not netCDF.
  explicit NetcdfReader(const std::filesystem::path& path);
  ~NetcdfReader();

  const std::filesystem::path& path() const;
  bool has_variable(const std::string& name) const;
  Index dimension(const std::string& name) const;
  // A 1-D variable; with expected_size >= 0 a different size is an error naming both sizes.
  Vector read_vector(const std::string& name, Index expected_size = -1) const;
  // A 2-D variable (slow, fast) as a Matrix with fast rows and slow columns.
  Matrix read_matrix(const std::string& name, Index expected_slow = -1, Index expected_fast = -1) const;
  std::vector<long long> read_int(const std::string& name) const;
  std::optional<std::string> string_attribute(const std::string& name) const;
  std::optional<double> double_attribute(const std::string& name) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace varflow
