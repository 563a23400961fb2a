#pragma once
// Gradient checking against central finite differences (as Ceres' GradientChecker and mlpack's
// ann_test_tools): analytic derivatives of a layer or of any scalar loss are compared with
//   (f(theta + h e_i) - f(theta - h e_i)) / (2 h)
// by the norm-wise relative error ||g - g_fd|| / max(||g||, ||g_fd||, floor).
#include <functional>
#include <string>

#include "varflow/core/random.h"
#include "varflow/core/types.h"
#include "varflow/nn/layers.h"

namespace varflow::nn {

// Tolerances of the finite-difference checks, in one place. In double precision a central
// difference with step h has truncation error O(h^2 f''') and round-off O(eps |f| / h); h = 1e-6
// balances them near 1e-10 for O(1) functions, so a relative error of 1e-6 leaves four orders of
// margin for honest gradients while any wrong term (typically relative error >= 1e-3) fails.
struct GradientCheckTolerances {
  double step = 1e-6;            // h, the finite-difference step
  double relative = 1e-6;        // largest accepted norm-wise relative error
  double floor = 1e-10;          // denominators below this count as this (both gradients ~ 0)
};

// ||a - b|| / max(||a||, ||b||, floor).
double relative_error(const Vector& a, const Vector& b, double floor = 1e-10);

// Central-difference gradient of f at x (2 x.size() evaluations). f must not keep state between
// calls that would change its value (e.g. draw fresh noise): reseed inside f if it is random.
Vector finite_difference_gradient(const std::function<double(const Vector&)>& f, const Vector& x, double h);

struct GradientCheckResult {
  double input_error = 0.0;      // dL/dx from backward() vs finite differences
  double parameter_error = 0.0;  // dL/dtheta accumulated by backward() vs finite differences
  double tangent_error = 0.0;    // tangent() vs finite differences of the output
  double adjoint_error = 0.0;    // |<J dx, dy> - <dx, J^T dy>| / (|<J dx, dy>| + floor)
  bool passed = false;
  std::string report() const;
};

// Checks a layer's backward (input and parameter gradients) and tangent at input x for the scalar
// L = <R, layer(x)> with a random R from rng. The layer must be bound to `params` (its parameters
// are perturbed there; pass nullptr for a layer without parameters). Parameters are restored.
GradientCheckResult check_layer(Layer& layer, ParameterSet* params, const Matrix& x, Rng& rng,
                                const GradientCheckTolerances& tol = {});

struct SecondOrderCheckResult {
  double first_order_error = 0.0;   // a_in of second_order_backward vs backward(a)
  double second_order_error = 0.0;  // da_in at da = 0 vs central differences of backward(a) along dx
  double adjoint_error = 0.0;       // the da part, da_in(da) - da_in(0), vs backward(da)
  double symmetry_error = 0.0;      // |<H dx1, dx2> - <dx1, H dx2>| / (|<H dx1, dx2>| + floor), H at da = 0
  bool passed = false;
  std::string report() const;
};

// Checks a layer's second_order_backward at input x (input_size() x B) with a random output adjoint a,
// its tangent da and input directions from rng: the second-order term against
//   (backward_{x + h dx}(a) - backward_{x - h dx}(a)) / (2 h),
// the first-order parts against backward(), and the symmetry of the second-order term. Requires
// layer.has_second_order(). Leaves the cache at x.
SecondOrderCheckResult check_layer_second_order(Layer& layer, const Matrix& x, Rng& rng,
                                                const GradientCheckTolerances& tol = {});

}  // namespace varflow::nn
