#include "varflow/nn/parameters.h"

#include <cassert>
#include <cstdio>
#include <sstream>

#include "varflow/core/error.h"

namespace varflow::nn {

ParameterBinder::Block ParameterBinder::take(const std::string& name, Index rows, Index cols, bool decay) {
  assert(rows >= 0 && cols >= 0);
  ParameterBlockInfo info{name, offset_, rows, cols, decay};
  blocks_->push_back(info);
  Block b;
  if (values_ != nullptr) {
    b.value = values_ + offset_;
    b.gradient = gradients_ + offset_;
  }
  offset_ += rows * cols;
  return b;
}

void ParameterSet::add(const std::string& prefix, Parameterized& piece) {
  if (bound_) throw Error("ParameterSet::add: the set is already bound");
  pieces_.emplace_back(prefix, &piece);
}

void ParameterSet::bind() {
  if (bound_) throw Error("ParameterSet::bind: the set is already bound");
  // Pass 1: count.
  std::vector<ParameterBlockInfo> counted;
  ParameterBinder counter(&counted, nullptr, nullptr);
  for (auto& [prefix, piece] : pieces_) piece->bind(counter, prefix);
  values_ = Vector::Zero(counter.offset_);
  gradients_ = Vector::Zero(counter.offset_);
  // Pass 2: bind to the memory (a zero-size set still gets non-null pointers).
  ParameterBinder binder(&blocks_, values_.data(), gradients_.data());
  for (auto& [prefix, piece] : pieces_) piece->bind(binder, prefix);
  assert(binder.offset_ == counter.offset_);
  bound_ = true;
}

void ParameterSet::bind_shared(ParameterSet& owner) {
  if (bound_) throw Error("ParameterSet::bind_shared: the set is already bound");
  if (!owner.bound_ || owner.owner_ != nullptr) throw Error("ParameterSet::bind_shared: the owner must be bound and own its values");
  std::vector<ParameterBlockInfo> counted;
  ParameterBinder counter(&counted, nullptr, nullptr);
  for (auto& [prefix, piece] : pieces_) piece->bind(counter, prefix);
  bool same = counted.size() == owner.blocks_.size();
  for (std::size_t i = 0; same && i < counted.size(); ++i) {
    same = counted[i].name == owner.blocks_[i].name && counted[i].size() == owner.blocks_[i].size();
  }
  if (!same) throw InvalidArgument("ParameterSet::bind_shared: the replica's parameter layout differs from the owner's");
  gradients_ = Vector::Zero(counter.offset_);
  owner_ = &owner;
  ParameterBinder binder(&blocks_, owner.values_.data(), gradients_.data());
  for (auto& [prefix, piece] : pieces_) piece->bind(binder, prefix);
  bound_ = true;
}

Vector ParameterSet::decay_mask() const {
  Vector m = Vector::Zero(size());
  for (const auto& b : blocks_) {
    if (b.decay) m.segment(b.offset, b.size()).setOnes();
  }
  return m;
}

std::string ParameterSet::layout() const {
  std::ostringstream os;
  for (const auto& b : blocks_) os << b.name << ' ' << b.offset << ' ' << b.rows << ' ' << b.cols << '\n';
  return os.str();
}

}  // namespace varflow::nn
