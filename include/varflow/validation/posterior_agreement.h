#pragma once
// Gate 1 — posterior agreement: on held-out events, does a fast (amortized) posterior agree with the
// slow variational oracle?
//
// For every event e and state component i, with m = mean(), s = marginal_std():
//   standardised difference  d_ei = (m_fast_ei - m_oracle_ei) / s_oracle_ei
//   spread ratio             r_ei = s_fast_ei / s_oracle_ei
// The gate passes when
//   max_ei |d_ei| <= tolerance_sigma                     (the fast mean lies within tolerance_sigma
//                                                          oracle standard deviations of the oracle
//                                                          MAP, in every component of every event)
//   min_spread_ratio <= r_ei <= max_spread_ratio for all (no component over- or under-dispersed).
//
// Why these thresholds:
//  - tolerance_sigma = 1: the design rule for promoting an amortized head — its MAP must fall within
//    one posterior standard deviation of the oracle MAP; a shift of one sigma already moves a
//    central 68% interval halfway off the oracle's.
//  - spread band [0.8, 1.25] = a factor 1.25 either way (symmetric in log s). Under the oracle's
//    Gaussian, the fast posterior's nominal 95% interval (+-1.96 s_fast) then covers between 88%
//    (ratio 0.8: +-1.57 s_oracle) and 98.6% (ratio 1.25: +-2.45 s_oracle) — a coverage error of at
//    most ~7 percentage points; the planted faults of half and double spread fall far outside.
//    The band applies to every ratio (min and max), not only to the median: a posterior
//    overconfident in one component is as dangerous as one overconfident everywhere.
//  - A sample-based fast posterior (SamplePosterior with M draws) estimates its spread with
//    relative standard error ~ 1 / sqrt(2 (M - 1)); over E events and n components the chance that
//    noise alone leaves the band is about E n 2 Phi(-log(1.25) sqrt(2 (M - 1))): M >= 400 keeps it
//    below 1e-6 for E n = 200. Likewise its mean carries Monte Carlo error s / sqrt(M).
//
// Contract: every event holds a fast and an oracle posterior of the same dimension; the oracle's
// marginal standard deviations must be positive and finite and its mean finite (otherwise
// InvalidArgument naming the event and component). A non-finite fast mean or spread is not an
// input error: it fails the gate and is reported as the worst case.
#include <memory>
#include <string>
#include <vector>

#include "varflow/core/types.h"
#include "varflow/posterior/posterior.h"

namespace varflow {

// One held-out event: the fast posterior and the oracle posterior for the same observations.
struct AgreementEvent {
  std::string name;                         // used in reports (e.g. the event's time or index)
  std::shared_ptr<const Posterior> fast;    // the candidate (amortized) posterior
  std::shared_ptr<const Posterior> oracle;  // the reference (variational) posterior
};

struct AgreementOptions {
  double tolerance_sigma = 1.0;
  double min_spread_ratio = 0.8;
  double max_spread_ratio = 1.25;
  // Levels at which quantiles of |d| and of r are reported (the report's distribution).
  std::vector<double> quantile_levels = {0.5, 0.9, 0.99};

  // False with a message naming the option, its value and the rule when an option is out of range.
  void validate() const;  // InvalidArgument naming the option and value
};

// Where an extreme value occurred.
struct AgreementLocation {
  Index event = -1;
  std::string event_name;
  Index component = -1;
  double value = 0.0;          // the statistic there (d or r)
  double fast_mean = 0.0, oracle_mean = 0.0, fast_std = 0.0, oracle_std = 0.0;
};

struct AgreementResult {
  Index events = 0, dimension = 0;
  AgreementOptions options;                 // the thresholds applied
  Matrix standardized_difference;           // d, dimension x events (one event per column)
  Matrix spread_ratio;                      // r, dimension x events

  // Mean agreement.
  AgreementLocation worst_difference;       // largest |d| (a non-finite d counts as the largest)
  double mean_difference = 0.0;             // mean of d over all entries (a systematic bias)
  Vector abs_difference_quantiles;          // quantiles of |d| at options.quantile_levels
  bool mean_passed = false;

  // Spread agreement.
  double spread_ratio_median = 0.0;
  AgreementLocation min_spread, max_spread; // smallest and largest r (non-finite r counts as both)
  Vector spread_ratio_quantiles;            // quantiles of r at options.quantile_levels
  bool spread_passed = false;

  bool passed() const { return mean_passed && spread_passed; }
  std::string report() const;
};

// Runs the gate over the held-out events (at least one). Throws InvalidArgument on invalid options,
// a null posterior, a dimension mismatch or an invalid oracle (see the contract above).
AgreementResult posterior_agreement_gate(const std::vector<AgreementEvent>& events,
                                         const AgreementOptions& options = {});

}  // namespace varflow
