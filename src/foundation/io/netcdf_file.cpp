#include "varflow/io/netcdf_file.h"

#include <cassert>
#include <cmath>
#include <set>
#include <cstring>
#include <limits>
#include <netcdf>

#include "varflow/core/error.h"
#include "varflow/core/limits.h"
#include "varflow/io/atomic_file.h"
#include "varflow/io/netcdf_guard.h"
#include "varflow/io/provenance.h"
#include "varflow/version.h"

namespace varflow {

namespace nc = netCDF;

namespace {

// The first line of a netCDF library message (without its "file: ncFile.cpp line: ..." trailer).
std::string first_line(const std::string& what) { return what.substr(0, what.find('\n')); }

// Runs f, turning an error of the netCDF library into InvalidArgument "<where>: <first line>".
template <typename F>
auto guarded(const std::string& where, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const nc::exceptions::NcException& e) {
    throw InvalidArgument(format_message(where, ": ", first_line(e.what())));
  }
}

// Refuses a variable of `values` values of `bytes_each` bytes that would not fit in memory, before
// it is allocated (a damaged or hostile file can declare any dimension length).
void check_read_size(const std::string& where, const std::string& name, double values, double bytes_each) {
  limits::check_memory(where, format_message("variable '", name, "' (", values, " values)"), values * bytes_each);
}

std::string strip_nuls(std::string s) {
  while (!s.empty() && s.back() == '\0') s.pop_back();
  return s;
}

}  // namespace

// ---- writer -------------------------------------------------------------------------------------------
struct NetcdfWriter::Impl {
  AtomicOutput output;
  std::unique_ptr<nc::NcFile> file;
  explicit Impl(const std::filesystem::path& target) : output(target) {
    try {
      file = std::make_unique<nc::NcFile>(output.temporary_path().string(), nc::NcFile::replace, nc::NcFile::nc4);
    } catch (const nc::exceptions::NcException& e) {
      throw InvalidArgument(format_message("cannot create netCDF file ", target.string(), ": ", first_line(e.what())));
    }
  }
  std::string where() const { return output.target().string(); }
  nc::NcDim dim(const std::string& name) const {
    nc::NcDim d = file->getDim(name);
    assert(!d.isNull() && "add_dimension before writing a variable over it");
    return d;
  }
  // A new variable with its long_name and (when not empty) units. `missing`: the data hold NaN for
  // missing values, which CF readers learn from _FillValue = missing_value = NaN.
  nc::NcVar add(const std::string& name, const nc::NcType& type, const std::vector<nc::NcDim>& dims,
                const std::string& long_name, const std::string& units, bool missing = false) {
    nc::NcVar v = file->addVar(name, type, dims);
    v.putAtt("long_name", long_name);
    if (!units.empty()) v.putAtt("units", units);
    if (missing) {
      const double nan = std::numeric_limits<double>::quiet_NaN();
      v.setFill(true, nan);
      v.putAtt("missing_value", nc::ncDouble, nan);
    }
    return v;
  }
  // Checks the length of a 1-D variable over `d` (any length for an unlimited dimension) and writes it.
  template <typename T>
  void put_1d(nc::NcVar& v, const nc::NcDim& d, const std::string& name, const T* values, Index n) {
    if (d.isUnlimited()) {
      if (n > 0) v.putVar({0}, {static_cast<std::size_t>(n)}, values);
      return;
    }
    check_size(where() + ": variable " + name, d.getName(), n, static_cast<Index>(d.getSize()));
    if (n > 0) v.putVar(values);
  }
};

NetcdfWriter::NetcdfWriter(const std::filesystem::path& target) : impl_(std::make_unique<Impl>(target)) {}
NetcdfWriter::~NetcdfWriter() = default;

void NetcdfWriter::add_dimension(const std::string& name, Index size) {
  guarded(impl_->where(), [&] { return impl_->file->addDim(name, static_cast<std::size_t>(size)); });
}

void NetcdfWriter::add_unlimited_dimension(const std::string& name) {
  guarded(impl_->where(), [&] { return impl_->file->addDim(name); });
}

void NetcdfWriter::write(const std::string& name, const std::string& dim, const Vector& values,
                         const std::string& long_name, const std::string& units) {
  guarded(impl_->where(), [&] {
    const nc::NcDim d = impl_->dim(dim);
    nc::NcVar v = impl_->add(name, nc::ncDouble, {d}, long_name, units, values.hasNaN());
    impl_->put_1d(v, d, name, values.data(), values.size());
  });
}

