#include "varflow/emulator/product_layer.h"

#include "varflow/core/error.h"

namespace varflow::emulator {

ProductLayer::ProductLayer(Index channels, Index grid) : c_(channels), n_(grid) {
  check_at_least("ProductLayer", "channels", channels, 1);
  check_at_least("ProductLayer", "grid", grid, 1);
}

std::string ProductLayer::describe() const {
  return format_message("product(", 2 * c_, " x ", n_, " -> ", c_, " x ", n_, ")");
}

void ProductLayer::do_forward(const Matrix& x, Matrix& y) {
  const Index m = c_ * n_;
  x_ = x;
  y = x.topRows(m).cwiseProduct(x.bottomRows(m));
}

void ProductLayer::do_backward(const Matrix& dy, Matrix& dx, bool) {
  const Index m = c_ * n_;
  dx.resize(2 * m, dy.cols());
  dx.topRows(m) = dy.cwiseProduct(x_.bottomRows(m));
  dx.bottomRows(m) = dy.cwiseProduct(x_.topRows(m));
}

void ProductLayer::do_tangent(const Matrix& dx, Matrix& dy) const {
  const Index m = c_ * n_;
  dy = dx.topRows(m).cwiseProduct(x_.bottomRows(m)) + x_.topRows(m).cwiseProduct(dx.bottomRows(m));
}

void ProductLayer::do_second_order_backward(const Matrix& dx, const Matrix& a, const Matrix& da, Matrix& a_in,
                                            Matrix& da_in) const {
  const Index m = c_ * n_;
  const auto u = x_.topRows(m), v = x_.bottomRows(m);
  a_in.resize(2 * m, a.cols());
  a_in.topRows(m) = a.cwiseProduct(v);
  a_in.bottomRows(m) = a.cwiseProduct(u);
  da_in.resize(2 * m, a.cols());
  da_in.topRows(m) = da.cwiseProduct(v) + a.cwiseProduct(dx.bottomRows(m));
  da_in.bottomRows(m) = da.cwiseProduct(u) + a.cwiseProduct(dx.topRows(m));
}

}  // namespace varflow::emulator
