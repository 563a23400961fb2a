#pragma once
// Elementwise transforms of a coupling layer, one scalar at a time, with every derivative the flow
// needs: forward value and log|dy/dx| (density direction), the inverse (sampling direction),
// reverse mode (gradients of y and log|dy/dx| with respect to x and the parameters theta) and
// forward mode in theta (for Jacobian-vector products through the sampling map).
//
// Rational-quadratic spline (Durkan, Bekasov, Murray & Papamakarios 2019, "Neural Spline Flows",
// with the Gregory & Delbourgo 1982 rational quadratic): K bins on [-B, B]; outside it the identity
// (linear tails with slope 1, matching the boundary derivatives). theta has 3K - 1 unconstrained
// entries: [K width logits, K height logits, K - 1 interior derivative pre-activations].
//   bin widths  W_j = 2B (w_min + (1 - K w_min) softmax(theta_w)_j), likewise the heights H_j;
//   derivatives D_0 = D_K = 1, D_k = d_min + softplus(theta_d[k-1] + c) with c chosen so that
//   theta = 0 gives D_k = 1: the spline with theta = 0 is exactly the identity.
// Inputs outside [-B, B] never enter the rational function (the branch is taken on the clamped
// input), so no NaN or Inf reaches a gradient however large x is.
#include "varflow/core/types.h"

namespace varflow::amortized {

struct SplineShape {
  Index bins = 8;
  double bound = 5.0;          // B
  double min_width = 1e-3;     // w_min, fraction of 2B
  double min_height = 1e-3;
  double min_derivative = 1e-3;
  Index parameter_count() const { return 3 * bins - 1; }
  // Throws InvalidArgument naming the field: 2 <= bins <= 64, bound > 0, minima in (0, 1/bins).
  void validate() const;
};

// y = g(x; theta); writes log(dy/dx) to *log_derivative.
double rqs_forward(const SplineShape& s, const double* theta, double x, double* log_derivative);
// x = g^{-1}(y; theta).
double rqs_inverse(const SplineShape& s, const double* theta, double y);
// Reverse mode at x: for a loss with dL/dy = gy and dL/dlog(dy/dx) = gl, returns dL/dx and
// writes dL/dtheta (parameter_count() entries, overwritten).
double rqs_backward(const SplineShape& s, const double* theta, double x, double gy, double gl, double* gtheta);
// Forward mode in theta at x: returns (dy/dtheta) . dtheta and writes dy/dx to *dydx.
double rqs_tangent_theta(const SplineShape& s, const double* theta, double x, const double* dtheta, double* dydx);

// Affine transform y = x exp(s) + t with a soft-clamped log-scale s = c tanh(s_raw / c) (c =
// `clamp`, which bounds the scale to [e^-c, e^c] and keeps training stable; as in Glow/RealNVP
// practice). theta = [t, s_raw]; log(dy/dx) = s.
double affine_forward(double clamp, const double* theta, double x, double* log_derivative);
double affine_inverse(double clamp, const double* theta, double y);
double affine_backward(double clamp, const double* theta, double x, double gy, double gl, double* gtheta);
double affine_tangent_theta(double clamp, const double* theta, double x, const double* dtheta, double* dydx);

}  // namespace varflow::amortized
