#include "varflow/obs/operators.h"

#include <cmath>

#include "varflow/core/error.h"

namespace varflow {

// ---- IdentityObservation ---------------------------------------------------------------------------
IdentityObservation::IdentityObservation(Index n) : n_(n) { check_at_least("IdentityObservation", "n", n, 1); }
std::string IdentityObservation::name() const { return format_message("identity(n=", n_, ")"); }
void IdentityObservation::do_apply(const Vector& x, Vector& y) const { y = x; }
void IdentityObservation::do_apply_tangent(const Vector&, const Vector& dx, Vector& dy) const { dy = dx; }
void IdentityObservation::do_apply_adjoint(const Vector&, const Vector& ay, Vector& ax) const { ax = ay; }
void IdentityObservation::do_apply_second_order_adjoint(const Vector&, const Vector&, const Vector&,
                                                        Vector& out) const {
  out.setZero();
}

// ---- SubsetObservation -----------------------------------------------------------------------------
namespace {
void check_indices(const char* where, Index n, const std::vector<Index>& indices) {
  check_at_least(where, "n", n, 1);
  if (indices.empty()) throw InvalidArgument(format_message(where, ": indices is empty"));
  for (std::size_t j = 0; j < indices.size(); ++j) {
    if (indices[j] < 0 || indices[j] >= n) {
      throw InvalidArgument(format_message(where, ": indices[", j, "] = ", indices[j], " outside [0, ", n, ")"));
    }
  }
}
}  // namespace

SubsetObservation::SubsetObservation(Index n, std::vector<Index> indices) : n_(n), indices_(std::move(indices)) {
  check_indices("SubsetObservation", n_, indices_);
}

SubsetObservation SubsetObservation::every(Index n, Index stride, Index offset) {
  check_at_least("SubsetObservation::every", "stride", stride, 1);
  std::vector<Index> indices;
  for (Index i = offset; i < n; i += stride) indices.push_back(i);
  return SubsetObservation(n, std::move(indices));
}

std::string SubsetObservation::name() const {
  return format_message("subset(n=", n_, ", m=", indices_.size(), ")");
}

void SubsetObservation::do_apply(const Vector& x, Vector& y) const {
  for (std::size_t j = 0; j < indices_.size(); ++j) y[static_cast<Index>(j)] = x[indices_[j]];
}
void SubsetObservation::do_apply_tangent(const Vector& x, const Vector& dx, Vector& dy) const {
  (void)x;
  do_apply(dx, dy);
}
void SubsetObservation::do_apply_adjoint(const Vector&, const Vector& ay, Vector& ax) const {
  ax.setZero();
  for (std::size_t j = 0; j < indices_.size(); ++j) ax[indices_[j]] += ay[static_cast<Index>(j)];
}
void SubsetObservation::do_apply_second_order_adjoint(const Vector&, const Vector&, const Vector&,
                                                      Vector& out) const {
  out.setZero();
}

// ---- LinearObservation -----------------------------------------------------------------------------
namespace {
void check_entries(const double* data, Index count) {
  for (Index i = 0; i < count; ++i) {
    if (!std::isfinite(data[i])) {
      throw InvalidArgument(format_message("LinearObservation: matrix H has a non-finite entry ", data[i]));
    }
  }
}
}  // namespace

LinearObservation::LinearObservation(Matrix h) : h_(std::move(h)) {
  const auto& m = std::get<Matrix>(h_);
  if (m.size() == 0) throw InvalidArgument("LinearObservation: matrix H is empty");
  check_entries(m.data(), m.size());
}

LinearObservation::LinearObservation(Eigen::SparseMatrix<double> h) : h_(std::move(h)) {
  auto& m = std::get<Eigen::SparseMatrix<double>>(h_);
  if (m.rows() == 0 || m.cols() == 0) throw InvalidArgument("LinearObservation: matrix H is empty");
  m.makeCompressed();
  check_entries(m.valuePtr(), m.nonZeros());
}

Index LinearObservation::state_size() const {
  return std::visit([](const auto& m) { return static_cast<Index>(m.cols()); }, h_);
}
Index LinearObservation::obs_size() const {
  return std::visit([](const auto& m) { return static_cast<Index>(m.rows()); }, h_);
}
std::string LinearObservation::name() const {
  const bool sparse = std::holds_alternative<Eigen::SparseMatrix<double>>(h_);
  return format_message("linear_obs(m=", obs_size(), ", n=", state_size(), sparse ? ", sparse" : ", dense", ")");
}
void LinearObservation::do_apply(const Vector& x, Vector& y) const {
  std::visit([&](const auto& m) { y = m * x; }, h_);
}
void LinearObservation::do_apply_tangent(const Vector&, const Vector& dx, Vector& dy) const {
  std::visit([&](const auto& m) { dy = m * dx; }, h_);
}
void LinearObservation::do_apply_adjoint(const Vector&, const Vector& ay, Vector& ax) const {
  std::visit([&](const auto& m) { ax = m.transpose() * ay; }, h_);
}
void LinearObservation::do_apply_second_order_adjoint(const Vector&, const Vector&, const Vector&,
                                                      Vector& out) const {
  out.setZero();
}

// ---- ArctanObservation -----------------------------------------------------------------------------
ArctanObservation::ArctanObservation(Index n, std::vector<Index> indices, double scale)
    : n_(n), indices_(std::move(indices)), scale_(scale) {
  check_indices("ArctanObservation", n_, indices_);
  check_positive("ArctanObservation", "scale", scale);
}

std::string ArctanObservation::name() const {
  return format_message("arctan(n=", n_, ", m=", indices_.size(), ", scale=", scale_, ")");
}

void ArctanObservation::do_apply(const Vector& x, Vector& y) const {
  for (std::size_t j = 0; j < indices_.size(); ++j) {
    y[static_cast<Index>(j)] = scale_ * std::atan(x[indices_[j]] / scale_);
  }
}

// d/dx [s atan(x/s)] = 1 / (1 + (x/s)^2)
void ArctanObservation::do_apply_tangent(const Vector& x, const Vector& dx, Vector& dy) const {
  for (std::size_t j = 0; j < indices_.size(); ++j) {
    const double u = x[indices_[j]] / scale_;
    dy[static_cast<Index>(j)] = dx[indices_[j]] / (1.0 + u * u);
  }
}

void ArctanObservation::do_apply_adjoint(const Vector& x, const Vector& ay, Vector& ax) const {
  ax.setZero();
  for (std::size_t j = 0; j < indices_.size(); ++j) {
    const double u = x[indices_[j]] / scale_;
    ax[indices_[j]] += ay[static_cast<Index>(j)] / (1.0 + u * u);
  }
}

// d/dx [1 / (1 + (x/s)^2)] = -2 u / (s (1 + u^2)^2), u = x/s.
void ArctanObservation::do_apply_second_order_adjoint(const Vector& x, const Vector& dx, const Vector& ay,
                                                      Vector& out) const {
  out.setZero();
  for (std::size_t j = 0; j < indices_.size(); ++j) {
    const Index i = indices_[j];
    const double u = x[i] / scale_;
    const double q = 1.0 + u * u;
    out[i] -= ay[static_cast<Index>(j)] * 2.0 * u / (scale_ * q * q) * dx[i];
  }
}

}  // namespace varflow
