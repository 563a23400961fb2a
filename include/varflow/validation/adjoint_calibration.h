#pragma once
// Gate 2 — adjoint calibration: are the linearisations the fast posterior relies on correct, and
// does the fast posterior respond to the observations like the oracle does?
//
// Two parts, both required:
//
// (a) TL/AD checks of every tangent-linear / adjoint pair involved (models over a window,
//     observation operators, emulators, the fast posterior's own mean map): the dot-product,
//     Taylor and linearity tests of validation/linearization_checks.h with the conformance-suite
//     tolerances (LinearizationTolerances: dot product 1e-12, Taylor linear over >= 6 decades and
//     min ratio < 1e-6, linearity 1e-12). Same definitions as the conformance suites, so a pair that
//     passes the suites passes here.
//
// (b) Jacobian probing of J = d(posterior mean) / d(observations), an n x m matrix (n = state size,
//     m = observation size), given for the fast and for the oracle posterior as two callbacks each:
//       jvp: v (size m) -> J v   (size n)   the tangent-linear of the mean map y -> mean(y)
//       vjp: w (size n) -> J^T w (size m)   its adjoint
//     For k random unit vectors v (uniform on the sphere: normalised Gaussian draws)
//       e_j = ||J_fast v_j - J_oracle v_j|| / ||J_oracle v_j||  must stay below probe_tolerance (0.05)
//     for every probe ("randomised tangent-linearisation tests for operator agreement"; the
//     probes estimate the typical relative gain error). The worst direction is estimated by power
//     iteration on D^T D, D = J_fast - J_oracle (D v = jvp_f(v) - jvp_o(v), D^T w = vjp_f(w) -
//     vjp_o(w)), and likewise ||J_oracle||_2, giving
//       rho = ||J_fast - J_oracle||_2 / ||J_oracle||_2  which must stay below operator_norm_tolerance.
//     Power iteration approaches the largest singular value from below; the result records whether
//     the estimate converged (relative change < power_tolerance) within power_iterations.
//     Each side's vjp must be the adjoint of its jvp — power iteration and any gradient-based use
//     rely on it — so the dot-product test is run on both pairs too.
//
// Why these thresholds:
//  - probe_tolerance 0.05: the design rule; a 5% relative error in the analysis increments the
//    fast posterior would produce from the same innovations.
//  - operator_norm_tolerance 0.10 = twice the probe tolerance: for an unstructured error (an
//    n x n matrix of iid entries with variance s^2) the largest singular value is ~2 s sqrt(n)
//    while a random unit probe sees ~s sqrt(n) (Marchenko-Pastur edge), so an error that is typical
//    in size just below the probe tolerance passes; an error concentrated in a few directions,
//    which random probes mostly miss, fails once it exceeds 10% in its worst direction.
//
// Contract: callbacks are deterministic linear maps (exact derivatives, e.g. by automatic
// differentiation or hand-coded TL/AD; not finite differences), may be called many times, and are
// called from the calling thread only. A wrong output size is an InvalidArgument naming the case
// and callback. A non-finite output fails the case.
#include <string>
#include <vector>

#include "varflow/core/communicator.h"
#include "varflow/core/random.h"
#include "varflow/core/types.h"
#include "varflow/validation/linearization_checks.h"

namespace varflow {

// One TL/AD pair to check at a linearisation point, e.g. {"lorenz96_window", linearize(model, x, 50), x}.
struct LinearizationCase {
  std::string name;
  LinearizedMap map;  // nonlinear map, TL and AD with their sizes (see linearization_checks.h)
  Vector x;           // linearisation point (size map.input_size); the Taylor test starts here
};

struct LinearizationCaseResult {
  std::string name;
  LinearizationReport report;
  bool passed() const { return report.passed(); }
  std::string report_text() const;
};

// The sensitivity J = d mean / d y of one posterior as JVP / VJP callbacks.
struct JacobianOperator {
  VectorMap jvp;  // v (observation space, size input_size) -> J v (state space, size output_size)
  VectorMap vjp;  // w (state space, size output_size) -> J^T w (observation space, size input_size)
  Index input_size = 0;   // m, the number of observations
  Index output_size = 0;  // n, the state size
  // True when jvp and vjp are collective over the communicator given to adjoint_calibration_gate
  // (their work split over its ranks inside each call, e.g. AmortizedPosterior::mean_jvp with that
  // communicator): every rank must call them together, with the same arguments, and gets the same
  // result. The gate then probes the cases one after another on all ranks instead of one case per rank.
  bool collective = false;
};

// The fast and the oracle sensitivity at the same event (the same observations y).
struct JacobianCase {
  std::string name;
  JacobianOperator fast, oracle;
};

struct AdjointCalibrationOptions {
  LinearizationTolerances tolerances;     // the conformance-suite tolerances for part (a) and the
                                          // dot-product tests of the JVP/VJP pairs
  Index probes = 20;                      // k random unit probes per Jacobian case
  double probe_tolerance = 0.05;
  double operator_norm_tolerance = 0.10;
  Index power_iterations = 200;
  double power_tolerance = 1e-6;          // relative change of the singular-value estimate

