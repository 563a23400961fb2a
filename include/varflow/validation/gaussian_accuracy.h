#pragma once
// How close posteriors are to known isotropic Gaussian posteriors N(m_k, v I), accumulated over
// observations k: the figures of design/amortized.md ("Training budget") and of the linear-Gaussian
// accuracy tests.
//
//   GaussianAccuracy acc;
//   for (k ...) acc.add(*q.posterior(y_k, draws, rng), exact_mean(y_k), v, draws, rng);
//   acc.mean_error();  // rms over k and i of (mean_i - m_k,i) / sqrt(v)
#include "varflow/core/random.h"
#include "varflow/core/types.h"
#include "varflow/posterior/posterior.h"

namespace varflow {

class GaussianAccuracy {
 public:
  // Moments of p: its closed form when p has a covariance operator, else from `draws` samples
  // (whose Monte Carlo error, about 1/sqrt(draws) sd in the mean, is then part of the figures).
  // exact_mean has p.size() entries, exact_variance > 0 (InvalidArgument otherwise).
  void add(const Posterior& p, const Vector& exact_mean, double exact_variance, Index draws, Rng& rng);

  Index observations() const { return observations_; }
  // rms over observations and components of (mean_i - exact_i) / sqrt(v).
  double mean_error() const;
  // The average of variance_i / v, and the rms of (variance_i / v - 1).
  double variance_ratio() const;
  double variance_ratio_rms() const;
  // The largest |correlation| between two components over all observations.
  double max_correlation() const { return max_correlation_; }

 private:
  Index observations_ = 0, components_ = 0;
  double mean_sq_ = 0.0, ratio_sum_ = 0.0, ratio_sq_ = 0.0, max_correlation_ = 0.0;
};

}  // namespace varflow
