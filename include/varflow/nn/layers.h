#pragma once
// Batched neural-network layers on Eigen: one sample per column.
//
// Layer contract (in the spirit of mlpack's Forward / Backward / Gradient):
//  - forward(x, y): x is input_size() x B; y is resized to output_size() x B. The layer caches what
//    backward() and tangent() need, so a layer object is stateful and NOT thread-safe: backward()
//    and tangent() refer to the most recent forward(). (Inside a layer, work over the batch is
//    parallel: Eigen's matrix products and OpenMP loops over columns.)
//  - backward(dy, dx, accumulate): given dL/dy (output_size() x B) writes dL/dx (input_size() x B)
//    and, when `accumulate` is true, ADDS dL/dtheta to the gradient memory of the layer's
//    parameters (the caller zeroes it per step). With accumulate = false only dL/dx is computed
//    (vector-Jacobian products with respect to the input).
//  - tangent(dx, dy): the Jacobian-vector product dy = (dy/dx) dx at the cached input, one tangent
//    per column (forward-mode; used for Jacobian-vector products of a posterior mean).
//  - Parameters live in a ParameterSet (the network owns the memory); a layer receives views of
//    its blocks through bind() and initialises them in initialize(rng).
//  - second_order_backward(dx, a, da, a_in, da_in) (optional; has_second_order() says whether a
//    layer has it): forward-over-reverse, the tangent of backward() in the direction dx of the input,
//    at the cached input x, per column:
//        a_in  = J(x)^T a                              (what backward(a, a_in, false) writes)
//        da_in = J(x)^T da + (d/dx [J(x)^T a]) dx      (a and da: output_size() x B; dx, a_in, da_in:
//                                                       input_size() x B)
//    With da = 0, da_in is the Hessian of x -> <a, y(x)> applied to dx (symmetric in dx). Input
//    derivatives only (parameters held fixed). A network composes it as the backward pass
//    propagating (a, da) with the tangents dx_l of the layer inputs from a tangent forward pass; a
//    layer affine in its input adds no second-order term. It is what a second-order adjoint of a
//    learned model step needs (Le Dimet, Navon & Daescu 2002). A layer without it refuses with
//    InvalidArgument naming the layer.
//  - forward, backward, tangent and second_order_backward are checked entry points: a wrong shape is
//    InvalidArgument naming the layer; a layer implements do_forward, do_backward and do_tangent
//    (and, declaring has_second_order(), do_second_order_backward).
// Every layer is held to the LayerConformance suite (testing/conformance.h: gradient_check.h against
// central finite differences, the dot-product test, refusal of wrong shapes; a layer with a
// second-order pass also check_layer_second_order against central differences of backward() and its
// symmetry test).
#include <memory>
#include <string>
#include <vector>

#include "varflow/core/random.h"
#include "varflow/core/types.h"
#include "varflow/nn/parameters.h"

namespace varflow::nn {

enum class Activation { kIdentity, kTanh, kSilu, kRelu, kSoftplus };
std::string to_string(Activation a);
// Throws InvalidArgument naming `what` and the value when `name` is not one of
// identity, tanh, silu, relu, softplus.
Activation activation_from_string(const std::string& name, const std::string& what = "activation");

class Layer : public Parameterized {
 public:
  virtual std::string type() const = 0;     // "dense", "tanh", "sequential", ...
  virtual std::string describe() const;     // e.g. "dense(16 -> 64)"
  virtual Index input_size() const = 0;
  virtual Index output_size() const = 0;
  void bind(ParameterBinder&, const std::string&) override {}
  // Draws initial parameter values (no-op for layers without parameters).
  virtual void initialize(Rng&) {}
  // The passes of the contract above. They check the shapes and throw InvalidArgument naming the
  // layer (x: input_size() rows; dy: output_size() rows and the batch of the last forward(); dx of
  // tangent: input_size() rows and that batch), then call the do_* functions a layer implements,
  // which may assume valid shapes.
  void forward(const Matrix& x, Matrix& y);
  void backward(const Matrix& dy, Matrix& dx, bool accumulate = true);
  void tangent(const Matrix& dx, Matrix& dy) const;
  // Whether second_order_backward is available (default false).
  virtual bool has_second_order() const { return false; }
  // The forward-over-reverse pass of the contract above (a_in, da_in are resized). Throws
  // InvalidArgument naming the layer when it has none, or when dx is not input_size() x batch or a,
  // da are not output_size() x batch of the last forward().
  void second_order_backward(const Matrix& dx, const Matrix& a, const Matrix& da, Matrix& a_in,
                             Matrix& da_in) const;

