#pragma once
// Variational inference with a normalizing flow: fit q(x) = Flow to an unnormalised posterior p~(x)
// by maximising the evidence lower bound
//     ELBO(theta) = E_{z ~ N(0, I)} [ log p~(T_theta(z)) - log q_theta(T_theta(z)) ] <= log Z,
// with the reparameterised gradient (Kingma & Welling 2014; Rezende & Mohamed 2015) or the
// "sticking the landing" estimator (Roeder, Wu & Duvenaud 2017), which drops the score term
// d log q_theta(x)/d theta at fixed x (zero mean) so that the gradient's variance vanishes when q equals
// the posterior. Targets: any LogDensity, among them the negative 4D-Var cost of a window
// (FourDVarLogDensity), so every model and operator with an adjoint has a VI posterior.
//
//   auto flow = make_flow(d, spec, &affine); flow->initialize(rng); affine->set(x_b, sd_b);
//   ElboSummary s = fit_elbo(*flow, target, options, rng);
//   if (!s.ok()) ... s.training.message names the epoch and step of the non-finite loss
#include <functional>
#include <memory>
#include <string>

#include "varflow/core/random.h"
#include "varflow/core/types.h"
#include "varflow/nn/trainer.h"
#include "varflow/var/cost.h"
#include "varflow/vi/flow.h"

namespace varflow::vi {

// An unnormalised log density log p~(x) with its gradient. Implementations are immutable and
// thread-safe (log_density is called from several threads at once); a non-finite value or a
// NumericalError is a failure of the density at that x (the ELBO reports it, never uses it).
class LogDensity {
 public:
  virtual ~LogDensity() = default;
  virtual Index dim() const = 0;
  virtual std::string describe() const = 0;
  // log p~(x); writes d log p~/dx to *gradient when not null.
  virtual double log_density(const Vector& x, Vector* gradient) const = 0;
  // Per column of x (d x n): log p~ (NaN where it failed) and, when gradient != nullptr, its gradient
  // (d x n). The default calls log_density with OpenMP over the columns; a target that is cheaper in
  // one batched pass (or is not thread-safe per point) overrides it.
  virtual Vector log_density_batch(const Matrix& x, Matrix* gradient) const;
};

// target.log_density_batch(x, gradient), after checking the rows of x.
Vector log_density_batch(const LogDensity& target, const Matrix& x, Matrix* gradient);

// N(mean, covariance), normalised (log Z = 0): the exact test target.
class GaussianLogDensity final : public LogDensity {
 public:
  GaussianLogDensity(Vector mean, const Matrix& covariance);
  Index dim() const override { return mean_.size(); }
  std::string describe() const override;
  double log_density(const Vector& x, Vector* gradient) const override;

 private:
  Vector mean_;
  Matrix precision_;
  double log_norm_;
};

// The two-moons posterior of amortized/problems.h at an observation y (standardised coordinates):
// the prior density, a mixture over the arc angle t ~ U(0, pi) and the moon (1/2 each) of
// N(raw(x); c_moon(t), 0.06^2 I), is integrated over t by the midpoint rule on `nodes` points per moon
// (log-sum-exp, so no underflow far from the moons), times TwoMoons::likelihood. The midpoint rule
// converges fast here (the integrand is smooth on a scale 0.06 >> pi / nodes for nodes >= 128).
class TwoMoonsPosterior final : public LogDensity {
 public:
  explicit TwoMoonsPosterior(double y, Index nodes = 256);
  Index dim() const override { return 2; }
  std::string describe() const override;
  double log_density(const Vector& x, Vector* gradient) const override;

 private:
  double y_;
  Index nodes_;
};

// log p~(z) = -J(z), J the 4D-Var cost of a window (var/cost.h); gradient -dJ/dz by one adjoint sweep.
// A non-finite trajectory (NumericalError from the cost) is reported as NaN.
class FourDVarLogDensity final : public LogDensity {
 public:
  explicit FourDVarLogDensity(FourDVarCost cost) : cost_(std::move(cost)) {}
  Index dim() const override { return cost_.control_size(); }
  std::string describe() const override;
  double log_density(const Vector& x, Vector* gradient) const override;
  const FourDVarCost& cost() const { return cost_; }

