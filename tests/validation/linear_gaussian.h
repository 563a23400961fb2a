#pragma once
// The exact linear-Gaussian problem the gate tests use, and candidate fast posteriors with planted
// faults.
//
//   x in R^10 ~ N(0, 0.1 I),   y = x + e,  e ~ N(0, 0.1 I)
//   exact posterior  N(y / 2, 0.05 I);   sensitivity of its mean  J = d mean / d y = 0.5 I.
//
// The oracle is the exact posterior (GaussianPosterior with a DiagonalCovariance). A Candidate is a
// fast posterior: the exact one, or one with a planted fault.
#include <Eigen/SVD>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "varflow/core/error.h"
#include "varflow/covariance/covariances.h"
#include "varflow/obs/operators.h"
#include "varflow/posterior/posterior.h"
#include "varflow/validation/promotion.h"

namespace varflow::test {

constexpr Index kDim = 10;
constexpr double kPriorVariance = 0.1;
constexpr double kNoiseVariance = 0.1;
constexpr double kPosteriorVariance = kPriorVariance * kNoiseVariance / (kPriorVariance + kNoiseVariance);  // 0.05
constexpr double kGain = kPriorVariance / (kPriorVariance + kNoiseVariance);                                 // 0.5
// The component whose adjoint entry the adjoint faults corrupt.
constexpr Index kFaultyComponent = 3;

enum class Fault {
  kNone,                // the exact posterior
  kApproximate,         // a realistic correct candidate: known through 1000 draws, Jacobian off by 2%
  kStdHalf,             // standard deviations scaled by 0.5
  kStdDouble,           // standard deviations scaled by 2
  kMeanShift,           // mean shifted by +2 posterior standard deviations in every component
  kPrior,               // the posterior equals the prior
  kJacobianScaled,      // mean map (and its Jacobian) scaled by 1.1
  kAdjointWrongSign,    // the VJP has one entry with the wrong sign
  kAdjointMissingTerm,  // the VJP misses one term
};

inline std::string fault_name(Fault f) {
  switch (f) {
    case Fault::kNone: return "exact posterior";
    case Fault::kApproximate: return "approximate (1000 draws, J off by 2%)";
    case Fault::kStdHalf: return "std x 0.5";
    case Fault::kStdDouble: return "std x 2";
    case Fault::kMeanShift: return "mean + 2 sigma";
    case Fault::kPrior: return "posterior = prior";
    case Fault::kJacobianScaled: return "Jacobian x 1.1";
    case Fault::kAdjointWrongSign: return "adjoint wrong sign";
    case Fault::kAdjointMissingTerm: return "adjoint missing term";
  }
  return "?";
}

inline Vector draw_state(Rng& rng) { return std::sqrt(kPriorVariance) * rng.normal_vector(kDim); }
inline Vector simulate_observations(const Vector& x, Rng& rng) {
  return x + std::sqrt(kNoiseVariance) * rng.normal_vector(kDim);
}

inline std::shared_ptr<const Posterior> exact_posterior(const Vector& y) {
  return std::make_shared<GaussianPosterior>(
      kGain * y, std::make_shared<DiagonalCovariance>(DiagonalCovariance::scaled_identity(kDim, kPosteriorVariance)));
}

// A fast posterior q(x | y) = N(A y + b, s^2 I), possibly with a corrupted VJP.
class Candidate {
 public:
  // `rng` draws the candidate's fixed error (only kApproximate has one).
  Candidate(Fault fault, Rng& rng) : fault_(fault) {
    a_ = kGain * Matrix::Identity(kDim, kDim);
    b_ = Vector::Zero(kDim);
    std_ = std::sqrt(kPosteriorVariance);
    switch (fault) {
      case Fault::kNone:
      case Fault::kAdjointWrongSign:
      case Fault::kAdjointMissingTerm: break;
      case Fault::kApproximate: {
        // A = 0.5 (I + E) with ||E||_2 = 0.02: a trained network is never exact.
        Matrix e = Matrix::NullaryExpr(kDim, kDim, [&rng] { return rng.normal(); });
        e *= 0.02 / e.jacobiSvd().singularValues()[0];
        a_ = kGain * (Matrix::Identity(kDim, kDim) + e);
        break;
      }
      case Fault::kStdHalf: std_ *= 0.5; break;
      case Fault::kStdDouble: std_ *= 2.0; break;
      case Fault::kMeanShift: b_ = Vector::Constant(kDim, 2.0 * std::sqrt(kPosteriorVariance)); break;
      case Fault::kPrior:
        a_.setZero();
        std_ = std::sqrt(kPriorVariance);
        break;
      case Fault::kJacobianScaled: a_ *= 1.1; break;
    }
    // The matrix the VJP applies (A^T unless the adjoint is faulty).
    at_ = a_.transpose();
    if (fault == Fault::kAdjointWrongSign) at_(kFaultyComponent, kFaultyComponent) *= -1.0;
    if (fault == Fault::kAdjointMissingTerm) at_(kFaultyComponent, kFaultyComponent) = 0.0;
  }

