#pragma once
// Internal helpers shared by the variational solvers.
#include <optional>

#include "varflow/core/stopwatch.h"
#include "varflow/var/laplace.h"
#include "varflow/var/incremental_4dvar.h"
#include "varflow/var/lanczos.h"
#include "varflow/var/result.h"
#include "varflow/var/summary.h"

namespace varflow::detail {

// Fills result (analysis, final state, control, map) from the linearisation at the MAP, and the
// posterior by `method`; a failure of the posterior sets the summary's termination to numerical
// failure. `inner` is the last inner Lanczos solve, if any. `state_marginal`: also form the x_0
// marginal when the control is larger than the state (weak constraint).
// `inner`: the Lanczos process of the last inner solve (may be null), extended to
// `inner_vectors` vectors first when that is larger than its size.
void finish(const FourDVarCost& cost, const std::optional<Linearization>& map, const Vector& control,
            PosteriorMethod method, const LanczosEigenOptions& low_rank, Lanczos* inner, Index inner_vectors,
            VarResult& result, SolverSummary& summary);

// Sets the summary's work counts from the cost's counters and the wall time.
void record_work(const FourDVarCost& cost, const Stopwatch& clock, SolverSummary& summary);

struct GaussNewtonOutput {
  Vector v;                          // preconditioned control at the end
  std::optional<Linearization> map;  // linearisation at the final iterate (none if x_b failed)
  std::unique_ptr<Lanczos> last_inner;                  // the last inner Lanczos process
  std::shared_ptr<const Linearization> last_inner_map;  // the linearisation its operator uses
};

// Gauss-Newton outer loops around Lanczos-CG inner solves (see incremental_4dvar.h). Fills the
// summary's termination, message, iterations, costs and gradient norms.
GaussNewtonOutput run_gauss_newton(const FourDVarCost& cost, const GaussNewtonOptions& options,
                                   const Stopwatch& clock, SolverSummary& summary);

}  // namespace varflow::detail