 private:
  FourDVarCost cost_;
};

// The gradient used to train q. The first two are gradients of the reverse KL(q || p) (the ELBO): it is
// mode-seeking, so on a posterior whose modes are separated by a region of low density q may settle on
// one mode. kForwardKl follows instead the forward KL(p || q), which is mass-covering: with draws
// x_j ~ q (held fixed) and self-normalised importance weights w_j ∝ p~(x_j) / q(x_j), its gradient
// -sum_j w_j d log q(x_j)/dtheta (adaptive importance sampling; e.g. Bornschein & Bengio 2015,
// "reweighted wake-sleep"; Jerfel et al. 2021, "Variational refinement for importance sampling using
// the forward KL") moves q towards every region where p~/q is large. It is consistent only where q
// covers p~ (start q wide, e.g. at the prior) and noisy when the effective sample size of a batch is
// small; it costs one sampling and one density pass per step.
enum class ElboEstimator { kReparameterised, kStickingTheLanding, kForwardKl };
// "reparameterised", "stl", "forward-kl".
std::string to_string(ElboEstimator e);
ElboEstimator elbo_estimator_from_string(const std::string& name, const std::string& what = "estimator");

// The loss -ELBO estimated on base draws z (d x n), and with gradient = true ADDS its gradient with
// respect to the flow's parameters (by `estimator`) to flow.parameters().gradients(). The returned
// value is the plain Monte Carlo estimate mean_j [log q(x_j) - log p~(x_j)] for every estimator (so
// validation and best-weights restore always use the -ELBO).
// Returns NaN (and adds nothing) when the target or the flow is not finite at some draw.
double elbo_loss(Flow& flow, const LogDensity& target, const Matrix& z, ElboEstimator estimator, bool gradient);

struct ElboOptions {
  ElboEstimator estimator = ElboEstimator::kStickingTheLanding;
  Index draws = 64;              // base draws per optimizer step (the batch)
  Index steps_per_epoch = 25;
  Index validation_draws = 512;  // fixed draws on which the validation loss (-ELBO) is measured
  Index evaluation_draws = 4096; // fresh draws for the final ELBO, its standard error and the IS figures
  nn::TrainingOptions training = default_training();
  // Cosine schedule over 40 epochs at a peak learning rate of 5e-3, no early stop, best-weights restore.
  static nn::TrainingOptions default_training();
  void validate() const;         // InvalidArgument naming the field
};

// The quality of q for p~ on fresh draws x_j ~ q, w_j = p~(x_j) / q(x_j):
//   elbo = mean log w, its standard error; log_evidence = log mean w (importance sampling, an upper
//   estimate of the ELBO, consistent for log Z); ess_fraction = (sum w)^2 / (n sum w^2) in (0, 1]
//   (1: q proportional to p~; small: q misses mass of p~ or is much wider).
struct ElboEvaluation {
  Index draws = 0;
  double elbo = 0.0, elbo_standard_error = 0.0;
  double log_evidence = 0.0;
  double ess_fraction = 0.0;
  bool finite = true;  // false when some draw was not finite (the figures are then NaN)
};
ElboEvaluation evaluate_elbo(Flow& flow, const LogDensity& target, Index draws, Rng& rng);

struct ElboSummary {
  nn::TrainingSummary training;
  ElboEvaluation evaluation;
  bool ok() const { return training.ok() && evaluation.finite; }
  std::string brief_report() const;
};

// Trains the flow by nn::fit (AdamW, schedule, clipping, non-finite detection, best-weights restore on
// the validation -ELBO). Training items are fresh draws from rng; validation items fixed draws.
ElboSummary fit_elbo(Flow& flow, const LogDensity& target, const ElboOptions& options, Rng& rng,
                     const nn::ProgressCallback& progress = {});

// Draws from the flow: x (d x n) from n base draws of rng.
Matrix sample_flow(Flow& flow, Index n, Rng& rng);

// The Laplace approximation N(mode, H^-1) of p~ about the mode that Newton's method (with a
// finite-difference Hessian of the gradient, step 1e-5, symmetrised, and backtracking) reaches from
// `start`. converged is false when the gradient norm did not fall below 1e-6 (1 + |log p~|) in
// `max_iterations` or the Hessian at the end is not negative definite.
struct LaplaceApproximation {
  Vector mode;
  Matrix covariance;
  Index iterations = 0;
  bool converged = false;
};
LaplaceApproximation laplace_approximation(const LogDensity& target, const Vector& start, Index max_iterations = 100);

}  // namespace varflow::vi
