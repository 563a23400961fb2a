#pragma once
// Gate 3 — simulation-based calibration (SBC; Talts, Betancourt, Simpson, Vehtari & Gelman 2018,
// "Validating Bayesian inference algorithms with simulation-based calibration", arXiv:1804.06788),
// with a sharpness check.
//
// Procedure, for j = 1..N:  x_j ~ prior;  y_j ~ p(y | x_j) (the simulator);  L draws from the fast
// posterior q(x | y_j);  per state component i the rank r_ij = #{draws with component i < x_ji},
// in {0..L} (ties, possible for resampled draws, are broken uniformly at random). If q(x | y) is
// the exact posterior, every r_ij is uniform on {0..L} (Talts et al., Theorem 1). Over-dispersed
// posteriors pile ranks in the middle, under-dispersed ones at both ends, biased ones at one end.
//
// Tests (per component, all must pass):
//  1. chi-square uniformity of the rank histogram in B bins of (L + 1) / B ranks each:
//     X^2 = sum_b (O_b - N / B)^2 / (N / B) ~ chi-square(B - 1); p = P(chi2_{B-1} > X^2).
//     Bonferroni across the n components: pass when p > chi_square_alpha / n for every component
//     (family-wise false-alarm probability <= chi_square_alpha = 0.01). Needs N / B >= 5 (the usual
//     validity condition of the chi-square approximation).
//  2. the ECDF simultaneous-band test of Säilynoja, Bürkner & Vehtari (2022) (ecdf_band.h) at
//     simultaneous level ecdf_alpha / n per component (Bonferroni again, family-wise <= ecdf_alpha).
//     It sees deviations the binning hides (a slow drift of the ECDF) and shows where they are.
//  3. sharpness. A posterior equal to the prior passes 1 and 2 exactly (its ranks are uniform by the
//     same theorem), so SBC alone cannot tell a useful posterior from a useless one. The gate
//     measures the contraction per component,
//        c_i = 1 - mean_j(var of the L draws, component i) / prior_variance_i,
//     and requires c_i >= min_contraction (default 0.1): the observations must remove at least 10%
//     of the prior variance. A copy of the prior gives c ~ 0 within the Monte Carlo error
//     ~ sqrt(2 / (L - 1)) / sqrt(N) (0.01 for the defaults); so 0.1 is ten such errors away from a
//     copy of the prior while accepting any posterior that learns something. Components that the
//     observations barely constrain (the oracle's own contraction is small) need a per-component
//     threshold: set min_contraction_per_component, e.g. to half the oracle's contraction.
//
// Everything a report needs to plot is returned: ranks, rank histograms with their pointwise
// binomial band, the ECDF differences with the simultaneous band, p-values and contractions.
//
// Callback contract (SbcProblem): each callback is called from the calling thread in the order
// prior -> simulator -> posterior for each simulation j, drawing its randomness only from the Rng&
// passed. Simulation j has its own stream, item_rng(base, j) with base one draw of the gate's rng
// (core/communicator.h), so a run is reproducible from the seed and the same for any number of ranks.
//   prior_sample(rng)             -> x, a draw from the prior (size n)
//   simulate(x, rng)              -> y, a draw of the observations given the true state x
//   posterior_samples(y, L, rng)  -> an n x L matrix, one posterior draw per column, independent
//                                    draws from q(x | y) (thin an MCMC chain first: autocorrelated
//                                    draws bias the ranks, Talts et al. section 5)
//   prior_variance                   the marginal prior variances (size n, positive)
// Wrong sizes from a callback, or non-finite values from prior_sample or simulate, are InvalidArgument
// naming the callback and the simulation index. Non-finite posterior draws are the candidate's
// failure, not an input error: they are counted and fail the gate.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "varflow/core/communicator.h"
#include "varflow/core/random.h"
#include "varflow/core/types.h"
#include "varflow/validation/ecdf_band.h"

