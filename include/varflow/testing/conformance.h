#pragma once
// Conformance suites: GoogleTest value-parameterised tests that every Model, ObservationOperator,
// Covariance, network Layer and amortized Head must pass, ours or a user's. Link varflow::testing and
// instantiate them for a plug-in:
//
//   #include <varflow/testing/conformance.h>
//   using varflow::testing::ModelCase;
//   using varflow::testing::ModelConformance;   // the suite name must be unqualified
//   INSTANTIATE_TEST_SUITE_P(MyCode, ModelConformance,
//       ::testing::Values(ModelCase{"my_model",
//                                   [] { return std::make_shared<MyModel>(); },
//                                   [](varflow::Rng& rng) { return my_typical_state(rng); }}),
//       varflow::testing::CaseName());
//
// A model or operator whose has_second_order() is true is also held to the second-order checks of
// validation/linearization_checks.h (Taylor and symmetry, one step and over the window); one that
// declares none must refuse step_second_order_adjoint / apply_second_order_adjoint with
// InvalidArgument.
//
// A layer (nn/layers.h) is held to nn/gradient_check.h: backward (input and parameter gradients)
// and tangent against central differences and their dot-product test, and a refusal of inputs of
// the wrong shape; a layer whose has_second_order() is true also its second-order pass against
// central differences of backward and its symmetry test (one that declares none must refuse it). A head (amortized/head.h) is held to amortized/head_check.h: the loss gradient
// (parameters and context), the derivative-informed loss when it supports one, the mean's JVP and
// VJP, the shapes of its draws and maps, and its log-density against its loss, its closed form, the
// change of variables through its sampling map and (d = 1) its integral, or clear refusals.
//
// Pass CaseName() as the name generator (it also makes the linker keep the suites). Random tests
// draw from varflow::testing::seeded_rng(), which prints its seed; VARFLOW_TEST_SEED overrides it.
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>

#include "varflow/amortized/head.h"
#include "varflow/amortized/head_check.h"
#include "varflow/core/random.h"
#include "varflow/covariance/covariance.h"
#include "varflow/model/model.h"
#include "varflow/nn/gradient_check.h"
#include "varflow/nn/layers.h"
#include "varflow/nn/parameters.h"
#include "varflow/obs/observation_operator.h"
#include "varflow/validation/covariance_checks.h"
#include "varflow/validation/linearization_checks.h"

namespace varflow::testing {

// A typical state to linearise about (on the attractor for a chaotic model), drawn from rng.
using StateMaker = std::function<Vector(Rng&)>;

struct ModelCase {
  std::string name;  // letters, digits and '_' (it becomes part of the test name)
  std::function<std::shared_ptr<const Model>()> make;
  StateMaker state;
  Index window_steps = 50;  // the window TL/AD tests run over at least 50 steps
  LinearizationTolerances tolerances = {};
  // The window of the second-order Taylor test (when the model has one). Its regime of linear
  // convergence is narrower than the first-order one: the residual is third order and the round-off
  // of differenced adjoints grows with their amplification. Lorenz-96 over 10 steps: 6.5-9 linear
  // decades (seeds 1-30); over 50 steps only 5-6.5.
  Index second_order_window_steps = 10;
};

struct ObservationOperatorCase {
  std::string name;
  std::function<std::shared_ptr<const ObservationOperator>()> make;
  StateMaker state;
  LinearizationTolerances tolerances = {};
};

struct CovarianceCase {
  std::string name;
  std::function<std::shared_ptr<const Covariance>()> make;
  CovarianceTolerances tolerances = {};
  Index sampling_draws = 10000;
};

// A layer with its parameters drawn by initialize() and then perturbed by N(0, parameter_perturbation^2)
// (so that zero-initialised blocks cannot hide a wrong term), checked at a batch of inputs.
struct LayerCase {
  std::string name;
  std::function<std::unique_ptr<nn::Layer>()> make;
  // Inputs, input_size() x batch; empty: standard normal. (NaN marks a missing value for layers that
  // take them, e.g. MaskChannels.)
  std::function<Matrix(Rng& rng, Index rows, Index cols)> input = {};
  Index batch = 5;
  double parameter_perturbation = 0.3;
  nn::GradientCheckTolerances tolerances = {};
};

// A head with its parameters drawn by initialize() and perturbed, checked at `batch` states
// x ~ N(0, state_scale^2 I) and contexts c ~ N(0, I).
struct HeadCase {
  std::string name;
  std::function<std::unique_ptr<amortized::Head>()> make;
  Index batch = 5;
  double state_scale = 1.5;
  double parameter_perturbation = 0.3;
  Index penalty_draws = 4;  // base draws of the derivative-informed loss (an even number)
  amortized::HeadDensityOptions density = {};
  amortized::HeadCheckTolerances tolerances = {};
};

class ModelConformance : public ::testing::TestWithParam<ModelCase> {};
class ObservationOperatorConformance : public ::testing::TestWithParam<ObservationOperatorCase> {};
class CovarianceConformance : public ::testing::TestWithParam<CovarianceCase> {};
class LayerConformance : public ::testing::TestWithParam<LayerCase> {};
class HeadConformance : public ::testing::TestWithParam<HeadCase> {};

// The gradient check of a layer case as LayerConformance runs it (a fresh layer and parameter set,
// initialised and perturbed from rng, inputs from rng): structured, for tests that plant faults.
nn::GradientCheckResult check_layer_case(const LayerCase& c, Rng& rng);
// Likewise the second-order check (nn::check_layer_second_order) of a case whose layer has one.
nn::SecondOrderCheckResult check_layer_second_order_case(const LayerCase& c, Rng& rng);

// A head case made ready as HeadConformance uses it: the head bound to its own parameters,
// initialised and perturbed, with states x (d x batch) and contexts ctx (C x batch) drawn from rng.
struct HeadFixture {
  std::unique_ptr<amortized::Head> head;
  nn::ParameterSet params;
  Matrix x, ctx;
};
std::unique_ptr<HeadFixture> make_head_fixture(const HeadCase& c, Rng& rng);

// Test-name generator for INSTANTIATE_TEST_SUITE_P.
struct CaseName {
  std::string operator()(const ::testing::TestParamInfo<ModelCase>& info) const;
  std::string operator()(const ::testing::TestParamInfo<ObservationOperatorCase>& info) const;
  std::string operator()(const ::testing::TestParamInfo<CovarianceCase>& info) const;
  std::string operator()(const ::testing::TestParamInfo<LayerCase>& info) const;
  std::string operator()(const ::testing::TestParamInfo<HeadCase>& info) const;
};

// gtest prints a case by its name (keeps test names and failure messages readable).
void PrintTo(const ModelCase& c, std::ostream* os);
void PrintTo(const ObservationOperatorCase& c, std::ostream* os);
void PrintTo(const CovarianceCase& c, std::ostream* os);
void PrintTo(const LayerCase& c, std::ostream* os);
void PrintTo(const HeadCase& c, std::ostream* os);

// An Rng seeded from VARFLOW_TEST_SEED, or from `default_seed` when it is unset; prints the seed.
Rng seeded_rng(std::uint64_t default_seed);

}  // namespace varflow::testing
