#pragma once
// The oracle of each problem: the reference posterior and Jacobian the gates compare an amortized
// posterior with (design/report.md). Oracles are registered by problem name, next to the problem
// registry of amortized/problems.h; built-in: two-moons (quadrature), linear-gaussian (exact),
// lorenz96 (4D-Var with the Laplace posterior and the exact sensitivity).
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "varflow/amortized/problems.h"
#include "varflow/posterior/posterior.h"
#include "varflow/report/validation_report.h"
#include "varflow/validation/adjoint_calibration.h"

namespace varflow::report {

class Oracle {
 public:
  virtual ~Oracle() = default;
  // The problem's simulator (held-out events and SBC pairs are drawn from it).
  virtual const amortized::Simulator& simulator() const = 0;
  virtual std::string describe() const = 0;
  // Limitations of this oracle, for the report.
  virtual std::vector<std::string> notes() const { return {}; }
  // The reference posterior for observations y.
  virtual std::shared_ptr<const Posterior> posterior(const Vector& y) = 0;
  // J = d(posterior mean)/dy at y, as JVP/VJP callbacks.
  virtual JacobianOperator jacobian(const Vector& y) = 0;
  // Exact prior variances when known; empty: estimated from simulated states.
  virtual Vector prior_variance() const { return {}; }
};

// Builds the oracle of one problem for a model of `shape` (InvalidArgument when the shape is not the
// problem's).
using OracleFactory =
    std::function<std::unique_ptr<Oracle>(const amortized::ProblemShape& shape, const ValidationOptions& options)>;
// Adds the oracle of a registered problem; InvalidArgument when that problem already has one. Not
// thread-safe: register at start-up.
void register_oracle(const std::string& problem, OracleFactory factory);
// The oracle for a problem name. Throws InvalidArgument naming the problem when it has no oracle,
// or when `shape` is not the problem's shape.
std::unique_ptr<Oracle> make_oracle(const std::string& problem, const amortized::ProblemShape& shape,
                                    const ValidationOptions& options);

}  // namespace varflow::report