void NetcdfWriter::write(const std::string& name, const std::string& slow_dim, const std::string& fast_dim,
                         const Matrix& m, const std::string& long_name, const std::string& units) {
  const std::string where = impl_->where() + ": variable " + name;
  check_size(where, slow_dim, m.cols(), static_cast<Index>(impl_->dim(slow_dim).getSize()));
  check_size(where, fast_dim, m.rows(), static_cast<Index>(impl_->dim(fast_dim).getSize()));
  guarded(impl_->where(), [&] {
    nc::NcVar v = impl_->add(name, nc::ncDouble, {impl_->dim(slow_dim), impl_->dim(fast_dim)}, long_name, units,
                             m.hasNaN());
    if (m.size() > 0) v.putVar(m.data());  // column-major (fast x slow) == C-order (slow, fast)
  });
}

void NetcdfWriter::write_int(const std::string& name, const std::string& dim, const std::vector<long long>& values,
                             const std::string& long_name, const std::string& units) {
  guarded(impl_->where(), [&] {
    const nc::NcDim d = impl_->dim(dim);
    nc::NcVar v = impl_->add(name, nc::ncInt64, {d}, long_name, units);
    impl_->put_1d(v, d, name, values.data(), static_cast<Index>(values.size()));
  });
}

void NetcdfWriter::write_int(const std::string& name, const std::string& slow_dim, const std::string& fast_dim,
                             const std::vector<long long>& values, const std::string& long_name,
                             const std::string& units) {
  const Index slow = static_cast<Index>(impl_->dim(slow_dim).getSize());
  const Index fast = static_cast<Index>(impl_->dim(fast_dim).getSize());
  check_size(impl_->where() + ": variable " + name, slow_dim + " x " + fast_dim, static_cast<Index>(values.size()),
             slow * fast);
  guarded(impl_->where(), [&] {
    nc::NcVar v = impl_->add(name, nc::ncInt64, {impl_->dim(slow_dim), impl_->dim(fast_dim)}, long_name, units);
    if (!values.empty()) v.putVar(values.data());
  });
}

void NetcdfWriter::write_text(const std::string& name, const std::string& dim, const std::string& length_dim,
                              const std::vector<std::string>& values, const std::string& long_name,
                              const std::string& units) {
  const std::string where = impl_->where() + ": variable " + name;
  check_size(where, dim, static_cast<Index>(values.size()), static_cast<Index>(impl_->dim(dim).getSize()));
  const std::size_t length = impl_->dim(length_dim).getSize();
  std::vector<char> chars(values.size() * length, '\0');
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (values[i].size() > length) {
      throw InvalidArgument(format_message(where, ": '", values[i], "' is longer than ", length_dim, " = ", length));
    }
    std::memcpy(chars.data() + i * length, values[i].data(), values[i].size());
  }
  guarded(impl_->where(), [&] {
    nc::NcVar v = impl_->add(name, nc::ncChar, {impl_->dim(dim), impl_->dim(length_dim)}, long_name, units);
    if (!chars.empty()) v.putVar(chars.data());
  });
}

void NetcdfWriter::attribute(const std::string& name, const std::string& value) {
  guarded(impl_->where(), [&] { return impl_->file->putAtt(name, value); });
}
void NetcdfWriter::attribute(const std::string& name, double value) {
  guarded(impl_->where(), [&] { return impl_->file->putAtt(name, nc::ncDouble, value); });
}
void NetcdfWriter::attribute(const std::string& name, int value) {
  guarded(impl_->where(), [&] { return impl_->file->putAtt(name, nc::ncInt, value); });
}
void NetcdfWriter::variable_attribute(const std::string& variable, const std::string& name, const std::string& value) {
  guarded(impl_->where(), [&] {
    nc::NcVar v = impl_->file->getVar(variable);
    assert(!v.isNull() && "write the variable before its attributes");
    v.putAtt(name, value);
  });
}
void NetcdfWriter::variable_attribute(const std::string& variable, const std::string& name,
                                      const std::vector<long long>& values) {
  guarded(impl_->where(), [&] {
    nc::NcVar v = impl_->file->getVar(variable);
    assert(!v.isNull() && "write the variable before its attributes");
    v.putAtt(name, nc::ncInt64, values.size(), values.data());
  });
}

void NetcdfWriter::attribute(const std::string& name, long long value) {
  guarded(impl_->where(), [&] { return impl_->file->putAtt(name, nc::ncInt64, value); });
}
void NetcdfWriter::attribute(const std::string& name, std::uint64_t value) {
  guarded(impl_->where(), [&] {
    return impl_->file->putAtt(name, nc::ncUint64, static_cast<unsigned long long>(value));
  });
}

