#include "varflow/model/linear_model.h"

#include <cmath>
#include <vector>

#include "varflow/core/error.h"

namespace varflow {

namespace {
void check_matrix_entries(const char* where, Index rows, Index cols, const double* data, Index count) {
  if (rows != cols) {
    throw InvalidArgument(format_message(where, ": matrix A is ", rows, " x ", cols, ", expected square"));
  }
  if (rows == 0) throw InvalidArgument(format_message(where, ": matrix A is empty"));
  for (Index i = 0; i < count; ++i) {
    if (!std::isfinite(data[i])) {
      throw InvalidArgument(format_message(where, ": matrix A has a non-finite entry ", data[i]));
    }
  }
}
}  // namespace

LinearModel::LinearModel(Matrix a) : a_(std::move(a)) {
  const auto& m = std::get<Matrix>(a_);
  check_matrix_entries("LinearModel", m.rows(), m.cols(), m.data(), m.size());
}

LinearModel::LinearModel(SparseMatrix a) : a_(std::move(a)) {
  auto& m = std::get<SparseMatrix>(a_);
  m.makeCompressed();
  check_matrix_entries("LinearModel", m.rows(), m.cols(), m.valuePtr(), m.nonZeros());
}

Index LinearModel::state_size() const {
  return std::visit([](const auto& m) { return static_cast<Index>(m.rows()); }, a_);
}

std::string LinearModel::name() const {
  const bool sparse = std::holds_alternative<SparseMatrix>(a_);
  return format_message("linear(n=", state_size(), sparse ? ", sparse" : ", dense", ")");
}

Matrix LinearModel::dense_matrix() const {
  return std::visit([](const auto& m) -> Matrix { return Matrix(m); }, a_);
}

void LinearModel::do_step(Vector& x) const {
  x = std::visit([&](const auto& m) -> Vector { return m * x; }, a_);
}

void LinearModel::do_step_tangent(const Vector&, Vector& dx) const { do_step(dx); }

void LinearModel::do_step_adjoint(const Vector&, Vector& ax) const {
  ax = std::visit([&](const auto& m) -> Vector { return m.transpose() * ax; }, a_);
}

void LinearModel::do_step_second_order_adjoint(const Vector&, const Vector&, const Vector&, Vector& out) const {
  out.setZero();
}

namespace {
SparseMatrix advection_diffusion_matrix(Index n, double c, double kappa, double dt, double ds) {
  const char* where = "AdvectionDiffusion1D";
  check_at_least(where, "n", n, 3);
  check_finite(where, "velocity", c);
  check_nonnegative(where, "diffusivity", kappa);
  check_positive(where, "dt", dt);
  check_positive(where, "ds", ds);
  const double courant = std::abs(c) * dt / ds;
  const double diffusion_number = kappa * dt / (ds * ds);
  if (courant + 2.0 * diffusion_number > 1.0) {
    throw InvalidArgument(format_message(where, ": unstable step: Courant number |c| dt/ds = ", courant,
                                         " plus 2 x diffusion number kappa dt/ds^2 = ", 2.0 * diffusion_number,
                                         " exceeds 1; reduce dt"));
  }
  // Upwind: for c > 0 the advective flux comes from the left neighbour, for c < 0 from the right.
  const double from_left = (c > 0 ? courant : 0.0) + diffusion_number;
  const double from_right = (c < 0 ? courant : 0.0) + diffusion_number;
  const double centre = 1.0 - courant - 2.0 * diffusion_number;
  std::vector<Eigen::Triplet<double>> t;
  t.reserve(static_cast<std::size_t>(3 * n));
  for (Index i = 0; i < n; ++i) {
    t.emplace_back(i, i, centre);
    t.emplace_back(i, (i - 1 + n) % n, from_left);
    t.emplace_back(i, (i + 1) % n, from_right);
  }
  SparseMatrix a(n, n);
  a.setFromTriplets(t.begin(), t.end());
  return a;
}
}  // namespace

AdvectionDiffusion1D::AdvectionDiffusion1D(Index n, double velocity, double diffusivity, double dt, double ds)
    : LinearModel(advection_diffusion_matrix(n, velocity, diffusivity, dt, ds)),
      n_(n), velocity_(velocity), diffusivity_(diffusivity), dt_(dt), ds_(ds) {}

std::string AdvectionDiffusion1D::name() const {
  return format_message("advection_diffusion_1d(n=", n_, ", c=", velocity_, ", kappa=", diffusivity_,
                        ", dt=", dt_, ", ds=", ds_, ")");
}

}  // namespace varflow
