// Adding a model: this file is all of it. A model with its TL and AD (CubicRing below), one
// register_model() call, and every path that builds models by name takes it: experiment configs
// (`simulate`, `assimilate`), forecast flags, the printed defaults. The conformance checks of the
// library run on it like on the built-in models.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <sstream>

#include "varflow/core/error.h"
#include "varflow/cycle/six_step.h"
#include "varflow/experiment/experiment_config.h"
#include "varflow/model/model_registry.h"
#include "varflow/testing/conformance.h"
#include "varflow/validation/linearization_checks.h"
#include "../test_messages.h"

namespace varflow {
namespace {

// dx_i/dt = -x_i^3 + c (x_{i+1} - 2 x_i + x_{i-1}) + F on a periodic ring, one explicit Euler step:
// M(x) = x + dt f(x). TL: dx + dt (-3 x^2 dx + c L dx); L is symmetric, so the AD is the same map.
class CubicRing final : public Model {
 public:
  CubicRing(Index n, double coupling, double forcing, double dt) : n_(n), c_(coupling), f_(forcing), dt_(dt) {
    check_at_least("CubicRing", "n", n, 3);
  }
  Index state_size() const override { return n_; }
  std::string name() const override { return format_message("cubic_ring(n=", n_, ", c=", c_, ", F=", f_, ")"); }

 protected:
  void do_step(Vector& x) const override {
    const Vector l = laplacian(x);
    x = (x.array() + dt_ * (-x.array().cube() + c_ * l.array() + f_)).matrix();
  }
  void do_step_tangent(const Vector& x, Vector& dx) const override { dx = linear(x, dx); }
  void do_step_adjoint(const Vector& x, Vector& ax) const override { ax = linear(x, ax); }