namespace {

// The CF-1.10 global attributes and the run's provenance (io/provenance.h), each unless the writer
// set its own. A writer whose own `config` holds something else (a model's architecture) gets the
// run's config text as `run_config`; `config_hash` is always the hash of the run's config text.
void add_conventions_and_provenance(nc::NcFile& file) {
  const auto absent = [&](const char* name) { return file.getAtt(name).isNull(); };
  const std::string created = utc_timestamp(), program = std::string("varflow ") + VARFLOW_VERSION_STRING;
  const RunProvenance& run = run_provenance();
  if (absent("Conventions")) file.putAtt("Conventions", "CF-1.10");
  if (absent("source")) file.putAtt("source", program);
  if (absent("varflow_version")) file.putAtt("varflow_version", std::string(VARFLOW_VERSION_STRING));
  if (absent("varflow_build_arch")) file.putAtt("varflow_build_arch", std::string(VARFLOW_BUILD_ARCH));
  if (absent("date_created")) file.putAtt("date_created", created);
  if (absent("history")) {
    file.putAtt("history", run.command_line.empty() ? created + " written by " + program
                                                    : created + " " + program + ": " + run.command_line);
  }
  if (run.config.empty() && !run.seed) return;
  if (absent("config")) {
    file.putAtt("config", run.config);
  } else {
    std::string own;
    file.getAtt("config").getValues(own);
    if (strip_nuls(own) != run.config) file.putAtt("run_config", run.config);
  }
  if (absent("config_hash")) file.putAtt("config_hash", provenance_config_hash(run.config));
  if (absent("seed") && run.seed) file.putAtt("seed", nc::ncUint64, static_cast<unsigned long long>(*run.seed));
}

// A CF coordinate variable for every dimension that has none: the 0-based index, units "1". The
// length dimension of a char (string) variable gets none (CF: it is not a coordinate).
void add_index_coordinates(nc::NcFile& file) {
  std::set<std::string> string_lengths;
  for (const auto& [name, var] : file.getVars()) {
    if (var.getType() == nc::ncChar && var.getDimCount() > 0) {
      string_lengths.insert(var.getDim(var.getDimCount() - 1).getName());
    }
  }
  for (const auto& [name, dim] : file.getDims()) {
    if (!file.getVar(name).isNull() || string_lengths.count(name) != 0) continue;
    nc::NcVar v = file.addVar(name, nc::ncInt64, dim);
    // A long index (a model's parameters) deflates to almost nothing; a short one is cheaper unchunked.
    if (dim.getSize() >= 1024) v.setCompression(true, true, 1);
    v.putAtt("long_name", name + " index (0-based)");
    v.putAtt("units", "1");
    std::vector<long long> index(dim.getSize());
    for (std::size_t i = 0; i < index.size(); ++i) index[i] = static_cast<long long>(i);
    if (!index.empty()) v.putVar({0}, {index.size()}, index.data());
  }
}

}  // namespace

void NetcdfWriter::write_array(const std::string& name, const std::vector<std::string>& dims,
                               const std::vector<double>& values, const std::string& long_name,
                               const std::string& units) {
  std::vector<nc::NcDim> ds;
  Index size = 1;
  std::string shape;
  for (const auto& d : dims) {
    ds.push_back(impl_->dim(d));
    size *= static_cast<Index>(ds.back().getSize());
    shape += (shape.empty() ? "" : " x ") + d;
  }
  check_size(impl_->where() + ": variable " + name, shape, static_cast<Index>(values.size()), size);
  bool missing = false;
  for (double v : values) missing = missing || std::isnan(v);
  guarded(impl_->where(), [&] {
    nc::NcVar v = impl_->add(name, nc::ncDouble, ds, long_name, units, missing);
    if (!values.empty()) v.putVar(values.data());
  });
}

void NetcdfWriter::commit() {
  guarded(impl_->where(), [&] {
    add_conventions_and_provenance(*impl_->file);
    add_index_coordinates(*impl_->file);
  });
  guarded(impl_->where(), [&] { impl_->file->close(); });
  append_checksum_trailer(impl_->output.temporary_path());  // io/netcdf_guard.h
  impl_->output.commit();
}

// ---- reader -------------------------------------------------------------------------------------------
struct NetcdfReader::Impl {
  std::filesystem::path path;
  std::string where;
  std::unique_ptr<nc::NcFile> file;
  nc::NcVar var(const std::string& name) const {
    nc::NcVar v = file->getVar(name);
    if (v.isNull()) throw InvalidArgument(format_message(where, ": variable '", name, "' is missing"));
    return v;
  }
  // The global attribute `name`, or a null attribute.
  nc::NcGroupAtt att(const std::string& name) const {
    const auto atts = file->getAtts();
    const auto it = atts.find(name);
    return it == atts.end() ? nc::NcGroupAtt() : it->second;
  }
  [[noreturn]] void missing_attribute(const std::string& name) const {
    throw InvalidArgument(format_message(where, ": attribute '", name, "' is missing"));
  }
};

