#pragma once
// Per-thread scratch memory for model kernels (private to the model module).
//
// Contract: a kernel leases scratch for the duration of one call and gives it back on return (RAII).
// Each thread has its own arena, so concurrent const calls on one model never share scratch, and once
// a thread has seen the largest size no call allocates. A lease taken while the thread's arena is
// already leased (a tendency that steps another model) gets its own storage: correct, only slower.
#include <cstddef>
#include <vector>

#include "varflow/core/types.h"

namespace varflow::detail {

// `count` doubles, uninitialised.
class ScratchLease {
 public:
  explicit ScratchLease(std::size_t count);
  ~ScratchLease();
  ScratchLease(const ScratchLease&) = delete;
  ScratchLease& operator=(const ScratchLease&) = delete;
  double* data() { return data_; }

 private:
  bool owns_arena_ = false;
  std::vector<double> own_;
  double* data_ = nullptr;
};

// `count` Vectors of size n (contents unspecified), for code that calls Vector-typed virtuals.
class VectorLease {
 public:
  VectorLease(std::size_t count, Index n);
  ~VectorLease();
  VectorLease(const VectorLease&) = delete;
  VectorLease& operator=(const VectorLease&) = delete;
  Vector& operator[](std::size_t i) { return vectors_[i]; }

 private:
  bool owns_arena_ = false;
  std::vector<Vector> own_;
  Vector* vectors_ = nullptr;
};

}  // namespace varflow::detail