 private:
  Vector laplacian(const Vector& v) const {
    Vector l(n_);
    for (Index i = 0; i < n_; ++i) l[i] = v[(i + 1) % n_] - 2.0 * v[i] + v[(i + n_ - 1) % n_];
    return l;
  }
  Vector linear(const Vector& x, const Vector& d) const {
    return (d.array() + dt_ * (-3.0 * x.array().square() * d.array() + c_ * laplacian(d).array())).matrix();
  }
  Index n_;
  double c_, f_, dt_;
};

void register_cubic_ring() {
  static const bool registered = [] {
    using io::NumericOption;
    register_model({"cubic_ring", "a damped cubic ring (the worked example of adding a model)",
                    {NumericOption::integer("n", 8, 3, "number of variables"),
                     NumericOption::real("coupling", 0.5, NumericOption::Rule::kNonNegative, "diffusive coupling c"),
                     NumericOption::real("forcing", 1.0, NumericOption::Rule::kFinite, "forcing F"),
                     NumericOption::real("dt", 0.05, NumericOption::Rule::kPositive, "time step")},
                    [](const ModelParameters& p) {
                      return std::make_shared<CubicRing>(static_cast<Index>(p.at("n")), p.at("coupling"),
                                                         p.at("forcing"), p.at("dt"));
                    },
                    [](const ModelParameters& p) {
                      // -x^3 + F = 0: the uniform state cbrt(F).
                      return Vector(Vector::Constant(static_cast<Index>(p.at("n")), std::cbrt(p.at("forcing"))));
                    },
                    nullptr, nullptr});  // single-scale: every component resolved, no truncated model
    return true;
  }();
  (void)registered;
}

TEST(AddingAModel, ItsLinearizationPassesTheConformanceChecks) {
  register_cubic_ring();
  ModelSpec spec;
  spec.name = "cubic_ring";
  spec.parameters = ModelSpec::default_parameters("cubic_ring");
  const auto model = spec.make();
  Rng rng = testing::seeded_rng(5);
  const Vector x = spec.rest_state() + 0.3 * rng.normal_vector(model->state_size());
  for (Index steps : {1, 20}) {
    const auto report = check_linearization(linearize(*model, x, steps), x, rng);
    EXPECT_TRUE(report.passed()) << steps << " steps: " << report.dot_product.report() << "\n"
                                 << report.taylor.report();
  }
}

TEST(AddingAModel, ExperimentConfigsBuildItAndATwinExperimentAssimilates) {
  register_cubic_ring();
  EXPECT_NE(default_experiment_yaml().find("cubic_ring (n, coupling, forcing, dt)"), std::string::npos);
  const ExperimentConfig c = parse_experiment_config(
      "model: {name: cubic_ring, n: 12, coupling: 0.8}\n"
      "observations: {every_steps: 2, error_variance: 0.04}\nbackground: {variance: 0.5}\n"
      "cycling: {window_steps: 4, cycles: 8, burn_in: 2}\n",
      "cubic.yaml");
  EXPECT_EQ(c.experiment.model->state_size(), 12);
  EXPECT_DOUBLE_EQ(c.model.parameter("forcing"), 1.0);  // absent keys keep the model's defaults
  // The printed config reads back as itself, model section included.
  EXPECT_EQ(to_yaml(parse_experiment_config(to_yaml(c), "again")), to_yaml(c));
  const TwinExperimentResult r = run_twin_experiment(c.experiment);
  EXPECT_EQ(r.cycles_failed, 0);
  EXPECT_TRUE(std::isfinite(r.mean_analysis_rmse));
  // The ring relaxes to its rest state, so forecasts soon beat the observations; the first cycle
  // (background error ~1, observation error 0.2) shows the analysis at work.
  ASSERT_FALSE(r.cycles.empty());
  EXPECT_LT(r.cycles[0].analysis_rmse, 0.5 * r.cycles[0].background_rmse) << r.table();
  // At the newest observation (the window end) the analysis beats the observation error. (The
  // window-start score is a smoother one: the ring contracts, so later observations say little about
  // the window start; it is not held to the observation error.)
  EXPECT_LT(r.mean_filter_rmse, 0.2) << r.summary();
}

// The six-step cycle takes it by name too (tiny sizes; the emulator is evaluated even if its gate
// refuses it): the oracle (step 2) runs on it and step 4 compares the emulator's 4D-Var with it.
TEST(AddingAModel, TheSixStepCycleRunsIt) {
  register_cubic_ring();
  const auto c = cycle::SixStepConfig::from_yaml(
      "model: {name: cubic_ring, n: 12}\nobservations: {every_steps: 2, error_variance: 0.04}\n"
      "oracle: {windows: 2}\nemulator: {train_pairs: 200, held_out: 10, epochs: 2, hidden: 6, radius: 2}\n"
      "on_gate_failure: evaluate\n",
      "cubic.yaml");
  const auto dir = std::filesystem::temp_directory_path() / "varflow_adding_a_model_six_step";
  std::filesystem::remove_all(dir);
  std::ostringstream log;
  const auto r = cycle::run_six_step(c, 3, dir, log);
  const auto status = [&](int number) {
    for (const auto& s : r.steps) {
      if (s.number == number) return s.status;
    }
    return cycle::StepStatus::kSkipped;
  };
  EXPECT_EQ(status(2), cycle::StepStatus::kPassed) << r.table();
  EXPECT_NE(status(4), cycle::StepStatus::kSkipped) << r.table();  // run, whatever its verdict
  EXPECT_NE(log.str().find("cubic_ring"), std::string::npos) << log.str();
  std::filesystem::remove_all(dir);
}

TEST(AddingAModel, ItsParametersAreCheckedByTheirRules) {
  register_cubic_ring();
  EXPECT_EQ(test::message_of([] { parse_experiment_config("model: {name: cubic_ring, coupling: -1}\n", "t"); }),
            "config: model.coupling = -1 must be non-negative");
  EXPECT_EQ(test::message_of([] { parse_experiment_config("model: {name: cubic_ring, forcng: 2}\n", "t"); }),
            "config: unknown key 'model.forcng' (expected one of: coupling, dt, forcing, n, name)");
  EXPECT_NE(test::message_of([] { find_model("cubic_rong"); }).find("is not one of: lorenz96, lorenz96_two_scale, "
                                                                      "lorenz63, advection_diffusion, cubic_ring"),
            std::string::npos);
  EXPECT_THROW(register_model(find_model("cubic_ring")), InvalidArgument);  // a name is registered once
}

}  // namespace
}  // namespace varflow