NetcdfReader::NetcdfReader(const std::filesystem::path& path, const std::string& where)
    : impl_(std::make_unique<Impl>()) {
  impl_->path = path;
  impl_->where = where.empty() ? path.string() : where;
  if (!std::filesystem::exists(path)) {
    throw InvalidArgument(where.empty() ? format_message("netCDF file ", path.string(), " does not exist")
                                        : format_message(where, " does not exist"));
  }
  check_netcdf_before_open(path, impl_->where);  // io/netcdf_guard.h: no damaged file reaches HDF5 here
  try {
    impl_->file = std::make_unique<nc::NcFile>(path.string(), nc::NcFile::read);
  } catch (const nc::exceptions::NcException& e) {
    throw InvalidArgument(format_message(impl_->where, " is not a readable netCDF file: ", first_line(e.what())));
  }
}
NetcdfReader::~NetcdfReader() = default;

const std::filesystem::path& NetcdfReader::path() const { return impl_->path; }
const std::string& NetcdfReader::where() const { return impl_->where; }

// Every read runs under guarded(): an error of the netCDF library (e.g. a damaged file) is an
// InvalidArgument naming the file.
bool NetcdfReader::has_variable(const std::string& name) const {
  return guarded(impl_->where, [&]() -> bool { return !impl_->file->getVar(name).isNull(); });
}
bool NetcdfReader::has_dimension(const std::string& name) const {
  return guarded(impl_->where, [&]() -> bool { return !impl_->file->getDim(name).isNull(); });
}

Index NetcdfReader::dimension(const std::string& name) const {
  return guarded(impl_->where, [&]() -> Index {
    nc::NcDim d = impl_->file->getDim(name);
    if (d.isNull()) throw InvalidArgument(format_message(impl_->where, ": dimension '", name, "' is missing"));
    return static_cast<Index>(d.getSize());
  });
}

Vector NetcdfReader::read_vector(const std::string& name, Index expected_size) const {
  return guarded(impl_->where, [&]() -> Vector {
    nc::NcVar v = impl_->var(name);
    if (v.getDimCount() != 1) {
      throw InvalidArgument(format_message(impl_->where, ": variable '", name, "' has ", v.getDimCount(),
                                           " dimensions, expected 1"));
    }
    const Index n = static_cast<Index>(v.getDim(0).getSize());
    if (expected_size >= 0) check_size(impl_->where + ": variable '" + name + "'", "length", n, expected_size);
    check_read_size(impl_->where, name, static_cast<double>(n), sizeof(double));
    Vector out(n);
    if (n > 0) guarded(impl_->where, [&] { v.getVar(out.data()); });
    return out;
  });
}

Matrix NetcdfReader::read_matrix(const std::string& name, Index expected_slow, Index expected_fast) const {
  return guarded(impl_->where, [&]() -> Matrix {
    nc::NcVar v = impl_->var(name);
    if (v.getDimCount() != 2) {
      throw InvalidArgument(format_message(impl_->where, ": variable '", name, "' has ", v.getDimCount(),
                                           " dimensions, expected 2"));
    }
    const Index slow = static_cast<Index>(v.getDim(0).getSize()), fast = static_cast<Index>(v.getDim(1).getSize());
    const std::string where = impl_->where + ": variable '" + name + "'";
    if (expected_slow >= 0) check_size(where, v.getDim(0).getName(), slow, expected_slow);
    if (expected_fast >= 0) check_size(where, v.getDim(1).getName(), fast, expected_fast);
    check_read_size(impl_->where, name, static_cast<double>(fast) * static_cast<double>(slow), sizeof(double));
    Matrix out(fast, slow);
    if (out.size() > 0) guarded(impl_->where, [&] { v.getVar(out.data()); });
    return out;
  });
}

std::vector<long long> NetcdfReader::read_int(const std::string& name) const {
  return guarded(impl_->where, [&]() -> std::vector<long long> {
    nc::NcVar v = impl_->var(name);
    double values = 1.0;
    for (int d = 0; d < v.getDimCount(); ++d) values *= static_cast<double>(v.getDim(d).getSize());
    check_read_size(impl_->where, name, values, sizeof(long long));
    std::size_t n = 1;
    for (int d = 0; d < v.getDimCount(); ++d) n *= v.getDim(d).getSize();
    std::vector<long long> out(n);
    if (n > 0) guarded(impl_->where, [&] { v.getVar(out.data()); });
    return out;
  });
}

