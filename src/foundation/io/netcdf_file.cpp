#include "varflow/io/netcdf_file.h"

#include <cassert>
#include <netcdf>

#include "varflow/core/error.h"
#include "varflow/io/atomic_file.h"

namespace varflow {

namespace nc = netCDF;

// ---- writer -------------------------------------------------------------------------------------------
struct NetcdfWriter::Impl {
  AtomicOutput output;
  std::unique_ptr<nc::NcFile> file;
  explicit Impl(const std::filesystem::path& target) : output(target) {
    try {
      file = std::make_unique<nc::NcFile>(output.temporary_path().string(), nc::NcFile::replace, nc::NcFile::nc4);
    } catch (const nc::exceptions::NcException& e) {
      throw InvalidArgument(format_message("cannot create netCDF file ", target.string(), ": ", e.what()));
    }
  }
  std::string where() const { return output.target().string(); }
  nc::NcDim dim(const std::string& name) const {
    nc::NcDim d = file->getDim(name);
    assert(!d.isNull() && "add_dimension before writing a variable over it");
    return d;
  }
};

NetcdfWriter::NetcdfWriter(const std::filesystem::path& target) : impl_(std::make_unique<Impl>(target)) {}
NetcdfWriter::~NetcdfWriter() = default;

void NetcdfWriter::add_dimension(const std::string& name, Index size) {
  impl_->file->addDim(name, static_cast<std::size_t>(size));
}

void NetcdfWriter::write(const std::string& name, const std::string& dim, const Vector& values,
                         const std::string& long_name, const std::string& units) {
  check_size(impl_->where() + ": variable " + name, dim, values.size(),
             static_cast<Index>(impl_->dim(dim).getSize()));
  nc::NcVar v = impl_->file->addVar(name, nc::ncDouble, impl_->dim(dim));
  v.putAtt("long_name", long_name);
  v.putAtt("units", units);
  v.putVar(values.data());
}

void NetcdfWriter::write(const std::string& name, const std::string& slow_dim, const std::string& fast_dim,
                         const Matrix& m, const std::string& long_name, const std::string& units) {
  const std::string where = impl_->where() + ": variable " + name;
  check_size(where, slow_dim, m.cols(), static_cast<Index>(impl_->dim(slow_dim).getSize()));
  check_size(where, fast_dim, m.rows(), static_cast<Index>(impl_->dim(fast_dim).getSize()));
  nc::NcVar v = impl_->file->addVar(name, nc::ncDouble, {impl_->dim(slow_dim), impl_->dim(fast_dim)});
  v.putAtt("long_name", long_name);
  v.putAtt("units", units);
  v.putVar(m.data());  // column-major (fast x slow) == C-order (slow, fast)
}

void NetcdfWriter::write_int(const std::string& name, const std::string& dim, const std::vector<long long>& values,
                             const std::string& long_name) {
  check_size(impl_->where() + ": variable " + name, dim, static_cast<Index>(values.size()),
             static_cast<Index>(impl_->dim(dim).getSize()));
  nc::NcVar v = impl_->file->addVar(name, nc::ncInt64, impl_->dim(dim));
  v.putAtt("long_name", long_name);
  v.putVar(values.data());
}

void NetcdfWriter::attribute(const std::string& name, const std::string& value) { impl_->file->putAtt(name, value); }
void NetcdfWriter::attribute(const std::string& name, double value) {
  impl_->file->putAtt(name, nc::ncDouble, value);
}
void NetcdfWriter::attribute(const std::string& name, long long value) {
  impl_->file->putAtt(name, nc::ncInt64, value);
}

void NetcdfWriter::commit() {
  impl_->file->close();
  impl_->output.commit();
}

// ---- reader -------------------------------------------------------------------------------------------
struct NetcdfReader::Impl {
  std::filesystem::path path;
  std::unique_ptr<nc::NcFile> file;
  nc::NcVar var(const std::string& name) const {
    nc::NcVar v = file->getVar(name);
    if (v.isNull()) {
      throw InvalidArgument(format_message(path.string(), ": variable '", name, "' is missing"));
    }
    return v;
  }
};

NetcdfReader::NetcdfReader(const std::filesystem::path& path) : impl_(std::make_unique<Impl>()) {
  impl_->path = path;
  if (!std::filesystem::exists(path)) {
    throw InvalidArgument(format_message("netCDF file ", path.string(), " does not exist"));
  }
  try {
    impl_->file = std::make_unique<nc::NcFile>(path.string(), nc::NcFile::read);
  } catch (const nc::exceptions::NcException& e) {
    throw InvalidArgument(format_message(path.string(), " is not a readable netCDF file: ", e.what()));
  }
}
NetcdfReader::~NetcdfReader() = default;

const std::filesystem::path& NetcdfReader::path() const { return impl_->path; }

bool NetcdfReader::has_variable(const std::string& name) const { return !impl_->file->getVar(name).isNull(); }

Index NetcdfReader::dimension(const std::string& name) const {
  nc::NcDim d = impl_->file->getDim(name);
  if (d.isNull()) throw InvalidArgument(format_message(impl_->path.string(), ": dimension '", name, "' is missing"));
  return static_cast<Index>(d.getSize());
}

Vector NetcdfReader::read_vector(const std::string& name, Index expected_size) const {
  nc::NcVar v = impl_->var(name);
  if (v.getDimCount() != 1) {
    throw InvalidArgument(format_message(impl_->path.string(), ": variable '", name, "' has ", v.getDimCount(),
                                         " dimensions, expected 1"));
  }
  const Index n = static_cast<Index>(v.getDim(0).getSize());
  if (expected_size >= 0) check_size(impl_->path.string() + ": variable '" + name + "'", "length", n, expected_size);
  Vector out(n);
  v.getVar(out.data());
  return out;
}

Matrix NetcdfReader::read_matrix(const std::string& name, Index expected_slow, Index expected_fast) const {
  nc::NcVar v = impl_->var(name);
  if (v.getDimCount() != 2) {
    throw InvalidArgument(format_message(impl_->path.string(), ": variable '", name, "' has ", v.getDimCount(),
                                         " dimensions, expected 2"));
  }
  const Index slow = static_cast<Index>(v.getDim(0).getSize()), fast = static_cast<Index>(v.getDim(1).getSize());
  const std::string where = impl_->path.string() + ": variable '" + name + "'";
  if (expected_slow >= 0) check_size(where, v.getDim(0).getName(), slow, expected_slow);
  if (expected_fast >= 0) check_size(where, v.getDim(1).getName(), fast, expected_fast);
  Matrix out(fast, slow);
  v.getVar(out.data());
  return out;
}

std::vector<long long> NetcdfReader::read_int(const std::string& name) const {
  nc::NcVar v = impl_->var(name);
  std::size_t n = 1;
  for (int d = 0; d < v.getDimCount(); ++d) n *= v.getDim(d).getSize();
  std::vector<long long> out(n);
  v.getVar(out.data());
  return out;
}

std::optional<std::string> NetcdfReader::string_attribute(const std::string& name) const {
  const auto atts = impl_->file->getAtts();
  const auto it = atts.find(name);
  if (it == atts.end()) return std::nullopt;
  std::string value;
  it->second.getValues(value);
  return value;
}

std::optional<double> NetcdfReader::double_attribute(const std::string& name) const {
  const auto atts = impl_->file->getAtts();
  const auto it = atts.find(name);
  if (it == atts.end()) return std::nullopt;
  double value = 0.0;
  it->second.getValues(&value);
  return value;
}

}  // namespace varflow
