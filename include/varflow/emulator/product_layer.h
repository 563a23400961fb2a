#pragma once
// Elementwise product of two channel groups on a grid: input 2c channels of n points (channel-major,
// entry (ch, i) at row ch*n + i), output c channels, y[ch, i] = x[ch, i] * x[c + ch, i].
// With a preceding convolution that has biases, a product layer makes degree-2 polynomials of the
// window; stacking k of them gives degree 2^k (a polynomial network, cf. Chrysos et al. 2020,
// "P-nets: deep polynomial neural networks"). Used by the emulator, whose target (one RK4 step of a
// quadratic ODE) is a polynomial dominated by its low-degree terms. No parameters. Bilinear, so its
// second-order pass has the cross term: with x = [u; v], dx = [du; dv],
//   a_in = [a v; a u],  da_in = [da v + a dv; da u + a du].
// Layer contract as in nn/layers.h (caches the input of the last forward()).
#include "varflow/nn/layers.h"

namespace varflow::emulator {

class ProductLayer final : public nn::Layer {
 public:
  ProductLayer(Index channels, Index grid);
  std::string type() const override { return "product"; }
  std::string describe() const override;
  Index input_size() const override { return 2 * c_ * n_; }
  Index output_size() const override { return c_ * n_; }
  bool has_second_order() const override { return true; }

 protected:
  void do_forward(const Matrix& x, Matrix& y) override;
  void do_backward(const Matrix& dy, Matrix& dx, bool accumulate) override;
  void do_tangent(const Matrix& dx, Matrix& dy) const override;
  void do_second_order_backward(const Matrix& dx, const Matrix& a, const Matrix& da, Matrix& a_in,
                                Matrix& da_in) const override;

 private:
  Index c_, n_;
  Matrix x_;  // cached input
};

}  // namespace varflow::emulator
