#pragma once
// The precision of the network engine's matrix products (Dense and PeriodicConv1d: forward, backward,
// tangent and transpose products). Parameters, activations, losses, gradients and the optimizer stay
// double whatever it is; with float32 each product rounds its two operands to float, multiplies in
// float (twice the SIMD lanes, 1.7-4x the double gemm's rate here) and converts the result back to
// double. Default float64, bit for bit the engine as it always computed. float32 is a training
// option (nn::TrainingOptions::precision, set by fit() for its duration), as mixed precision is in
// other frameworks: the trained model is double and is sampled and gated in double.
//
// The setting is process-wide (read by every thread of the OpenMP team): one training at a time
// per process may change it.
#include <string>
#include <type_traits>

#include "varflow/core/types.h"

namespace varflow::nn {

enum class ProductPrecision { kFloat64, kFloat32 };
std::string to_string(ProductPrecision p);  // "float64" | "float32"
ProductPrecision product_precision_from_string(const std::string& s, const std::string& key = "training.precision");

ProductPrecision product_precision();
void set_product_precision(ProductPrecision p);

// Sets the precision for its lifetime and restores the previous one on destruction.
class ScopedProductPrecision {
 public:
  explicit ScopedProductPrecision(ProductPrecision p) : previous_(product_precision()) { set_product_precision(p); }
  ~ScopedProductPrecision() { set_product_precision(previous_); }
  ScopedProductPrecision(const ScopedProductPrecision&) = delete;
  ScopedProductPrecision& operator=(const ScopedProductPrecision&) = delete;

 private:
  ProductPrecision previous_;
};

namespace detail {
// Per-thread float workspaces of the float32 products (no allocation once warm).
struct FloatProductBuffers {
  Eigen::MatrixXf a, b, c;
};
FloatProductBuffers& float_product_buffers();

template <typename E>
struct IsTranspose : std::false_type {};
template <typename M>
struct IsTranspose<Eigen::Transpose<M>> : std::true_type {};

// Rounds e to float into `out` and returns the operand for the float product: `out`, or for a
// transposed expression its nested matrix rounded untransposed (a contiguous pass) and read
// transposed by the gemm, as Eigen's double gemm reads it.
template <typename E>
decltype(auto) round_to_float(const E& e, Eigen::MatrixXf& out) {
  if constexpr (IsTranspose<E>::value) {
    out = e.nestedExpression().template cast<float>();
    return out.transpose();
  } else {
    out = e.template cast<float>();
    return (out);
  }
}
}  // namespace detail

// out = a * b, or out += a * b with accumulate, in the current product precision. a and b are any
// Eigen expressions (maps, transposes, blocks); out a Matrix (resized when not accumulating) or a
// map of the right shape. float64 is the plain Eigen product, out.noalias() (+)= a * b.
template <typename A, typename B, typename Out>
void multiply(const A& a, const B& b, Out&& out, bool accumulate = false) {
  if (product_precision() == ProductPrecision::kFloat64) {
    if (accumulate) {
      out.noalias() += a * b;
    } else {
      out.noalias() = a * b;
    }
    return;
  }
  detail::FloatProductBuffers& f = detail::float_product_buffers();
  f.c.noalias() = detail::round_to_float(a, f.a) * detail::round_to_float(b, f.b);
  if (accumulate) {
    out += f.c.template cast<double>();
  } else {
    out = f.c.template cast<double>();
  }
}

}  // namespace varflow::nn
