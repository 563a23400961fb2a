#include "varflow/validation/promotion.h"

#include <sstream>

#include "varflow/core/enum_text.h"
#include "varflow/core/error.h"

namespace varflow {

bool PromotionOptions::is_valid(std::string* error) const {
  if (!agreement.is_valid(error) || !adjoint.is_valid(error) || !sbc.is_valid(error)) return false;
  if (sbc.simulations < min_sbc_simulations) {
    if (error) {
      *error = format_message("PromotionOptions: sbc.simulations = ", sbc.simulations, " must be >= min_sbc_simulations = ",
                              min_sbc_simulations);
    }
    return false;
  }
  return true;
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
  std::string error;
  if (!options.is_valid(&error)) throw InvalidArgument(format_message("decide_promotion: ", error));
  PromotionDecision d;
  d.agreement = posterior_agreement_gate(inputs.held_out_events, options.agreement);
  d.adjoint_calibration = adjoint_calibration_gate(inputs.linearizations, inputs.jacobians, rng, options.adjoint);
  d.sbc = sbc_gate(inputs.sbc, options.sbc, rng);
  return d;
}

}  // namespace varflow
