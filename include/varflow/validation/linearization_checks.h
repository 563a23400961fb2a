#pragma once
// Checks of a tangent-linear / adjoint pair against its nonlinear map, returning structured results.
// Used by the conformance suites (varflow::testing) and by the adjoint-calibration gate.
//
//  - dot-product test:  <L dx, ay> = <dx, L^T ay>,  relative error |lhs - rhs| / max(|lhs|, |rhs|),
//                       with ay anchored on L dx (anchored_adjoint_probe): ay = L dx + w, w the given
//                       random vector's part orthogonal to L dx scaled to ||L dx||. Then lhs =
//                       ||L dx||^2 = ||L dx|| ||ay|| / sqrt(2), so random vectors that nearly cancel
//                       cannot shrink the divisor below the products' round-off (an exactly adjoint
//                       pair failed 1e-12 that way; design/gates.md), while w still probes L^T off
//                       the range of L;
//  - Taylor test:       r(e) = ||N(x + e dx) - N(x) - e L dx|| / ||N(x + e dx) - N(x)||  must shrink
//                       like e (r(e) / e constant within a factor taylor_band_factor) over
//                       `taylor_decades` consecutive decades (e scanned from 10^1 to 10^-13 in
//                       half-decade steps) and
//                       reach below `taylor_min_ratio`; a linear N passes when r(e) stays at round-off
//                       for every e (below linear_ratio * max(1, 1/e): the cancellation in
//                       N(x + e dx) - N(x) costs digits like 1/e);
//  - linearity:         L(a dx1 + b dx2) = a L dx1 + b L dx2;   zero: L 0 = 0 and L^T 0 = 0.
//
// Second-order adjoints (Model::step_second_order_adjoint, ObservationOperator::
// apply_second_order_adjoint): with the adjoint weight a fixed, S(x) dx = (d/dx [L(x)^T a]) dx is the
// derivative of x -> L(x)^T a and the Hessian of x -> <a, N(x)>:
//  - Taylor test of S against x -> L(x)^T a (the same test and tolerances as above: the change
//    L(x + e dx)^T a - L(x)^T a - e S dx must shrink like e^2);
//  - symmetry:          <S dx1, dx2> = <dx1, S dx2>, relative error |lhs - rhs| /
//                       max(||S dx1|| ||dx2||, ||S dx2|| ||dx1||) (0 for S = 0).
#include <functional>
#include <string>
#include <vector>

#include "varflow/core/random.h"
#include "varflow/core/types.h"