  void validate() const;  // InvalidArgument naming the option and value
};

// Largest singular value of a linear operator by power iteration on A^T A.
struct OperatorNormEstimate {
  double norm = 0.0;      // the estimate (a lower bound of ||A||_2 that converges to it)
  Index iterations = 0;
  bool converged = false;
};

struct JacobianProbeResult {
  std::string name;
  std::vector<double> probe_errors;  // e_j, one per probe (inf if J_oracle v_j = 0 != J_fast v_j)
  double max_probe_error = 0.0;
  double mean_probe_error = 0.0;
  OperatorNormEstimate difference_norm;  // ||J_fast - J_oracle||_2
  OperatorNormEstimate oracle_norm;      // ||J_oracle||_2
  double relative_operator_norm_difference = 0.0;  // rho
  DotProductResult fast_dot_product, oracle_dot_product;  // vjp is the adjoint of jvp, each side
  double probe_tolerance = 0.0, operator_norm_tolerance = 0.0;
  bool probes_passed = false, operator_norm_passed = false, adjoints_passed = false;
  bool passed() const { return probes_passed && operator_norm_passed && adjoints_passed; }
  std::string report() const;
};

struct AdjointCalibrationResult {
  std::vector<LinearizationCaseResult> linearizations;
  std::vector<JacobianProbeResult> jacobians;
  bool passed() const;
  std::string report() const;
};

// ||A||_2 of A given by apply (x -> A x) and apply_transpose (y -> A^T y), A of size rows x cols,
// by power iteration on A^T A from a random start drawn from rng.
OperatorNormEstimate estimate_operator_norm(const VectorMap& apply, const VectorMap& apply_transpose, Index rows,
                                            Index cols, Rng& rng, Index max_iterations = 200,
                                            double tolerance = 1e-6);

// Part (a) for one pair: check_linearization with random directions from rng.
LinearizationCaseResult check_linearization_case(const LinearizationCase& c, Rng& rng,
                                                 const LinearizationTolerances& tolerances = {});

// Part (b) for one event.
JacobianProbeResult probe_jacobian(const JacobianCase& c, Rng& rng, const AdjointCalibrationOptions& options = {});

// The gate: part (a) for every pair (the list may be empty when the fast posterior depends on no
// TL/AD pair besides its own Jacobian) and part (b) for every case (at least one).
AdjointCalibrationResult adjoint_calibration_gate(const std::vector<LinearizationCase>& linearizations,
                                                  const std::vector<JacobianCase>& jacobians, Rng& rng,
                                                  const AdjointCalibrationOptions& options = {});
// The same on the ranks of comm, case k probed with its own stream item_rng(base, k) (base: one draw of
// rng), so the result is the same for any number of ranks (and differs from the overload above, whose
// cases share rng). When no operator is collective the cases are split over the ranks (cyclic, one case
// per rank at a time); when one is, every rank probes every case, one after another, and the
// collective callbacks split the work inside each product. Part (a) runs on every rank.
AdjointCalibrationResult adjoint_calibration_gate(const std::vector<LinearizationCase>& linearizations,
                                                  const std::vector<JacobianCase>& jacobians, Rng& rng,
                                                  const AdjointCalibrationOptions& options, const Communicator& comm);

}  // namespace varflow
