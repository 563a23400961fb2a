#pragma once
// A block-diagonal covariance diag(C_1, ..., C_m) of operators: the prior of an augmented control
// variable, e.g. (x_0, eta_1, ..., eta_S) with diag(B, Q, ..., Q) in weak-constraint 4D-Var.
// Every operation acts block by block; L = diag(L_1, ..., L_m). The blocks are shared, not copied.
#include <memory>
#include <vector>

#include "varflow/covariance/covariance.h"

namespace varflow {

class BlockDiagonalCovariance final : public Covariance {
 public:
  // At least one block, none null; throws InvalidArgument naming the bad block.
  explicit BlockDiagonalCovariance(std::vector<std::shared_ptr<const Covariance>> blocks);

  Index size() const override { return size_; }
  std::string name() const override;
  double log_determinant() const override;
  const std::vector<std::shared_ptr<const Covariance>>& blocks() const { return blocks_; }
  Vector diagonal() const override;  // the blocks' diagonals, stacked

 protected:
  Vector do_multiply(const Vector& x) const override;
  Vector do_inverse_multiply(const Vector& x) const override;
  Vector do_sqrt_multiply(const Vector& v) const override;
  Vector do_sqrt_transpose_multiply(const Vector& x) const override;
  Vector do_sqrt_inverse_multiply(const Vector& x) const override;

 private:
  template <typename Op>
  Vector blockwise(const Vector& x, Op op) const;
  std::vector<std::shared_ptr<const Covariance>> blocks_;
  Index size_ = 0;
};

}  // namespace varflow
