#pragma once
// Step 5 of the six-step cycle (design/cycle.md): an amortized predictor q(x | y) trained on pairs
// (x, y) simulated with the cycle's promoted model (the neural emulator, or the physics on fallback)
// and held to the three promotion gates (posterior agreement, adjoint calibration with Jacobian
// probing, SBC) against the *physics* 4D-Var oracle (report::validate_model, decide_promotion).
//
//   PredictorStepOptions options;                     // the cycle's defaults (design/cycle.md)
//   Rng rng(seed);
//   PredictorStepResult r = run_predictor_step(emulator, options, rng, dir / "predictor.nc", log);
//   if (r.promoted()) ...                              // r.gate_line(): each statistic vs threshold
//
// The problem is Lorenz-96 with the gaussian prior (x0 = c + prior_sd N(0, I), c a fixed attractor
// state): the 4D-Var oracle then has exactly the simulator's prior, and its only approximation is the
// Laplace posterior over the window. The oracle's J is the central difference of its MAP in y.
#include <filesystem>
#include <iosfwd>
#include <memory>
#include <string>

#include "varflow/amortized/config.h"
#include "varflow/core/communicator.h"
#include "varflow/core/random.h"
#include "varflow/report/validation_report.h"

namespace varflow {
class Model;
}

namespace varflow::cycle {

struct PredictorStepOptions {
  // The inverse problem: the cycle's observation network (window 4, observations at steps 0, 2, 4,
  // every obs_stride-th point, obs_noise 1, no missing values), n = 40, F = 8, dt = 0.05, the
  // gaussian prior with prior_sd 1.
  amortized::WindowProblemOptions problem = default_problem();
  // Network, training and number of pairs (setup.window_problem is ignored: `problem` is used).
  amortized::AmortizedSetup setup = default_setup();
  // Events, draws, the gates (design/gates.md thresholds) and the oracle's J; validation.window_problem is
  // overwritten with `problem`.
  report::ValidationOptions validation = default_validation();

  // Throws InvalidArgument naming the option, its value and the rule.
  void validate() const;

  static amortized::WindowProblemOptions default_problem();
  static amortized::AmortizedSetup default_setup();
  static report::ValidationOptions default_validation();
};

struct PredictorStepResult {
  bool training_ok = false;          // false: the pairs could not be simulated, or a non-finite loss or
                                     // an exception while training
  std::string training_message;      // the training summary (or what failed)
  bool validated = false;            // the gates ran
  report::ValidationReport validation;
  std::string model_file;            // written only when training succeeded
  std::string model_checksum;
  double simulate_seconds = 0.0, label_seconds = 0.0, train_seconds = 0.0, validate_seconds = 0.0;
  Index labelled_pairs = 0;          // pairs that carried oracle labels in training

  // Trained, validated and every gate passed.
  bool promoted() const { return training_ok && validated && validation.passed(); }
  // One line: each gate's statistics against its thresholds (or why no gate ran), and for a failed
  // gate what to try (derivative labels when none were used; more of them, epochs or channels when
  // they were).
  std::string gate_line() const;
};

// Trains the amortized posterior on options.setup.pairs pairs simulated with `simulation_model`
// (state size options.problem.size; null: the physics), writes it to `model_file` atomically,
// validates it against the physics oracle and reports. A non-finite training loss, a failure inside
// training or a simulation model that fails (e.g. a non-finite state) is a reported status
// (training_ok = false), not an exception; the model is then neither written nor validated.
// Progress lines go to `log`. Throws InvalidArgument for invalid options or a model of the wrong size.
// On several ranks every rank calls it with the same arguments: the oracle labels, the training
// batches (data parallel), the held-out events and the SBC simulations are split over the ranks of
// `comm`, every rank gets the same result, and rank 0 alone writes `model_file` (design/parallel.md).
PredictorStepResult run_predictor_step(std::shared_ptr<const Model> simulation_model,
                                       const PredictorStepOptions& options, Rng& rng,
                                       const std::filesystem::path& model_file, std::ostream& log,
                                       const Communicator& comm = serial_communicator());

}  // namespace varflow::cycle
