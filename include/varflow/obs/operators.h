#pragma once
// The built-in observation operators.
#include <Eigen/SparseCore>
#include <variant>
#include <vector>

#include "varflow/obs/observation_operator.h"

namespace varflow {

// y = x.
class IdentityObservation final : public ObservationOperator {
 public:
  explicit IdentityObservation(Index n);
  Index state_size() const override { return n_; }
  Index obs_size() const override { return n_; }
  std::string name() const override;
  bool has_second_order() const override { return true; }

 protected:
  void do_apply(const Vector& x, Vector& y) const override;
  void do_apply_tangent(const Vector& x, const Vector& dx, Vector& dy) const override;
  void do_apply_adjoint(const Vector& x, const Vector& ay, Vector& ax) const override;
  void do_apply_second_order_adjoint(const Vector& x, const Vector& dx, const Vector& ay,
                                     Vector& out) const override;

 private:
  Index n_;
};

// y_j = x_{indices[j]}: a subset of the state variables (indices in [0, n), repeats allowed).
class SubsetObservation final : public ObservationOperator {
 public:
  SubsetObservation(Index n, std::vector<Index> indices);
  // Every `stride`-th variable starting at `offset`.
  static SubsetObservation every(Index n, Index stride, Index offset = 0);
  Index state_size() const override { return n_; }
  Index obs_size() const override { return static_cast<Index>(indices_.size()); }
  std::string name() const override;
  bool has_second_order() const override { return true; }
  const std::vector<Index>& indices() const { return indices_; }

 protected:
  void do_apply(const Vector& x, Vector& y) const override;
  void do_apply_tangent(const Vector& x, const Vector& dx, Vector& dy) const override;
  void do_apply_adjoint(const Vector& x, const Vector& ay, Vector& ax) const override;
  void do_apply_second_order_adjoint(const Vector& x, const Vector& dx, const Vector& ay,
                                     Vector& out) const override;

 private:
  Index n_;
  std::vector<Index> indices_;
};

// y = H x with a dense or sparse m x n matrix H.
class LinearObservation final : public ObservationOperator {
 public:
  explicit LinearObservation(Matrix h);
  explicit LinearObservation(Eigen::SparseMatrix<double> h);
  Index state_size() const override;
  Index obs_size() const override;
  std::string name() const override;
  bool has_second_order() const override { return true; }

 protected:
  void do_apply(const Vector& x, Vector& y) const override;
  void do_apply_tangent(const Vector& x, const Vector& dx, Vector& dy) const override;
  void do_apply_adjoint(const Vector& x, const Vector& ay, Vector& ax) const override;
  void do_apply_second_order_adjoint(const Vector& x, const Vector& dx, const Vector& ay,
                                     Vector& out) const override;

 private:
  std::variant<Matrix, Eigen::SparseMatrix<double>> h_;
};

// y_j = s * atan(x_{indices[j]} / s): a smooth, saturating nonlinear operator (a bounded sensor)
// with scale s > 0; it is near the identity for |x| << s and saturates at +-s pi/2.
class ArctanObservation final : public ObservationOperator {
 public:
  ArctanObservation(Index n, std::vector<Index> indices, double scale = 1.0);
  Index state_size() const override { return n_; }
  Index obs_size() const override { return static_cast<Index>(indices_.size()); }
  std::string name() const override;
  bool has_second_order() const override { return true; }

 protected:
  void do_apply(const Vector& x, Vector& y) const override;
  void do_apply_tangent(const Vector& x, const Vector& dx, Vector& dy) const override;
  void do_apply_adjoint(const Vector& x, const Vector& ay, Vector& ax) const override;
  void do_apply_second_order_adjoint(const Vector& x, const Vector& dx, const Vector& ay,
                                     Vector& out) const override;

 private:
  Index n_;
  std::vector<Index> indices_;
  double scale_;
};

}  // namespace varflow
