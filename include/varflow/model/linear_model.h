#pragma once
// Linear models x <- A x, with A dense or sparse (n x n). TL is A, AD is A^T, independent of x.
// Also the 1-D advection-diffusion model on a periodic grid, which is a sparse linear model.
#include <Eigen/SparseCore>
#include <variant>

#include "varflow/model/model.h"

namespace varflow {

using SparseMatrix = Eigen::SparseMatrix<double>;

class LinearModel : public Model {
 public:
  // A must be square with finite entries; throws InvalidArgument naming the bad shape or entry.
  explicit LinearModel(Matrix a);
  explicit LinearModel(SparseMatrix a);

  Index state_size() const override;
  std::string name() const override;
  // The matrix as dense (for tests and small problems).
  Matrix dense_matrix() const;
  // M'(x) = A does not depend on x: the second-order adjoint is zero.
  bool has_second_order() const override { return true; }

 protected:
  void do_step(Vector& x) const override;
  void do_step_tangent(const Vector& x, Vector& dx) const override;
  void do_step_adjoint(const Vector& x, Vector& ax) const override;
  void do_step_second_order_adjoint(const Vector& x, const Vector& dx, const Vector& ax_next,
                                    Vector& out) const override;

 private:
  std::variant<Matrix, SparseMatrix> a_;
};

// 1-D linear advection-diffusion  du/dt + c du/ds = kappa d2u/ds2  on a periodic grid of n points
// with spacing ds, one explicit Euler step of length dt with first-order upwind advection and
// centred diffusion. Stable and monotone when |c| dt/ds + 2 kappa dt/ds^2 <= 1, which the
// constructor requires (it throws InvalidArgument naming the Courant and diffusion numbers otherwise).
class AdvectionDiffusion1D final : public LinearModel {
 public:
  AdvectionDiffusion1D(Index n, double velocity, double diffusivity, double dt, double ds = 1.0);
  std::string name() const override;

 private:
  Index n_;
  double velocity_, diffusivity_, dt_, ds_;
};

}  // namespace varflow
