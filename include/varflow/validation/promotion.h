#pragma once
// The promotion decision: may a fast (amortized) posterior replace the variational oracle? It runs
// the three gates and promotes only when all three pass:
//   1. posterior agreement on held-out events      (posterior_agreement.h)
//   2. adjoint calibration: TL/AD checks and Jacobian probing  (adjoint_calibration.h)
//   3. simulation-based calibration with sharpness  (sbc.h)
//
// How the two sides plug in (nothing here depends on how either is implemented):
//  - held_out_events: for each held-out observation set y_e, the oracle's Posterior (e.g. a
//    Laplace / Gauss-Newton posterior from 4D-Var) and the fast Posterior for the same y_e;
//  - linearizations: every TL/AD pair the fast path relies on (the emulator's model steps, the
//    observation operators), as LinearizedMap with a linearisation point;
//  - jacobians: at a few held-out events, J = d mean / d y of each side as JVP/VJP callbacks (the
//    oracle's from the tangent-linear and adjoint of the analysis, the fast one from its network);
//  - sbc: the prior sampler, the observation simulator, the fast posterior's sampler and the
//    prior variances.
// Each gate's own header states its contract, thresholds and the reasons for them.
#include <string>
#include <string_view>
#include <vector>

#include "varflow/core/random.h"
#include "varflow/validation/adjoint_calibration.h"
#include "varflow/validation/posterior_agreement.h"
#include "varflow/validation/sbc.h"

namespace varflow {

struct PromotionInputs {
  std::vector<AgreementEvent> held_out_events;
  std::vector<LinearizationCase> linearizations;
  std::vector<JacobianCase> jacobians;
  SbcProblem sbc;
};

struct PromotionOptions {
  AgreementOptions agreement;
  AdjointCalibrationOptions adjoint;
  SbcOptions sbc;
  // A promotion needs at least this many SBC simulations (Talts et al. use >= 1000 for a plot
  // that reveals small miscalibration; 200 is the floor the design sets for a decision).
  Index min_sbc_simulations = 200;

  void validate() const;  // InvalidArgument naming the option and value
};

enum class Gate { kPosteriorAgreement, kAdjointCalibration, kSimulationBasedCalibration };
std::string to_string(Gate gate);  // "posterior_agreement" | "adjoint_calibration" | "simulation_based_calibration"
// The inverse of to_string; throws InvalidArgument naming the accepted names.
Gate gate_from_string(std::string_view name);

struct PromotionDecision {
  AgreementResult agreement;
  AdjointCalibrationResult adjoint_calibration;
  SbcResult sbc;

  bool passed(Gate gate) const;
  std::vector<Gate> failed_gates() const;
  bool promote() const { return failed_gates().empty(); }
  // One summary line per gate, then each gate's full report.
  std::string report() const;
};

// Runs the three gates with randomness from rng (gate order: agreement, adjoint calibration, SBC).
// Throws InvalidArgument on invalid options or inputs (see each gate).
PromotionDecision decide_promotion(const PromotionInputs& inputs, Rng& rng, const PromotionOptions& options = {});
// The same with the Jacobian cases and the SBC simulations split over the ranks of comm (each with its
// own random stream: adjoint_calibration.h, sbc.h); the agreement gate, cheap once its posteriors
// exist, runs on every rank. Same result on every rank and for any number of ranks.
PromotionDecision decide_promotion(const PromotionInputs& inputs, Rng& rng, const PromotionOptions& options,
                                   const Communicator& comm);

}  // namespace varflow
