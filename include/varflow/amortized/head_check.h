#pragma once
// Checks of a head (head.h) against central finite differences and against its own other
// descriptions of the same distribution, returning structured results. The HeadConformance suite
// (testing/conformance.h) runs them on every head, ours or a user's; tests plant faults and require
// them to fail. Tolerances in one place (HeadCheckTolerances); all checks are exact up to round-off
// and truncation, so they are meant for small heads (d and C of a few, batches of a few columns).
#include <cmath>
#include <limits>
#include <string>

#include "varflow/amortized/head.h"
#include "varflow/core/random.h"
#include "varflow/nn/gradient_check.h"
#include "varflow/nn/parameters.h"

namespace varflow::amortized {

struct HeadCheckTolerances {
  nn::GradientCheckTolerances gradient;  // step h = 1e-6, norm-wise relative error <= 1e-6
  // Absolute, in nats or normalised units: |mean log q + loss| for a likelihood-trained head;
  // |log q - log N(x; mu, L L^T)| and |G(z; c) - (mu + L z)| for a closed-form head.
  double log_density = 1e-12;
  // |log q(G(z)) - log N(z; 0, I) + log |det dG/dz||, dG/dz by central differences (step 1e-6).
  double change_of_variables = 1e-6;
  // |integral of q - 1| for a 1-D head (rectangle rule, 40001 points on [-20, 20]).
  double normalisation = 1e-4;
  // The mean must depend on the context: ||dm/dc|| (central differences) above this.
  double sensitivity = 1e-6;
};

// Gradient of a scalar loss with respect to the parameters and the context (relative errors).
struct HeadGradientResult {
  double parameter_error = 0.0;
  double context_error = 0.0;
  bool passed = false;
  std::string report() const;
};

// loss(x, ctx) with gradient = true against central differences in the parameters (perturbed in
// `params`, the set the head is bound to; restored) and in the context. Every evaluation draws
// its noise from a copy of `noise`, so a score head sees the same noise each time.
HeadGradientResult check_loss_gradient(Head& head, nn::ParameterSet& params, const Matrix& x, const Matrix& ctx,
                                       const Rng& noise, const HeadCheckTolerances& tol = {});
// loss_with_mean_penalty(x, ctx, noise, ..., penalty, draws) likewise; ctx may have more columns
// than x (the penalty sees them all).
HeadGradientResult check_mean_penalty_gradient(Head& head, nn::ParameterSet& params, const Matrix& x,
                                               const Matrix& ctx, const Head::MeanPenalty& penalty, Index draws,
                                               const Rng& noise, const HeadCheckTolerances& tol = {});

// loss_with_moment_penalties(x, ctx, noise, ..., mean_penalty, variance_penalty, draws) likewise.
HeadGradientResult check_moment_penalty_gradient(Head& head, nn::ParameterSet& params, const Matrix& x,
                                                 const Matrix& ctx, const Head::MeanPenalty& mean_penalty,
                                                 const Head::VariancePenalty& variance_penalty, Index draws,
                                                 const Rng& noise, const HeadCheckTolerances& tol = {});

struct MeanJacobianResult {
  double jvp_error = 0.0;      // mean_jvp on unit vectors vs the Jacobian by central differences
  double vjp_error = 0.0;      // mean_vjp on unit vectors vs the same
  double jacobian_norm = 0.0;  // ||dm/dc||_F by central differences (must exceed tol.sensitivity)
  bool passed = false;
  std::string report() const;
};

// mean_jvp and mean_vjp at one context (C values) against the dense Jacobian of mean().
MeanJacobianResult check_mean_jacobian(Head& head, const Vector& ctx, const HeadCheckTolerances& tol = {});

// Which identities a head with a log-density is held to (both true for the built-in heads).
struct HeadDensityOptions {
  bool loss_is_negative_log_likelihood = true;  // loss(x, c) = -mean_j log q(x_j | c_j)
  bool sampling_map_is_bijective = true;        // x = G(z; c) is a bijection from the base N(0, I)
};

// A gap that does not apply (e.g. no closed form) is NaN.
struct HeadDensityResult {
  static constexpr double kNotApplicable = std::numeric_limits<double>::quiet_NaN();
  double loss_gap = kNotApplicable;                 // |mean_j log q(x_j | c_j) + loss(x, ctx)|
  double closed_form_gap = kNotApplicable;          // max_j |log q(x_j | c_j) - log N(x_j; mu_j, L_j L_j^T)|
  double sampling_map_gap = kNotApplicable;         // max |G(z; c) - (mu + L z)| (closed form)
  double change_of_variables_gap = kNotApplicable;  // max over three draws
  double normalisation_gap = kNotApplicable;        // 1-D heads
  bool passed = false;
  std::string report() const;
};

// The log-density of a head that has one (has_log_prob()) against: its loss, its closed form (when
// has_closed_form_moments()), the change of variables through its sampling map, and (d = 1) its
// integral; draws from rng. A head without a log-density is not checked here (passed, all NaN).
HeadDensityResult check_log_density(Head& head, const Matrix& x, const Matrix& ctx, Rng& rng,
                                    const HeadDensityOptions& options = {}, const HeadCheckTolerances& tol = {});

// Shapes of sample(), push(), push_jvp(), push_vjp() and mean_draws() for contexts ctx (C x B),
// and finite draws. Returns an empty string when all agree with state_size() and context_size(),
// else what differs.
std::string check_head_shapes(Head& head, const Matrix& ctx, Rng& rng);

}  // namespace varflow::amortized
