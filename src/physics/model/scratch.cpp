#include "scratch.h"

namespace varflow::detail {

namespace {
struct DoubleArena {
  std::vector<double> buffer;
  bool leased = false;
};
struct VectorArena {
  std::vector<Vector> vectors;
  bool leased = false;
};
thread_local DoubleArena double_arena;
thread_local VectorArena vector_arena;
}  // namespace

ScratchLease::ScratchLease(std::size_t count) {
  DoubleArena& a = double_arena;
  if (!a.leased) {
    a.leased = true;
    owns_arena_ = true;
    if (a.buffer.size() < count) a.buffer.resize(count);
    data_ = a.buffer.data();
  } else {
    own_.resize(count);
    data_ = own_.data();
  }
}

ScratchLease::~ScratchLease() {
  if (owns_arena_) double_arena.leased = false;
}

VectorLease::VectorLease(std::size_t count, Index n) {
  VectorArena& a = vector_arena;
  std::vector<Vector>* v = &own_;
  if (!a.leased) {
    a.leased = true;
    owns_arena_ = true;
    v = &a.vectors;
  }
  if (v->size() < count) v->resize(count);
  for (std::size_t i = 0; i < count; ++i) {
    if ((*v)[i].size() != n) (*v)[i].resize(n);
  }
  vectors_ = v->data();
}

VectorLease::~VectorLease() {
  if (owns_arena_) vector_arena.leased = false;
}

}  // namespace varflow::detail
