#pragma once
// Simultaneous confidence bands for the ECDF of discrete uniform ranks: the graphical uniformity
// test of Säilynoja, Bürkner & Vehtari (2022), "Graphical test for discrete uniformity and its
// applications in goodness-of-fit evaluation and multiple sample comparison", Statistics and
// Computing 32:32 (arXiv:2103.10522).
//
// Setting. N ranks r_1..r_N, each uniform on {0, 1, ..., R - 1} under the null (in simulation-based
// calibration R = L + 1 for L posterior draws). At an evaluation point i (1 <= i <= R - 1) the count
// c = #{r_j < i} is Binomial(N, z) with z = i / R, and jointly the counts at z_1 < ... < z_K behave
// exactly like the ECDF of N continuous uniforms at those points (r < i  <=>  U < i / R for
// r = floor(R U)), which is what makes the test exact for discrete ranks.
//
// Band. For a pointwise level gamma, point k gets the central binomial interval
//   lower_k = min{c : P(X <= c) >= gamma / 2},  upper_k = min{c : P(X > c) <= gamma / 2},
// X ~ Bin(N, z_k). A single gamma = alpha covers each point with probability >= 1 - alpha but the
// whole ECDF with much less; the simultaneous band uses the adjusted gamma for which
//   P(lower_k <= c_k <= upper_k for every k) >= 1 - alpha.
// Two ways to find it, both from the paper:
//  - optimization (default, deterministic and exact): the coverage of a band is computed exactly by
//    a forward recursion over the evaluation points, since given c_{k-1} the number of the remaining
//    N - c_{k-1} ranks below the next point is Bin(N - c_{k-1}, (z_k - z_{k-1}) / (1 - z_{k-1}));
//    gamma is then the largest value (found by bisection in log gamma) whose band still covers
//    with probability >= 1 - alpha. The coverage is a step function of gamma, so the band is
//    conservative by at most one step.
//  - simulation: M sets of N uniform ranks; for each, the smallest two-sided pointwise tail
//    probability 2 min_k min(P(X <= c_k), P(X >= c_k)); gamma is the alpha-quantile of these.
//    Its band's exact coverage is reported too, so the Monte Carlo error is visible.
#include <string>
#include <string_view>
#include <vector>

#include "varflow/core/random.h"
#include "varflow/core/types.h"

namespace varflow {

using IndexVector = Eigen::Matrix<Index, Eigen::Dynamic, 1>;
using IndexMatrix = Eigen::Matrix<Index, Eigen::Dynamic, Eigen::Dynamic>;

enum class EcdfBandMethod { kOptimization, kSimulation };
std::string to_string(EcdfBandMethod method);  // "optimization" | "simulation"
// Throws InvalidArgument naming the accepted names.
EcdfBandMethod ecdf_band_method_from_string(std::string_view name);

struct EcdfBand {
  Index samples = 0;      // N, the number of ranks the band is for
  Index rank_values = 0;  // R: ranks take the values 0..R-1
  double alpha = 0.0;     // 1 - target simultaneous coverage
  EcdfBandMethod method = EcdfBandMethod::kOptimization;
  std::vector<Index> points;  // evaluation points i_k (1 <= i_k <= R - 1, increasing)
  Vector z;                   // z_k = i_k / R
  IndexVector lower, upper;   // count bounds: lower_k <= #{r < i_k} <= upper_k
  double gamma = 0.0;         // pointwise level of the band
  double coverage = 0.0;      // its exact simultaneous coverage under uniformity
  // Binomial tails at each point for the test statistic: tail_below[k][c] = P(X <= c),
  // tail_above[k][c] = P(X >= c), X ~ Bin(N, z_k), c = 0..N.
  std::vector<Vector> tail_below, tail_above;

  // Bounds as ECDF differences (count / N - z_k), for plotting.
  Vector lower_difference() const;
  Vector upper_difference() const;
  std::string report() const;
};

// The result of testing one set of ranks against a band.
struct EcdfTestResult {
  Vector ecdf_difference;       // F_N(z_k) - z_k at each evaluation point
  Index violations = 0;         // points outside the band
  Index worst_point = -1;       // index k of the largest excursion (of the smallest margin if inside)
  double max_excursion = 0.0;   // max_k of the distance outside the band in ECDF units (<= 0: inside)
  double min_pointwise_p = 1.0; // 2 min_k min(P(X <= c_k), P(X >= c_k)): the band rejects when this
                                // falls below gamma (the paper's test statistic)
  bool passed = false;
};

// The evaluation points for R rank values: every i = 1..R-1 when R - 1 <= max_points, otherwise
// max_points of them spread evenly (i_k = round(k R / (max_points + 1))).
std::vector<Index> ecdf_evaluation_points(Index rank_values, Index max_points);

// The unadjusted band of pointwise level gamma (0 < gamma < 1), with its exact coverage.
EcdfBand ecdf_pointwise_band(Index samples, Index rank_values, double gamma, Index max_points = 100);

// The exact probability that the counts of `samples` uniform ranks stay inside the bounds.
double ecdf_band_coverage(Index samples, const Vector& z, const IndexVector& lower, const IndexVector& upper);

// The simultaneous 1 - alpha band by the optimization method (0 < alpha < 1).
EcdfBand ecdf_simultaneous_band(Index samples, Index rank_values, double alpha, Index max_points = 100);
// The simultaneous 1 - alpha band by the simulation method with `simulations` draws of N ranks.
EcdfBand ecdf_simultaneous_band_simulated(Index samples, Index rank_values, double alpha, Index simulations,
                                          Rng& rng, Index max_points = 100);

// Tests ranks (each in [0, R - 1]; size N of the band) against the band. Throws InvalidArgument on a
// size mismatch or a rank outside [0, R - 1].
EcdfTestResult ecdf_band_test(const EcdfBand& band, const IndexVector& ranks);

}  // namespace varflow
