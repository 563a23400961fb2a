// The closure emulator of two-scale Lorenz-96 (design/cycle.md, "Two-scale Lorenz-96"), side by
// side with the full model in one run, for either parameter set:
//   - step 3's statistics: the one-step forward error and Jacobian difference against the full
//     model's slow variables (thresholds 0.01 and 0.05), and forecast skill against lead time of
//     the emulator and of the truncated model (coupling dropped, no closure);
//   - step 4: strong 4D-Var with the Laplace posterior on held-out windows, with the full model
//     (controlling slow and fast variables) and with the emulator (slow variables only), the
//     posterior agreement gate on the slow variables, time per window;
//   - the cost of one TL and one AD sweep over the window, full model against emulator;
//   - two diagnostics: the emulator against the mean of the full model over fast variables
//     resampled with the slow ones held fixed, and over fast variables driven by the true slow
//     history.
//   varflow_closure_bench [--set arnold2013|rasp2020] [--multiple M] [--epochs E] [--pairs P]
//                         [--windows W] [--seed S]
// Defaults: arnold2013, M = 10 physics steps per emulator step, 60 epochs, 6000 pairs, 10 windows,
// the cycle's observation network (window 4 emulator steps, observations every 2, obs and
// background variance 1, fast background variance 0.01). Run with OMP_NUM_THREADS=1 (the small
// network trains fastest on one thread). Not a test: prints tables and exits 0.

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "varflow/core/stopwatch.h"
#include "varflow/emulator/stencil_emulator.h"
#include "varflow/model/model_registry.h"
#include "varflow/model/trajectory.h"
#include "varflow/validation/analysis_comparison.h"
#include "varflow/validation/emulator_gate.h"

using namespace varflow;

namespace {
// The two diagnostics' statistics, summed over states: the distances of the emulator's step from X(t)
// and of the members' slow variables at t + m dt to the members' mean, and the mean increment.
struct MemberMeanDistances {
  double emulator2 = 0.0, increment2 = 0.0, spread2 = 0.0;
  // x0: X(t); members: their slow variables at t + m dt. Returns the members' mean.
  Vector add(emulator::StencilEmulator& emu, const Vector& x0, const std::vector<Vector>& members) {
    Vector mean = Vector::Zero(x0.size());
    for (const auto& m : members) mean += m / static_cast<double>(members.size());
    Vector e = x0;
    emu.step(e);
    emulator2 += (e - mean).squaredNorm();
    increment2 += (mean - x0).squaredNorm();
    for (const auto& m : members) spread2 += (m - mean).squaredNorm() / static_cast<double>(members.size());
    return mean;
  }
  double relative(double sum2) const { return std::sqrt(sum2 / increment2); }  // to the mean increment
};
}  // namespace