 protected:
  virtual void do_forward(const Matrix& x, Matrix& y) = 0;
  virtual void do_backward(const Matrix& dy, Matrix& dx, bool accumulate) = 0;
  virtual void do_tangent(const Matrix& dx, Matrix& dy) const = 0;
  // Called with valid shapes when has_second_order() is true. The default throws InvalidArgument.
  virtual void do_second_order_backward(const Matrix& dx, const Matrix& a, const Matrix& da, Matrix& a_in,
                                        Matrix& da_in) const;

 private:
  // "<type> layer (<in> -> <out>)", the start of the shape errors.
  std::string where() const;
  Index batch_ = -1;  // columns of the last forward() (-1: none yet)
};

// How a dense layer's weights are drawn: N(0, s^2 / fan_in) with s = 1 (LeCun), sqrt(2) (He, for
// ReLU), a small s = 0.1 (last layer of a residual branch), or exactly zero (a flow's conditioner
// output, so that every coupling starts as the identity; Kingma & Dhariwal 2018).
enum class Init { kLecun, kHe, kSmall, kZero };

// y = W x + b, W: out x in, b: out. Parameter blocks "W" (decayed) then "b".
class Dense final : public Layer {
 public:
  Dense(Index in, Index out, Init init = Init::kLecun);
  std::string type() const override { return "dense"; }
  std::string describe() const override;
  Index input_size() const override { return in_; }
  Index output_size() const override { return out_; }
  bool has_second_order() const override { return true; }
  void bind(ParameterBinder& binder, const std::string& prefix) override;
  void initialize(Rng& rng) override;

  Eigen::Map<Matrix> weight() { return {w_.value, out_, in_}; }
  Eigen::Map<Vector> bias() { return {b_.value, out_}; }

 protected:
  void do_forward(const Matrix& x, Matrix& y) override;
  void do_backward(const Matrix& dy, Matrix& dx, bool accumulate) override;
  void do_tangent(const Matrix& dx, Matrix& dy) const override;
  void do_second_order_backward(const Matrix& dx, const Matrix& a, const Matrix& da, Matrix& a_in,
                                Matrix& da_in) const override;

 private:
  Index in_, out_;
  Init init_;
  ParameterBinder::Block w_, b_;
  Matrix x_;  // cached input
};

// Elementwise y = f(x): tanh, SiLU x*sigmoid(x) (Elfwing et al. 2018), ReLU, softplus log(1+e^x)
// (evaluated stably), or the identity. The second-order pass evaluates f'' at the input cached by
// forward().
class ActivationLayer final : public Layer {
 public:
  ActivationLayer(Activation kind, Index size);
  std::string type() const override { return to_string(kind_); }
  std::string describe() const override;
  Index input_size() const override { return size_; }
  Index output_size() const override { return size_; }
  bool has_second_order() const override { return true; }

 protected:
  void do_forward(const Matrix& x, Matrix& y) override;
  void do_backward(const Matrix& dy, Matrix& dx, bool accumulate) override;
  void do_tangent(const Matrix& dx, Matrix& dy) const override;
  void do_second_order_backward(const Matrix& dx, const Matrix& a, const Matrix& da, Matrix& a_in,
                                Matrix& da_in) const override;