namespace varflow {

class Model;
class ObservationOperator;

// The tolerances, in one place, with the reason for each size.
struct LinearizationTolerances {
  // Adjoint identity holds to round-off; 1e-12 leaves room for ~1e4 accumulated operations.
  double dot_product = 1e-12;
  // The TL must reproduce the first-order change to 6 digits before round-off takes over.
  double taylor_min_ratio = 1e-6;
  // Linear convergence over this many consecutive decades of e.
  double taylor_decades = 6.0;
  // Linear convergence means r(e) / e constant: within this factor over the run (e is scanned in
  // half-decade steps, so a factor 2 tolerates the bend where round-off starts without admitting
  // a slope other than 1 over six decades).
  double taylor_band_factor = 2.0;
  // For an exactly linear map r(e) is pure round-off (scaled by max(1, 1/e)).
  double linear_ratio = 1e-10;
  // Linearity and zero tests hold to round-off.
  double linearity = 1e-12;
  // Symmetry of a second-order adjoint (a Hessian): round-off, like the dot-product test.
  double second_order_symmetry = 1e-12;
};

struct DotProductResult {
  double lhs = 0.0;  // <L dx, ay>, ay the anchored probe
  double rhs = 0.0;  // <dx, L^T ay>
  double relative_error = 0.0;
  double tolerance = 0.0;
  bool passed = false;
  std::string report() const;
};

struct TaylorResult {
  std::vector<double> epsilons;  // 10^1 down to 10^-13 in half-decade steps
  std::vector<double> ratios;    // r(e), NaN where N(x + e dx) was not finite
  double linear_decades = 0.0;   // width (in decades of e) of the longest run of linear convergence
  double min_ratio = 0.0;
  bool exactly_linear = false;   // every ratio below linear_ratio
  bool passed = false;
  std::string report() const;
};

struct LinearityResult {
  double linearity_error = 0.0;      // relative residual of L(a dx1 + b dx2) - a L dx1 - b L dx2
  double zero_tangent_norm = 0.0;    // ||L 0||
  double zero_adjoint_norm = 0.0;    // ||L^T 0||
  double tolerance = 0.0;
  bool passed = false;
  std::string report() const;
};

using VectorMap = std::function<Vector(const Vector&)>;

// The adjoint probe of the dot-product test: L dx + w, w = the part of ay orthogonal to L dx, scaled
// to ||L dx|| (ay itself when L dx is zero or not finite). Sizes: ldx and ay of the output size.
Vector anchored_adjoint_probe(const Vector& ldx, const Vector& ay);

// Generic forms: `nonlinear` = N, `tangent` = dx -> L dx, `adjoint` = ay -> L^T ay (L linearised at x).
DotProductResult dot_product_test(const VectorMap& tangent, const VectorMap& adjoint, const Vector& dx,
                                  const Vector& ay, const LinearizationTolerances& tol = {});
TaylorResult taylor_test(const VectorMap& nonlinear, const VectorMap& tangent, const Vector& x, const Vector& dx,
                         const LinearizationTolerances& tol = {});
LinearityResult linearity_test(const VectorMap& tangent, const VectorMap& adjoint, const Vector& dx1,
                               const Vector& dx2, Index output_size, const LinearizationTolerances& tol = {});

// All three checks of one TL/AD pair at x with random directions from rng.
struct LinearizationReport {
  DotProductResult dot_product;
  TaylorResult taylor;
  LinearityResult linearity;
  bool passed() const { return dot_product.passed && taylor.passed && linearity.passed; }
};

// The nonlinear map, TL and AD of `steps` model steps from x (steps = 1: one step).
struct LinearizedMap {
  VectorMap nonlinear, tangent, adjoint;
  Index input_size = 0, output_size = 0;
};
LinearizedMap linearize(const Model& model, const Vector& x, Index steps = 1);
LinearizedMap linearize(const ObservationOperator& op, const Vector& x);

LinearizationReport check_linearization(const LinearizedMap& map, const Vector& x, Rng& rng,
                                        const LinearizationTolerances& tol = {});

// ---- second-order adjoints ---------------------------------------------------------------------------

struct SymmetryResult {
  double lhs = 0.0;  // <S dx1, dx2>
  double rhs = 0.0;  // <dx1, S dx2>
  double relative_error = 0.0;
  double tolerance = 0.0;
  bool passed = false;
  std::string report() const;
};

// <S dx1, dx2> = <dx1, S dx2> for a symmetric operator S.
SymmetryResult symmetry_test(const VectorMap& second_order, const Vector& dx1, const Vector& dx2,
                             const LinearizationTolerances& tol = {});

// The adjoint with weight a fixed as a function of the linearisation state, x -> L(x)^T a (NaN
// entries when N(x) blows up), and its second-order adjoint dx -> S(x_base) dx at the base state.
struct SecondOrderMap {
  VectorMap adjoint_at, second_order;
  Index input_size = 0;
};
// Of `steps` model steps from x (a = the adjoint at the last state): S comes from the model's
// step_second_order_adjoint along the TL and adjoint trajectories. The model must outlive the map.
SecondOrderMap linearize_second_order(const Model& model, const Vector& x, const Vector& a, Index steps = 1);
SecondOrderMap linearize_second_order(const ObservationOperator& op, const Vector& x, const Vector& ay);

struct SecondOrderReport {
  TaylorResult taylor;
  SymmetryResult symmetry;
  bool passed() const { return taylor.passed && symmetry.passed; }
};
// Both checks at x with random directions from rng (Taylor direction scaled to ||x|| as in
// check_linearization).
SecondOrderReport check_second_order(const SecondOrderMap& map, const Vector& x, Rng& rng,
                                     const LinearizationTolerances& tol = {});

}  // namespace varflow