  Fault fault() const { return fault_; }
  Vector mean(const Vector& y) const { return a_ * y + b_; }
  double std_dev() const { return std_; }

  Matrix samples(const Vector& y, Index n, Rng& rng) const {
    Matrix draws = std_ * Matrix::NullaryExpr(kDim, n, [&rng] { return rng.normal(); });
    draws.colwise() += mean(y);
    return draws;
  }

  // The posterior for observations y: Gaussian, or for kApproximate known only through 1000 draws.
  std::shared_ptr<const Posterior> posterior(const Vector& y, Rng& rng) const {
    if (fault_ == Fault::kApproximate) return std::make_shared<SamplePosterior>(samples(y, 1000, rng));
    return std::make_shared<GaussianPosterior>(
        mean(y), std::make_shared<DiagonalCovariance>(DiagonalCovariance::scaled_identity(kDim, std_ * std_)));
  }

  JacobianOperator jacobian() const {
    const Matrix a = a_, at = at_;
    return {[a](const Vector& v) { return Vector(a * v); }, [at](const Vector& w) { return Vector(at * w); }, kDim,
            kDim};
  }

  // The mean map y -> mean(y) as a TL/AD pair (TL = JVP, AD = VJP).
  LinearizedMap mean_map() const {
    const Matrix a = a_, at = at_;
    const Vector b = b_;
    LinearizedMap m;
    m.nonlinear = [a, b](const Vector& y) { return Vector(a * y + b); };
    m.tangent = [a](const Vector& v) { return Vector(a * v); };
    m.adjoint = [at](const Vector& w) { return Vector(at * w); };
    m.input_size = m.output_size = kDim;
    return m;
  }

 private:
  Fault fault_;
  Matrix a_, at_;
  Vector b_;
  double std_ = 0.0;
};

inline JacobianOperator exact_jacobian() {
  return {[](const Vector& v) { return Vector(kGain * v); }, [](const Vector& w) { return Vector(kGain * w); }, kDim,
          kDim};
}

// The SBC problem for a candidate: prior, simulator, the candidate's posterior sampler.
inline SbcProblem sbc_problem(const std::shared_ptr<const Candidate>& candidate) {
  SbcProblem p;
  p.prior_sample = [](Rng& r) { return draw_state(r); };
  p.simulate = [](const Vector& x, Rng& r) { return simulate_observations(x, r); };
  p.posterior_samples = [candidate](const Vector& y, Index n, Rng& r) { return candidate->samples(y, n, r); };
  p.prior_variance = Vector::Constant(kDim, kPriorVariance);
  return p;
}

// Everything the promotion decision needs for a candidate: `events` held-out events and Jacobian
// cases at the first `jacobian_events` of them, all drawn from rng.
struct LinearGaussianInputs {
  PromotionInputs inputs;
  std::shared_ptr<const ObservationOperator> h;  // kept alive for the TL/AD pair that refers to it
};

inline LinearGaussianInputs make_inputs(const std::shared_ptr<const Candidate>& candidate, Rng& rng,
                                        Index events = 20, Index jacobian_events = 3) {
  LinearGaussianInputs out;
  PromotionInputs& in = out.inputs;
  out.h = std::make_shared<IdentityObservation>(kDim);
  for (Index e = 0; e < events; ++e) {
    const Vector x = draw_state(rng);
    const Vector y = simulate_observations(x, rng);
    in.held_out_events.push_back({format_message("event_", e), candidate->posterior(y, rng), exact_posterior(y)});
    if (e < jacobian_events) {
      in.jacobians.push_back({format_message("event_", e), candidate->jacobian(), exact_jacobian()});
    }
    if (e == 0) {
      in.linearizations.push_back({"fast_posterior_mean_map", candidate->mean_map(), y});
      in.linearizations.push_back({"observation_operator", linearize(*out.h, x), x});
    }
  }
  in.sbc = sbc_problem(candidate);
  return out;
}

}  // namespace varflow::test