 private:
  Activation kind_;
  Index size_;
  Matrix derivative_;  // f'(x) at the cached input
  Matrix input_;       // the cached input x (the second-order pass evaluates f''(x) from it)
};

// Layers applied in order; owns them. Parameter blocks are named "<prefix>.<i>.<type>.<block>".
class Sequential final : public Layer {
 public:
  Sequential() = default;
  // Appends a layer; its input size must match the current output size (InvalidArgument otherwise).
  Sequential& add(std::unique_ptr<Layer> layer);
  template <typename L, typename... Args>
  Sequential& emplace(Args&&... args) {
    return add(std::make_unique<L>(std::forward<Args>(args)...));
  }
  std::string type() const override { return "sequential"; }
  std::string describe() const override;  // one layer per line
  Index input_size() const override;
  Index output_size() const override;
  bool has_second_order() const override;  // when every layer has it
  Index layer_count() const { return static_cast<Index>(layers_.size()); }
  Layer& layer(Index i) { return *layers_[static_cast<std::size_t>(i)]; }
  void bind(ParameterBinder& binder, const std::string& prefix) override;
  void initialize(Rng& rng) override;

 protected:
  void do_forward(const Matrix& x, Matrix& y) override;
  void do_backward(const Matrix& dy, Matrix& dx, bool accumulate) override;
  void do_tangent(const Matrix& dx, Matrix& dy) const override;
  void do_second_order_backward(const Matrix& dx, const Matrix& a, const Matrix& da, Matrix& a_in,
                                Matrix& da_in) const override;

 private:
  std::vector<std::unique_ptr<Layer>> layers_;
  std::vector<Matrix> outputs_;    // outputs_[i] = output of layer i (cached)
  std::vector<Matrix> gradients_;  // backward scratch: gradients_[i] = dL/d(input of layer i), i >= 1
};

// y = x + F(x) with F a Sequential of equal input and output size (He et al. 2016).
class Residual final : public Layer {
 public:
  explicit Residual(std::unique_ptr<Sequential> branch);
  std::string type() const override { return "residual"; }
  std::string describe() const override;
  Index input_size() const override { return branch_->input_size(); }
  Index output_size() const override { return branch_->output_size(); }
  bool has_second_order() const override;  // when the branch has it
  void bind(ParameterBinder& binder, const std::string& prefix) override;
  void initialize(Rng& rng) override { branch_->initialize(rng); }

 protected:
  void do_forward(const Matrix& x, Matrix& y) override;
  void do_backward(const Matrix& dy, Matrix& dx, bool accumulate) override;
  void do_tangent(const Matrix& dx, Matrix& dy) const override;
  void do_second_order_backward(const Matrix& dx, const Matrix& a, const Matrix& da, Matrix& a_in,
                                Matrix& da_in) const override;

 private:
  std::unique_ptr<Sequential> branch_;
};

// y = F(x) + W x + b: a branch F (a Sequential) with a dense linear path around it, from the same
// input to the same output. The linear path carries the part of the map that is linear in x, so the
// branch only has to learn the nonlinear rest (and the derivative dy/dx = F'(x) + W starts from a
// learned constant instead of being assembled by the branch). Parameter blocks: the branch's under
// "<prefix>", then "<prefix>.skip.W" (decayed) and "<prefix>.skip.b".
class LinearSkip final : public Layer {
 public:
  explicit LinearSkip(std::unique_ptr<Sequential> branch, Init init = Init::kSmall);
  std::string type() const override { return "linear_skip"; }
  std::string describe() const override;
  Index input_size() const override { return branch_->input_size(); }
  Index output_size() const override { return branch_->output_size(); }
  bool has_second_order() const override;  // when the branch has it
  void bind(ParameterBinder& binder, const std::string& prefix) override;
  void initialize(Rng& rng) override;

 protected:
  void do_forward(const Matrix& x, Matrix& y) override;
  void do_backward(const Matrix& dy, Matrix& dx, bool accumulate) override;
  void do_tangent(const Matrix& dx, Matrix& dy) const override;
  void do_second_order_backward(const Matrix& dx, const Matrix& a, const Matrix& da, Matrix& a_in,
                                Matrix& da_in) const override;

