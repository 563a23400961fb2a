#include "varflow/nn/precision.h"

#include <atomic>

#include "varflow/core/enum_text.h"

namespace varflow::nn {

namespace {
std::atomic<ProductPrecision> g_precision{ProductPrecision::kFloat64};
constexpr EnumNames<ProductPrecision, 2> kPrecisionNames{
    {{ProductPrecision::kFloat64, "float64"}, {ProductPrecision::kFloat32, "float32"}}};
}  // namespace

std::string to_string(ProductPrecision p) { return std::string(to_text(kPrecisionNames, p)); }

ProductPrecision product_precision_from_string(const std::string& s, const std::string& key) {
  return from_text(kPrecisionNames, key, s);
}

ProductPrecision product_precision() { return g_precision.load(std::memory_order_relaxed); }
void set_product_precision(ProductPrecision p) { g_precision.store(p, std::memory_order_relaxed); }

namespace detail {
FloatProductBuffers& float_product_buffers() {
  thread_local FloatProductBuffers buffers;
  return buffers;
}
}  // namespace detail

}  // namespace varflow::nn
