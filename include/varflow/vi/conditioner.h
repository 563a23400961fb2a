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

}  // namespace varflow::vi