 private:
  std::unique_ptr<Sequential> branch_;
  Dense skip_;
  Matrix scratch_;  // the skip path's output (forward) or input gradient (backward), kept between calls
};

// Periodic 1-D convolution over a grid of n points with c_in input and c_out output channels and an
// odd kernel of k taps (offsets -r .. r, r = (k-1)/2, indices wrapped around the grid):
//   y[o, i] = b[o] + sum_c sum_j W[o, c*k + j] x[c, (i + j - r) mod n].
// Column layout, input and output: channel-major, entry (c, i) at row c*n + i. Implemented as one
// matrix product over an im2col matrix of the whole batch (c_in*k x n*B), built and scattered back
// with OpenMP over the batch. Parameter blocks "W" (c_out x c_in*k, decayed) then "b" (c_out).
class PeriodicConv1d final : public Layer {
 public:
  PeriodicConv1d(Index channels_in, Index channels_out, Index grid, Index kernel, Init init = Init::kLecun);
  std::string type() const override { return "conv1d"; }
  std::string describe() const override;
  Index input_size() const override { return c_in_ * n_; }
  Index output_size() const override { return c_out_ * n_; }
  bool has_second_order() const override { return true; }
  void bind(ParameterBinder& binder, const std::string& prefix) override;
  void initialize(Rng& rng) override;

 protected:
  void do_forward(const Matrix& x, Matrix& y) override;
  void do_backward(const Matrix& dy, Matrix& dx, bool accumulate) override;
  void do_tangent(const Matrix& dx, Matrix& dy) const override;
  void do_second_order_backward(const Matrix& dx, const Matrix& a, const Matrix& da, Matrix& a_in,
                                Matrix& da_in) const override;

 private:
  void im2col(const Matrix& x, Matrix& p) const;
  // dx = (dy/dx)^T dy: the input part of backward (col2im of W^T dy), independent of the input;
  // transpose_big takes dy in the im2col layout (c_out x n*b).
  void transpose_apply(const Matrix& dy, Matrix& dx) const;
  // dp: scratch for the im2col-layout product W^T dbig.
  void transpose_big(const Matrix& dbig, Index b, Matrix& dx, Matrix& dp) const;
  Index c_in_, c_out_, n_, k_;
  Init init_;
  ParameterBinder::Block w_, b_;
  Matrix patches_;  // cached im2col of the input
  Matrix big_, columns_;  // forward/backward scratch kept between calls: c_out x n*B and c_in*k x n*B
  std::vector<Index> source_;  // source_[i * k + j]: the grid point (i + j - (k - 1) / 2) mod n
};

// Front end for gridded observations with missing values. Input: `slots` grids of n values
// (slot-major, row s*n + i), NaN = missing. Output: 2*slots channels of n values: channel 2s holds
// the value (0 where missing), channel 2s+1 the mask (1 present, 0 missing). The derivative with
// respect to a missing input is zero.
class MaskChannels final : public Layer {
 public:
  MaskChannels(Index slots, Index grid);
  std::string type() const override { return "mask_channels"; }
  std::string describe() const override;
  Index input_size() const override { return slots_ * n_; }
  Index output_size() const override { return 2 * slots_ * n_; }
  bool has_second_order() const override { return true; }

 protected:
  void do_forward(const Matrix& x, Matrix& y) override;
  void do_backward(const Matrix& dy, Matrix& dx, bool accumulate) override;
  void do_tangent(const Matrix& dx, Matrix& dy) const override;
  void do_second_order_backward(const Matrix& dx, const Matrix& a, const Matrix& da, Matrix& a_in,
                                Matrix& da_in) const override;

