#pragma once
// The oracle of each built-in problem (internal to the report library; see design/report.md).
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

// The oracle for a problem label (two-moons | linear-gaussian | lorenz96). Throws InvalidArgument
// naming the problem for an unknown label, or when `shape` is not the problem's shape.
std::unique_ptr<Oracle> make_oracle(const std::string& problem, const amortized::ProblemShape& shape,
                                    const ValidationOptions& options);

}  // namespace varflow::report
