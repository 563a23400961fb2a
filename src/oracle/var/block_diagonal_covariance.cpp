#include "varflow/var/block_diagonal_covariance.h"

#include "varflow/core/error.h"

namespace varflow {

BlockDiagonalCovariance::BlockDiagonalCovariance(std::vector<std::shared_ptr<const Covariance>> blocks)
    : blocks_(std::move(blocks)) {
  if (blocks_.empty()) throw InvalidArgument("BlockDiagonalCovariance: number of blocks = 0 must be at least 1");
  for (std::size_t i = 0; i < blocks_.size(); ++i) {
    if (!blocks_[i]) throw InvalidArgument(format_message("BlockDiagonalCovariance: blocks[", i, "] is null"));
    size_ += blocks_[i]->size();
  }
}

std::string BlockDiagonalCovariance::name() const {
  std::string s = "block_diagonal(";
  for (std::size_t i = 0; i < blocks_.size(); ++i) {
    if (i > 0 && blocks_[i] == blocks_[i - 1]) continue;  // repeated shared blocks are named once
    if (i > 0) s += ", ";
    s += blocks_[i]->name();
  }
  return s + format_message(", blocks=", blocks_.size(), ")");
}

double BlockDiagonalCovariance::log_determinant() const {
  double s = 0.0;
  for (const auto& b : blocks_) s += b->log_determinant();
  return s;
}

template <typename Op>
Vector BlockDiagonalCovariance::blockwise(const Vector& x, Op op) const {
  Vector out(size_);
  Index offset = 0;
  for (const auto& b : blocks_) {
    const Index m = b->size();
    out.segment(offset, m) = op(*b, Vector(x.segment(offset, m)));
    offset += m;
  }
  return out;
}

Vector BlockDiagonalCovariance::diagonal() const {
  Vector d(size_);
  Index at = 0;
  for (const auto& b : blocks_) {
    d.segment(at, b->size()) = b->diagonal();
    at += b->size();
  }
  return d;
}

Vector BlockDiagonalCovariance::do_multiply(const Vector& x) const {
  return blockwise(x, [](const Covariance& c, const Vector& v) { return c.multiply(v); });
}
Vector BlockDiagonalCovariance::do_inverse_multiply(const Vector& x) const {
  return blockwise(x, [](const Covariance& c, const Vector& v) { return c.inverse_multiply(v); });
}
Vector BlockDiagonalCovariance::do_sqrt_multiply(const Vector& x) const {
  return blockwise(x, [](const Covariance& c, const Vector& v) { return c.sqrt_multiply(v); });
}
Vector BlockDiagonalCovariance::do_sqrt_transpose_multiply(const Vector& x) const {
  return blockwise(x, [](const Covariance& c, const Vector& v) { return c.sqrt_transpose_multiply(v); });
}
Vector BlockDiagonalCovariance::do_sqrt_inverse_multiply(const Vector& x) const {
  return blockwise(x, [](const Covariance& c, const Vector& v) { return c.sqrt_inverse_multiply(v); });
}

}  // namespace varflow
