#pragma once
// The amortized analysis of a cycling run (TwinExperimentConfig::amortized; design/solvers.md,
// "The amortized analysis in the cycle"). A trained amortized posterior of a window problem with the
// background prior (amortized/problems.h: y = [x_b; the observation slots]) gives a cycle's analysis
// in one pass instead of a 4D-Var solve. Per cycle it is checked, and the cycle falls back to the
// config's 4D-Var when
//   layout     the window's observations are not the problem's (times t0 + obs_first + k obs_every,
//              the problem's observed points),
//   non-finite the mean or its spread is not finite,
//   chi2       2 J(x_a), the 4D-Var cost at the amortized mean, is above m + check_sigmas sqrt(2 m):
//              the minimum of 2 J is chi-square with m degrees of freedom when B and R are right
//              (Desroziers et al. 2005), and a mean far from the MAP raises it.
#include <memory>
#include <string>

#include "varflow/amortized/amortized_posterior.h"
#include "varflow/amortized/problems.h"
#include "varflow/experiment/twin_experiment.h"

namespace varflow {

class AmortizedAnalysis {
 public:
  // Loads config.amortized.model and checks it against the experiment: the background prior, the
  // same model (its name with parameters), B = background.variance I equal to the prior's variance
  // and no hybrid B, R = the problem's error variance on every observed value, the observed
  // variables the problem's grid points, window_steps the problem's window. With
  // config.amortized.validation, also that the report is this model's (its checksum) and passed every
  // gate. Throws InvalidArgument naming the setting and both values (or the report and why).
  AmortizedAnalysis(const TwinExperimentConfig& config, const TwinData& data);

  struct Outcome {
    bool used = false;     // false: fall back (reason says why)
    std::string reason;    // "layout: ...", "non-finite ...", "chi2 ...", empty when used
    Vector analysis;       // the amortized mean (state size), set when used
    Vector marginal_std;   // its marginal standard deviations, set when used
    double cost = 0.0;     // J at the analysis
    double seconds = 0.0;  // the network's time (mean, spread) and the check's
  };
  // The analysis of `window` (the cycle's background, B and chosen observations) of cycle `cycle`
  // (its draws come from a generator seeded with the experiment's seed and the cycle, so that a
  // resumed run draws the same). Not thread-safe.
  Outcome analyse(const AssimilationWindow& window, Index cycle);

 private:
  // analyse() without its timing: every outcome but `seconds`.
  Outcome checked_analysis(const AssimilationWindow& window, Index cycle);

  TwinExperimentConfig::Amortized options_;
  std::uint64_t seed_;
  amortized::AmortizedPosterior posterior_;
  std::unique_ptr<amortized::WindowProblem> problem_;
  std::vector<Index> observed_;  // the observed state variables, in the order of the observed values
};

}  // namespace varflow