namespace varflow {

struct SbcProblem {
  std::function<Vector(Rng&)> prior_sample;
  std::function<Vector(const Vector& x, Rng&)> simulate;
  std::function<Matrix(const Vector& y, Index draws, Rng&)> posterior_samples;
  Vector prior_variance;
};

struct SbcOptions {
  Index simulations = 200;      // N (at least 200 for a promotion decision)
  Index posterior_draws = 99;   // L; ranks take L + 1 = 100 values
  Index bins = 20;              // B; (L + 1) % B == 0 and N / B >= 5
  double chi_square_alpha = 0.01;
  double ecdf_alpha = 0.01;
  Index ecdf_max_points = 100;  // evaluation points of the ECDF test (all L when L <= this)
  double histogram_band_level = 0.99;  // pointwise binomial band drawn on the rank histograms
  double min_contraction = 0.1;
  Vector min_contraction_per_component;  // empty: min_contraction for every component
  // A band computed earlier by sbc_ecdf_band(options, n) for the same N, L, alpha and dimension
  // (saves its computation when the gate runs many times); null: computed by the gate.
  std::shared_ptr<const EcdfBand> ecdf_band;

  void validate() const;  // InvalidArgument naming the option and value
};

struct SbcResult {
  Index simulations = 0, posterior_draws = 0, dimension = 0, bins = 0;
  SbcOptions options;

  IndexMatrix ranks;              // dimension x N, in 0..L
  Index non_finite_simulations = 0;  // simulations whose posterior draws had a non-finite value

  // Chi-square test.
  IndexMatrix histogram;          // dimension x B counts
  double expected_per_bin = 0.0;  // N / B
  Index histogram_band_lower = 0, histogram_band_upper = 0;  // binomial band of one bin's count
  Vector chi_square;              // X^2 per component (B - 1 degrees of freedom)
  Vector p_values;                // per component
  double chi_square_threshold = 0.0;  // chi_square_alpha / dimension (Bonferroni)
  double min_p_value = 1.0;
  Index worst_p_component = -1;
  bool chi_square_passed = false;

  // ECDF test.
  EcdfBand ecdf_band;             // the simultaneous band (alpha = ecdf_alpha / dimension)
  Matrix ecdf_difference;         // dimension x K: F_N(z_k) - z_k
  Vector ecdf_max_excursion;      // per component, > 0 outside the band
  Vector ecdf_min_pointwise_p;    // per component
  IndexVector ecdf_violations;    // per component: evaluation points outside the band
  Index worst_ecdf_component = -1;
  bool ecdf_passed = false;

  // Sharpness.
  Vector mean_posterior_variance; // per component, averaged over the N simulations
  Vector contraction;             // 1 - mean_posterior_variance / prior_variance
  Vector min_contraction;         // the threshold per component
  Index worst_contraction_component = -1;
  bool sharpness_passed = false;

  bool calibration_passed() const { return non_finite_simulations == 0 && chi_square_passed && ecdf_passed; }
  bool passed() const { return calibration_passed() && sharpness_passed; }
  std::string report() const;
};

// The band the gate uses for an n-dimensional problem: N = simulations, L + 1 rank values,
// simultaneous level ecdf_alpha / n (optimization method).
EcdfBand sbc_ecdf_band(const SbcOptions& options, Index dimension);

// The ranks of x among the columns of `draws` per component (ties broken at random).
IndexVector sbc_ranks(const Vector& x, const Matrix& draws, Rng& rng);

// Runs the N simulations and evaluates the three tests. Throws InvalidArgument on invalid options,
// an empty callback, a prior_variance that is not positive, a precomputed band that does not match,
// or a callback answer of the wrong size (see the contract above).
SbcResult sbc_gate(const SbcProblem& problem, const SbcOptions& options, Rng& rng);
// The same, with the N simulations split over the ranks of comm (blocks of simulations; every rank
// calls it with the same arguments and gets the same result). A callback that throws on one rank
// stops every rank with the message naming the rank and the simulation (distributed_map).
SbcResult sbc_gate(const SbcProblem& problem, const SbcOptions& options, Rng& rng, const Communicator& comm);

// Evaluates the tests on ranks already computed (dimension x N), with the mean posterior variances.
SbcResult sbc_evaluate(const IndexMatrix& ranks, const Vector& mean_posterior_variance, const Vector& prior_variance,
                       const SbcOptions& options);

}  // namespace varflow
