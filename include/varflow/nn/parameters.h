#pragma once
// Parameter memory of a network: one contiguous vector of values and one of gradients.
//
// Ownership (mlpack style): a ParameterSet owns the memory; layers and other parameterised pieces
// only hold pointers into it, handed out through ParameterBinder when the set is bound. Optimizers
// therefore see the whole network as one flat vector `values()` with gradient `gradients()`.
//
// Layout: blocks are laid out in the order the pieces were added and, within a piece, in the order
// it asks for them (e.g. a dense layer: W then b). Each block is a column-major rows x cols matrix.
// blocks() lists name, offset and shape of every block (stored in model files, so that a file is
// self-describing and a layout mismatch is detected on load).
//
// A bound ParameterSet must not move (the pieces hold pointers into it): it is neither copyable nor
// movable. Keep it inside an object that owns the pieces as well.
#include <cstdint>
#include <string>
#include <vector>

#include "varflow/core/types.h"

namespace varflow::nn {

struct ParameterBlockInfo {
  std::string name;   // e.g. "encoder.0.dense.W"
  Index offset = 0;   // into ParameterSet::values()
  Index rows = 0;
  Index cols = 0;
  bool decay = false; // weight decay applies (weight matrices yes; biases, scales no)
  Index size() const { return rows * cols; }
};

// Hands out parameter blocks while a ParameterSet binds its pieces.
class ParameterBinder {
 public:
  struct Block {
    double* value = nullptr;     // rows * cols doubles, column-major
    double* gradient = nullptr;  // the matching gradient memory
  };
  // Reserves a rows x cols block. While the set is only counting, the pointers are null; pieces must
  // accept being bound twice (count, then bind) and keep the pointers of the last call.
  Block take(const std::string& name, Index rows, Index cols, bool decay);

 private:
  friend class ParameterSet;
  ParameterBinder(std::vector<ParameterBlockInfo>* blocks, double* values, double* gradients)
      : blocks_(blocks), values_(values), gradients_(gradients) {}
  std::vector<ParameterBlockInfo>* blocks_;
  double* values_;
  double* gradients_;
  Index offset_ = 0;
};

// Anything that owns parameters: layers, flow transforms.
class Parameterized {
 public:
  virtual ~Parameterized() = default;
  // Takes this piece's blocks from `binder`, naming them "<prefix>.<block>".
  virtual void bind(ParameterBinder& binder, const std::string& prefix) = 0;
};

class ParameterSet {
 public:
  ParameterSet() = default;
  ParameterSet(const ParameterSet&) = delete;
  ParameterSet& operator=(const ParameterSet&) = delete;

  // Registers a piece (before bind()); the piece must outlive the set.
  void add(const std::string& prefix, Parameterized& piece);
  // Allocates zeroed values and gradients and binds every registered piece. Call once.
  void bind();
  // Binds the registered pieces (an identical architecture) to the VALUES of `owner` and to gradient
  // memory of their own: a replica of the network for data-parallel work (each thread runs its own
  // replica, whose layer caches and gradients are separate, on the shared parameters). Throws
  // InvalidArgument when the layout differs from the owner's. `owner` must outlive this set.
  void bind_shared(ParameterSet& owner);
  bool bound() const { return bound_; }

  // Views of the memory (assigning to a view copies into it; the memory itself never moves, since
  // the layers point into it).
  Index size() const { return gradients_.size(); }
  Eigen::Map<Vector> values() { return {value_data(), size()}; }
  Eigen::Map<const Vector> values() const { return {value_data(), size()}; }
  Eigen::Map<Vector> gradients() { return {gradients_.data(), size()}; }
  Eigen::Map<const Vector> gradients() const { return {gradients_.data(), size()}; }
  void zero_gradients() { gradients_.setZero(); }
  const std::vector<ParameterBlockInfo>& blocks() const { return blocks_; }
  // 1 where weight decay applies, 0 elsewhere (size()).
  Vector decay_mask() const;
  // One line per block: "name offset rows cols".
  std::string layout() const;

 private:
  double* value_data() const { return owner_ ? owner_->values_.data() : const_cast<double*>(values_.data()); }
  std::vector<std::pair<std::string, Parameterized*>> pieces_;
  std::vector<ParameterBlockInfo> blocks_;
  Vector values_, gradients_;
  ParameterSet* owner_ = nullptr;
  bool bound_ = false;
};

}  // namespace varflow::nn
