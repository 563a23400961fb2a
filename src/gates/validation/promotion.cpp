#include "varflow/validation/promotion.h"

#include <sstream>

#include "varflow/core/enum_text.h"
#include "varflow/core/error.h"

namespace varflow {

void PromotionOptions::validate() const {
  agreement.validate();
  adjoint.validate();
  sbc.validate();
  if (sbc.simulations < min_sbc_simulations) {
    throw InvalidArgument(format_message("PromotionOptions: sbc.simulations = ", sbc.simulations,
                                         " must be >= min_sbc_simulations = ", min_sbc_simulations));
  }
}

namespace {
constexpr EnumNames<Gate, 3> kGateNames{{{Gate::kPosteriorAgreement, "posterior_agreement"},
                                         {Gate::kAdjointCalibration, "adjoint_calibration"},
                                         {Gate::kSimulationBasedCalibration, "simulation_based_calibration"}}};
}  // namespace

std::string to_string(Gate gate) { return std::string(to_text(kGateNames, gate)); }

Gate gate_from_string(std::string_view name) { return from_text(kGateNames, "gate_from_string: gate", name); }

bool PromotionDecision::passed(Gate gate) const {
  switch (gate) {
    case Gate::kPosteriorAgreement: return agreement.passed();
    case Gate::kAdjointCalibration: return adjoint_calibration.passed();
    case Gate::kSimulationBasedCalibration: return sbc.passed();
  }
  return false;
}

std::vector<Gate> PromotionDecision::failed_gates() const {
  std::vector<Gate> failed;
  for (Gate g : {Gate::kPosteriorAgreement, Gate::kAdjointCalibration, Gate::kSimulationBasedCalibration}) {
    if (!passed(g)) failed.push_back(g);
  }
  return failed;
}

std::string PromotionDecision::report() const {
  std::ostringstream os;
  os << "promotion decision: " << (promote() ? "PROMOTE" : "DO NOT PROMOTE") << "\n";
  for (Gate g : {Gate::kPosteriorAgreement, Gate::kAdjointCalibration, Gate::kSimulationBasedCalibration}) {
    os << "  " << to_string(g) << ": " << (passed(g) ? "pass" : "FAIL") << "\n";
  }
  os << "\n" << agreement.report() << "\n" << adjoint_calibration.report() << "\n" << sbc.report();
  return os.str();
}

PromotionDecision decide_promotion(const PromotionInputs& inputs, Rng& rng, const PromotionOptions& options) {
  return decide_promotion(inputs, rng, options, serial_communicator());
}

PromotionDecision decide_promotion(const PromotionInputs& inputs, Rng& rng, const PromotionOptions& options,
                                   const Communicator& comm) {
  with_context("decide_promotion", [&] { options.validate(); });
  PromotionDecision d;
  d.agreement = posterior_agreement_gate(inputs.held_out_events, options.agreement);
  d.adjoint_calibration = adjoint_calibration_gate(inputs.linearizations, inputs.jacobians, rng, options.adjoint, comm);
  d.sbc = sbc_gate(inputs.sbc, options.sbc, rng, comm);
  return d;
}

}  // namespace varflow