std::vector<std::string> NetcdfReader::read_text(const std::string& name) const {
  return guarded(impl_->where, [&]() -> std::vector<std::string> {
    nc::NcVar v = impl_->var(name);
    if (v.getDimCount() != 2) {
      throw InvalidArgument(format_message(impl_->where, ": variable '", name, "' has ", v.getDimCount(),
                                           " dimensions, expected 2 (items, length)"));
    }
    const std::size_t items = v.getDim(0).getSize(), length = v.getDim(1).getSize();
    check_read_size(impl_->where, name, static_cast<double>(items) * static_cast<double>(length), 1.0);
    std::vector<char> chars(items * length);
    if (!chars.empty()) guarded(impl_->where, [&] { v.getVar(chars.data()); });
    std::vector<std::string> out;
    for (std::size_t i = 0; i < items; ++i) {
      std::string s(chars.data() + i * length, length);
      out.push_back(s.substr(0, s.find('\0')));
    }
    return out;
  });
}

std::optional<std::string> NetcdfReader::string_attribute(const std::string& name) const {
  return guarded(impl_->where, [&]() -> std::optional<std::string> {
    const nc::NcGroupAtt a = impl_->att(name);
    if (a.isNull()) return std::nullopt;
    std::string value;
    guarded(impl_->where, [&] { a.getValues(value); });
    return strip_nuls(value);
  });
}

std::optional<double> NetcdfReader::double_attribute(const std::string& name) const {
  return guarded(impl_->where, [&]() -> std::optional<double> {
    const nc::NcGroupAtt a = impl_->att(name);
    if (a.isNull()) return std::nullopt;
    double value = 0.0;
    guarded(impl_->where, [&] { a.getValues(&value); });
    return value;
  });
}

std::optional<long long> NetcdfReader::int_attribute(const std::string& name) const {
  return guarded(impl_->where, [&]() -> std::optional<long long> {
    const nc::NcGroupAtt a = impl_->att(name);
    if (a.isNull()) return std::nullopt;
    long long value = 0;
    guarded(impl_->where, [&] { a.getValues(&value); });
    return value;
  });
}

std::optional<std::uint64_t> NetcdfReader::unsigned_attribute(const std::string& name) const {
  return guarded(impl_->where, [&]() -> std::optional<std::uint64_t> {
    const nc::NcGroupAtt a = impl_->att(name);
    if (a.isNull()) return std::nullopt;
    unsigned long long value = 0;
    guarded(impl_->where, [&] { a.getValues(&value); });
    return static_cast<std::uint64_t>(value);
  });
}

std::optional<double> NetcdfReader::variable_double_attribute(const std::string& variable,
                                                              const std::string& name) const {
  return guarded(impl_->where, [&]() -> std::optional<double> {
    const nc::NcVar v = impl_->var(variable);
    const auto atts = v.getAtts();
    const auto it = atts.find(name);
    if (it == atts.end()) return std::nullopt;
    double value = 0.0;
    guarded(impl_->where, [&] { it->second.getValues(&value); });
    return value;
  });
}

std::vector<double> NetcdfReader::read_array(const std::string& name, std::vector<Index>* shape) const {
  nc::NcVar v = impl_->var(name);
  std::size_t n = 1;
  if (shape != nullptr) shape->clear();
  for (int d = 0; d < v.getDimCount(); ++d) {
    n *= v.getDim(d).getSize();
    if (shape != nullptr) shape->push_back(static_cast<Index>(v.getDim(d).getSize()));
  }
  std::vector<double> out(n);
  if (n > 0) guarded(impl_->where, [&] { v.getVar(out.data()); });
  return out;
}

std::string NetcdfReader::require_string(const std::string& name) const {
  auto v = string_attribute(name);
  if (!v) impl_->missing_attribute(name);
  return *v;
}
double NetcdfReader::require_double(const std::string& name) const {
  const auto v = double_attribute(name);
  if (!v) impl_->missing_attribute(name);
  return *v;
}
long long NetcdfReader::require_int(const std::string& name) const {
  const auto v = int_attribute(name);
  if (!v) impl_->missing_attribute(name);
  return *v;
}
std::uint64_t NetcdfReader::require_unsigned(const std::string& name) const {
  const auto v = unsigned_attribute(name);
  if (!v) impl_->missing_attribute(name);
  return *v;
}

}  // namespace varflow
