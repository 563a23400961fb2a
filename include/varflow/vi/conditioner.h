#pragma once
// Conditioning a trained flow prior on observations with a pre-generator (Whang, Lindgren & Dimakis
// 2021, "Composed flows: approximate probabilistic inference with composed flows"; ICML).
//
// Given a flow prior p(x) = f#N(0, I) (x = f(z) is Flow::sample of the prior), an observation operator
// T with values y* and a Gaussian smoothing sigma, the smoothed conditional
//     p_sigma(x | y*) ∝ p(x) N(T(x); y*, sigma^2 I)
// is, in the prior's base space, p~(z) = N(z; 0, I) exp(-||T(f(z)) - y*||^2 / (2 sigma^2)). A
// pre-generator flow q(z) fitted to p~ by the ELBO (vi/elbo.h) minimises
//     KL(q(z) || N(0, I)) + E_q ||T(f(z)) - y*||^2 / (2 sigma^2),
// and x = f(z), z ~ q, samples the conditional. In data-assimilation terms: 4D-Var-like conditioning of
// a learned (flow) climatology prior on observations through a differentiable operator.
#include <memory>
#include <string>
#include <vector>

#include "varflow/nn/trainer.h"
#include "varflow/obs/observation_operator.h"
#include "varflow/vi/elbo.h"
#include "varflow/vi/flow.h"

namespace varflow::vi {

// Maximum-likelihood training of a flow on data (d x n, one sample per column) by nn::fit (the last
// options.validation_fraction of the columns are the validation set). The loss is -mean log q(x).
nn::TrainingSummary fit_density(Flow& flow, const Matrix& data, const nn::TrainingOptions& options, Rng& rng,
                                const nn::ProgressCallback& progress = {});

// p~(z) above. The prior flow is used (its caches change) but not trained; this target is therefore
// NOT thread-safe: log_density_batch runs one batched pass of the prior (the ELBO's entry) and
// log_density is its one-column case. The prior must outlive the target.
class ComposedConditional final : public LogDensity {
 public:
  ComposedConditional(Flow& prior, std::shared_ptr<const ObservationOperator> op, Vector y, double sigma);
  Index dim() const override { return prior_->dim(); }
  std::string describe() const override;
  double log_density(const Vector& z, Vector* gradient) const override;
  Vector log_density_batch(const Matrix& z, Matrix* gradient) const override;
  // x = f(z) per column: the prior's sampling map (to push pre-generator draws to data space).
  Matrix push(const Matrix& z) const;

 private:
  Flow* prior_;
  std::shared_ptr<const ObservationOperator> op_;
  Vector y_;
  double sigma_;
};

// Conditioning by a pre-generator, optionally annealed: the pre-generator is fitted to a ladder of
// smoothed conditionals whose sigma falls geometrically from sigma_start to the target sigma
// (likelihood tempering: each stage starts from the previous stage's q, which covers the next,
// narrower conditional), each stage by fit_elbo with `elbo` (its training.epochs per stage). The
// default gradient is the forward KL (ElboEstimator::kForwardKl, mass-covering) with the pre-generator
// started at the identity (q = N(0, I), the prior in base space): it keeps both modes of the bimodal
// two-moons conditional where the reverse-KL gradients (the ELBO's, mode-seeking) collapse onto one
// moon (design/amortized.md, section 5). Annealing matters where the target sigma is so small that
// prior draws rarely land in the conditional (the forward-KL weights then degenerate).
struct ConditionerOptions {
  ElboOptions elbo = default_elbo();
  double sigma_start = 1.0;  // the first stage's sigma when stages > 1 (>= the target sigma)
  Index stages = 1;          // sigmas in the ladder, the last one the target sigma (1: no annealing)
  // A last stage at the target sigma with the reverse-KL STL gradient for refine_epochs epochs (0: none),
  // started from the forward-KL fit: the forward KL is mass-covering and leaves q wider than the
  // conditional where the batch's effective sample size is small; the reverse KL, started from a q
  // that already covers every mode, tightens it (it is mode-seeking only from where it starts).
  Index refine_epochs = 0;
  // Forward-KL gradient, 16 epochs of 25 steps x 128 draws per stage, cosine schedule at 1e-2.
  static ElboOptions default_elbo();
  void validate() const;  // InvalidArgument naming the field
};

struct ConditionerSummary {
  std::vector<double> sigmas;        // the ladder
  std::vector<ElboSummary> stages;   // one per sigma (the last one is at the target sigma), then the refinement
  bool ok() const { return !stages.empty() && stages.back().ok(); }
  const ElboEvaluation& evaluation() const { return stages.back().evaluation; }
  std::string brief_report() const;
};

// Fits `pre_generator` (dimension prior.dim(); start it at the identity) to the composed conditional
// of `prior` at (op, y, sigma). Stops at the first stage that fails (its status is in the summary).
ConditionerSummary fit_conditioner(Flow& pre_generator, Flow& prior, const std::shared_ptr<const ObservationOperator>& op,
                                   const Vector& y, double sigma, const ConditionerOptions& options, Rng& rng,
                                   const nn::ProgressCallback& progress = {});

}  // namespace varflow::vi