 private:
  // dx = (dy/dx)^T dy: the value channels of dy at the present inputs, 0 at the missing ones.
  void values_transpose(const Matrix& dy, Matrix& dx) const;
  Index slots_, n_;
  Eigen::Array<bool, Eigen::Dynamic, Eigen::Dynamic> present_;  // cached mask
};

// Appends k constant channels of n values to the input: y = [x; vec(C)] with C a fixed k x n
// matrix (channel-major, row x.rows() + c*n + i holds C(c, i)), the same for every column. C is
// not a trained parameter: the owner sets it with set_constants() (e.g. from stored normalisation
// statistics). dy/dx is the identity on the first input_size() rows; the constants have no
// derivative. Starts as zeros.
class ConstantChannels final : public Layer {
 public:
  ConstantChannels(Index input_size, Index channels, Index grid);
  std::string type() const override { return "constant_channels"; }
  std::string describe() const override;
  Index input_size() const override { return in_; }
  Index output_size() const override { return in_ + k_ * n_; }
  bool has_second_order() const override { return true; }
  // C: channels x grid (InvalidArgument on another shape or a non-finite entry).
  void set_constants(const Matrix& c);
  const Matrix& constants() const { return c_; }

 protected:
  void do_forward(const Matrix& x, Matrix& y) override;
  void do_backward(const Matrix& dy, Matrix& dx, bool accumulate) override;
  void do_tangent(const Matrix& dx, Matrix& dy) const override;
  void do_second_order_backward(const Matrix& dx, const Matrix& a, const Matrix& da, Matrix& a_in,
                                Matrix& da_in) const override;

 private:
  Index in_, k_, n_;
  Matrix c_;
};

// Appends channels that are a fixed linear map of the input: y = [x; A x] with A a fixed
// (k*n) x input_size matrix (row c*n + i of the appended block is channel c at point i). A is not a
// trained parameter: the owner sets it with set_map() (e.g. the oracle gain in normalised units, so
// a local network sees the linearised analysis increment as a channel). Linear, so the tangent is
// [dx; A dx], the adjoint dy_top + A^T dy_bottom and the second-order pass the adjoint of both
// inputs. Starts as zeros.
class LinearChannels final : public Layer {
 public:
  LinearChannels(Index input_size, Index channels, Index grid);
  std::string type() const override { return "linear_channels"; }
  std::string describe() const override;
  Index input_size() const override { return in_; }
  Index output_size() const override { return in_ + k_ * n_; }
  bool has_second_order() const override { return true; }
  // A: (channels * grid) x input_size (InvalidArgument on another shape or a non-finite entry).
  void set_map(const Matrix& a);
  const Matrix& map() const { return a_; }

 protected:
  void do_forward(const Matrix& x, Matrix& y) override;
  void do_backward(const Matrix& dy, Matrix& dx, bool accumulate) override;
  void do_tangent(const Matrix& dx, Matrix& dy) const override;
  void do_second_order_backward(const Matrix& dx, const Matrix& a, const Matrix& da, Matrix& a_in,
                                Matrix& da_in) const override;

 private:
  // y = [x; A x] (the forward map, and the tangent map of dx); dx = dy_top + A^T dy_bottom.
  void apply(const Matrix& x, Matrix& y) const;
  void transpose_apply(const Matrix& dy, Matrix& dx) const;
  Index in_, k_, n_;
  Matrix a_;
};

// A multilayer perceptron: `depth` hidden layers of `width` units with activation `act`, then a
// linear output layer (initialised with `last`). depth = 0 gives one dense layer in -> out.
std::unique_ptr<Sequential> make_mlp(Index in, Index width, Index depth, Index out, Activation act,
                                     Init last = Init::kLecun);
// A residual MLP: dense in -> width, `blocks` residual blocks x + W2 act(W1 act(x)) (W2 small at
// initialisation), act, dense width -> out (initialised with `last`).
std::unique_ptr<Sequential> make_residual_mlp(Index in, Index width, Index blocks, Index out, Activation act,
                                              Init last = Init::kLecun);

}  // namespace varflow::nn
