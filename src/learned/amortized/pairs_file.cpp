#include "varflow/amortized/pairs_file.h"

#include <cmath>
#include <vector>

#include "varflow/core/error.h"
#include "varflow/io/netcdf_file.h"

namespace varflow::amortized {

namespace {

// The variable as a (rows = fast dimension, cols = pair) matrix, with its _FillValue as NaN.
Matrix read_with_fill(const NetcdfReader& in, const std::string& name, Index pairs, Index size) {
  Matrix m = in.read_matrix(name, pairs, size);
  if (const auto fill = in.variable_double_attribute(name, "_FillValue"); fill && std::isfinite(*fill)) {
    m = (m.array() == *fill).select(std::nan(""), m);
  }
  return m;
}

Index required_dimension(const NetcdfReader& in, const std::string& name, const std::string& where) {
  if (!in.has_dimension(name)) {
    throw InvalidArgument(format_message(where, ": no dimension '", name, "' (a pairs file has pair, state and observation)"));
  }
  return in.dimension(name);
}

}  // namespace

Dataset read_pairs_file(const std::filesystem::path& path, const ProblemShape& shape, const std::string& problem) {
  const std::string where = "--pairs " + path.string();
  const NetcdfReader in(path, where);
  for (const char* v : {"x", "y"}) {
    if (!in.has_variable(v)) {
      throw InvalidArgument(format_message(where, ": no variable '", v, "' (a pairs file has x(pair, state) and y(pair, observation))"));
    }
  }
  const Index pairs = required_dimension(in, "pair", where);
  const Index state = required_dimension(in, "state", where);
  const Index observation = required_dimension(in, "observation", where);
  if (state != shape.state_size) {
    throw InvalidArgument(format_message(where, ": state = ", state, ", but problem ", problem, " has ", shape.state_size,
                                         " state variables"));
  }
  if (observation != shape.obs_size) {
    throw InvalidArgument(format_message(where, ": observation = ", observation, ", but problem ", problem, " has ",
                                         shape.obs_size, " observations"));
  }
  if (pairs < 2) throw InvalidArgument(format_message(where, ": pair = ", pairs, ", but training needs at least 2 pairs"));
  Dataset d;
  d.x = read_with_fill(in, "x", pairs, state);
  d.y = read_with_fill(in, "y", pairs, observation);
  if (in.has_variable("mask")) {
    const std::vector<long long> mask = in.read_int("mask");
    if (static_cast<Index>(mask.size()) != pairs * observation) {
      throw InvalidArgument(format_message(where, ": mask has ", mask.size(), " values, expected pair x observation = ",
                                           pairs * observation));
    }
    for (Index j = 0; j < pairs; ++j) {
      for (Index i = 0; i < observation; ++i) {
        const long long m = mask[static_cast<std::size_t>(j * observation + i)];
        if (m != 0 && m != 1) {
          throw InvalidArgument(format_message(where, ": mask(pair ", j, ", observation ", i, ") = ", m, " is not 0 or 1"));
        }
        if (m == 0) d.y(i, j) = std::nan("");
      }
    }
  }
  // The values, named by their place in the file (Dataset::validate names matrix indices).
  for (Index j = 0; j < pairs; ++j) {
    for (Index i = 0; i < state; ++i) {
      if (!std::isfinite(d.x(i, j))) {
        throw InvalidArgument(format_message(where, ": x(pair ", j, ", state ", i, ") = ", d.x(i, j), " is not finite"));
      }
    }
    for (Index i = 0; i < observation; ++i) {
      const double v = d.y(i, j);
      if (std::isinf(v)) {
        throw InvalidArgument(format_message(where, ": y(pair ", j, ", observation ", i, ") = ", v, " is infinite"));
      }
      if (std::isnan(v) && !shape.gridded()) {
        throw InvalidArgument(format_message(where, ": y(pair ", j, ", observation ", i, ") is missing, but problem ",
                                             problem, " has no missing observations"));
      }
    }
  }
  return d;
}

void write_pairs_file(const std::filesystem::path& path, const Dataset& data) {
  check_size("write_pairs_file", "columns of y", data.y.cols(), data.x.cols());
  NetcdfWriter out(path);
  out.attribute("varflow_file_type", "varflow_pairs");
  out.attribute("format_version", 1LL);
  out.add_dimension("pair", data.size());
  out.add_dimension("state", data.x.rows());
  out.add_dimension("observation", data.y.rows());
  out.write("x", "pair", "state", data.x, "state of the pair");
  out.write("y", "pair", "observation", data.y, "observations of the pair (NaN: missing)");
  out.commit();
}

}  // namespace varflow::amortized