int main(int argc, char** argv) {
  std::string set = "arnold2013";
  Index multiple = 10, epochs = 60, pairs = 6000, windows = 10;
  std::uint64_t seed = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i], value = argv[i + 1];
    if (key == "--set") set = value;
    else if (key == "--multiple") multiple = std::stol(value);
    else if (key == "--epochs") epochs = std::stol(value);
    else if (key == "--pairs") pairs = std::stol(value);
    else if (key == "--windows") windows = std::stol(value);
    else if (key == "--seed") seed = std::stoull(value);
    else {
      std::cerr << "closure_bench: unknown option " << key << "\n";
      return 2;
    }
  }
  ModelSpec spec;
  spec.name = "lorenz96_two_scale";
  spec.parameters = ModelSpec::default_parameters(spec.name);
  if (set == "rasp2020") {
    spec.parameters["k"] = 36;
    spec.parameters["j"] = 10;
    spec.parameters["forcing"] = 10;
  } else if (set != "arnold2013") {
    std::cerr << "closure_bench: --set = '" << set << "' is not one of: arnold2013, rasp2020\n";
    return 2;
  }
  const auto physics = spec.make();
  const auto truncated = spec.truncated();
  const Index n = physics->state_size(), k = spec.resolved_size();
  const double dt = spec.parameter("dt");
  Rng rng(seed);
  std::printf("%s, %s; emulator step %g (%ld physics steps), seed %llu\n", physics->name().c_str(), set.c_str(),
              dt * static_cast<double>(multiple), static_cast<long>(multiple), static_cast<unsigned long long>(seed));

  const Vector rest_state = Vector::Ones(n);
  Stopwatch clock;
  const auto train = emulator::simulate_pairs(*physics, rest_state, pairs, 1000, multiple, rng, multiple);
  const auto held = emulator::simulate_pairs(*physics, rest_state, 200, 1000, 3 * multiple, rng, multiple);
  emulator::StencilEmulatorConfig ec;
  ec.grid = k;
  ec.radius = 3;
  ec.hidden = 16;
  ec.layers = 1;
  ec.dt = dt * static_cast<double>(multiple);
  ec.physics = spec.name;
  const auto emu = std::make_shared<emulator::StencilEmulator>(ec);
  emu->initialize(rng);
  const nn::TrainingOptions to = emulator::fixed_budget_training(epochs, 1e-2);
  const auto summary = emulator::train_emulator(*emu, emulator::leading_rows(train, k), to, rng);
  std::printf("simulate + train: %.1f s (%s)\n\n", clock.seconds(), summary.ok() ? "ok" : summary.message.c_str());

  EmulatorGateOptions go;
  go.step_multiple = multiple;
  const auto gate = emulator_gate(*emu, *physics, held.states, rng, go);
  std::printf("step 3 statistics (full model's slow variables)\n%s\n", gate.report().c_str());
  // Diagnostic: the emulator against an estimate of the conditional mean E[X(t + m dt) | X(t)] (what
  // a deterministic closure can at best predict): from each of the first 20 held-out states, the fast
  // variables are resampled with the slow ones held at X(t) (the full model stepped, X reset after
  // every step: 200 steps of spin-up, then 20 samples 40 steps apart), the full model is run m steps
  // from each (X(t), Y_i), and the slow parts are averaged.
  {
    MemberMeanDistances d;
    for (Index j = 0; j < 20; ++j) {
      const Vector x0 = held.states.col(j);
      Vector frozen = x0;
      const auto frozen_steps = [&](Index count) {
        for (Index s = 0; s < count; ++s) {
          physics->step(frozen);
          frozen.head(k) = x0.head(k);
        }
      };
      frozen_steps(200);
      std::vector<Vector> members;
      for (int i = 0; i < 20; ++i) {
        frozen_steps(40);
        Vector x = frozen;
        for (Index s = 0; s < multiple; ++s) physics->step(x);
        members.push_back(x.head(k));
      }
      d.add(*emu, x0.head(k), members);
    }
    std::printf("against the conditional mean (20 states x 20 resampled fast states): emulator error %.4f, "
                "spread of the members %.4f (both relative to the mean increment)\n\n",
                d.relative(d.emulator2), d.relative(d.spread2));
  }
  // Second reference: the fast variables driven by the slow variables' own history (not frozen).
  // From each of 20 held-out states the full model runs 800 steps (2 time units) as the truth; 20
  // members start from the same slow variables with the fast ones of other held-out states, run
  // alongside with their slow variables reset to the truth's after every step (so each member's Y
  // is driven by the true X history), then run m steps free from (X(t), Y_i(t)). Their mean is
  // E[X(t + m dt) | the X history], a finer conditioning than the closure's X(t) alone.
  {
    const Index spin = 800;
    MemberMeanDistances d;
    double truth2 = 0.0;
    for (Index j = 0; j < 20; ++j) {
      Vector truth = held.states.col(j);
      std::vector<Vector> members;
      for (Index i = 0; i < 20; ++i) {
        Vector m = held.states.col(20 + (j * 20 + i) % 180);
        m.head(k) = truth.head(k);
        members.push_back(m);
      }
      for (Index s = 0; s < spin; ++s) {
        physics->step(truth);
        for (auto& m : members) {
          physics->step(m);
          m.head(k) = truth.head(k);
        }
      }
      const Vector x0 = truth.head(k);
      std::vector<Vector> ends;
      for (auto& m : members) {
        for (Index s = 0; s < multiple; ++s) physics->step(m);
        ends.push_back(m.head(k));
      }
      for (Index s = 0; s < multiple; ++s) physics->step(truth);
      truth2 += (truth.head(k) - d.add(*emu, x0, ends)).squaredNorm();
    }
    std::printf("against the history-driven mean (20 states x 20 members, fast variables driven by the true slow "
                "history for %ld steps): emulator error %.4f, spread of the members %.4f, truth's distance %.4f "
                "(relative to the mean increment)\n\n",
                static_cast<long>(spin), d.relative(d.emulator2), d.relative(d.spread2), d.relative(truth2));
  }
  const ForecastSkill skill = forecast_skill(*emu, *truncated, multiple, *physics, multiple, dt, held.states, 8);
  std::printf("forecast skill, 200 held-out states:\n%s\n", skill.table().c_str());

  WindowOptions wo;
  wo.resolved = k;
  wo.step_multiple = multiple;
  wo.fast_background_sd = 0.1;
  Matrix truths(n, windows);
  for (Index w = 0; w < windows; ++w) truths.col(w) = held.states.col(w * (held.states.cols() / windows));
  const HeldOutWindows hw = make_held_out_windows(*physics, truths, wo, rng);
  const OracleAnalyses oracle = solve_oracle(hw, physics);
  const AnalysisComparison cmp = compare_with_oracle(hw, oracle, physics, emu);
  std::printf("step 4: %ld windows (oracle: %ld converged)\n", static_cast<long>(windows),
              static_cast<long>(oracle.converged_count()));
  std::printf("| model | variables | steps/window | s/window | RMSE (slow) |\n|---|---|---|---|---|\n");
  std::printf("| full | %ld | %ld | %.4f | %.3f |\n", static_cast<long>(cmp.physics_size),
              static_cast<long>(cmp.physics_steps), cmp.physics_seconds / static_cast<double>(windows),
              cmp.mean_physics_rmse);
  std::printf("| emulator | %ld | %ld | %.5f | %.3f |\n", static_cast<long>(cmp.model_size),
              static_cast<long>(cmp.model_steps), cmp.emulator_seconds / static_cast<double>(windows),
              cmp.mean_emulator_rmse);
  std::printf("speed-up %.1f; agreement %s: max |d| %.3f (<= 1), spread %.3f .. %.3f ([0.8, 1.25])\n\n",
              cmp.speedup(), cmp.agreement.passed() ? "pass" : "FAIL",
              std::abs(cmp.agreement.worst_difference.value), cmp.agreement.min_spread.value,
              cmp.agreement.max_spread.value);

  // One TL and one AD sweep over the window (mean of 20).
  const auto sweep = [&](const Model& m, Index steps, const Vector& start) {
    const Trajectory t = Trajectory::integrate(m, start, steps);
    const Vector v = Vector::Ones(start.size());
    const Stopwatch c;
    double sink = 0.0;
    for (int r = 0; r < 20; ++r) sink += t.tangent(v, steps).sum() + t.adjoint(v, steps).sum();
    const double s = c.seconds() / 20.0;
    return sink == 12345.0 ? -s : s;  // keeps the sweeps from being optimised away
  };
  const double full_sweep = sweep(*physics, cmp.physics_steps, truths.col(0));
  const double emu_sweep = sweep(*emu, cmp.model_steps, Vector(truths.col(0).head(k)));
  std::printf("one TL + AD sweep over the window: full %.3g s, emulator %.3g s (ratio %.1f)\n", full_sweep, emu_sweep,
              full_sweep / emu_sweep);
  return 0;
}
