#pragma once
// Checks of a tangent-linear / adjoint pair against its nonlinear map, returning structured results.
// Used by the conformance suites (varflow::testing) and by the adjoint-calibration gate.
//
//  - dot-product test:  <L dx, ay> = <dx, L^T ay>,  relative error |lhs - rhs| / max(|lhs|, |rhs|);
//  - Taylor test:       r(e) = ||N(x + e dx) - N(x) - e L dx|| / ||N(x + e dx) - N(x)||  must shrink
//                       like e (r(e) / e constant within a factor taylor_band_factor) over
//                       `taylor_decades` consecutive decades (e scanned from 10^1 to 10^-13 in
//                       half-decade steps) and
//                       reach below `taylor_min_ratio`; a linear N passes when r(e) stays at round-off
//                       for every e (below linear_ratio * max(1, 1/e): the cancellation in
//                       N(x + e dx) - N(x) costs digits like 1/e);
//  - linearity:         L(a dx1 + b dx2) = a L dx1 + b L dx2;   zero: L 0 = 0 and L^T 0 = 0.
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
};

struct DotProductResult {
  double lhs = 0.0;  // <L dx, ay>
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

}  // namespace varflow
