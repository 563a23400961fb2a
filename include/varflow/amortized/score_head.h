#pragma once
// Conditional score-based diffusion head (head.h): sampling only, no log-density.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "varflow/amortized/head.h"
#include "varflow/amortized/head_registry.h"

namespace varflow::amortized {

// Conditional denoising score matching (Vincent 2011; Song et al. 2021, "Score-based generative
// modeling through stochastic differential equations") with an epsilon-network: for t in [t_min, 1]
// and eps ~ N(0, I), x_t = alpha(t) x + sigma(t) eps and the loss is |eps_net(x_t, t, c) - eps|^2
// (the sigma(t)^2-weighted score-matching loss with score s = -eps_net / sigma). t is drawn uniform
// in t or, with probability log_sigma_fraction, uniform in log sigma(t) (which weights the small
// noise levels, where a narrow posterior takes its shape, as Karras et al. 2022's log-normal
// sigma does).
//   VP: beta(t) = beta_min + t (beta_max - beta_min), alpha = exp(-int_0^t beta / 2),
//       sigma^2 = 1 - alpha^2; reverse SDE dx = [-beta x / 2 - beta s] dt + sqrt(beta) dw,
//       probability-flow ODE dx/dt = -beta (x + s) / 2; start x(1) ~ N(0, I).
//   VE: sigma(t) = sigma_min (sigma_max / sigma_min)^t, alpha = 1, g^2 = d sigma^2/dt; reverse SDE
//       dx = -g^2 s dt + g dw, ODE dx/dt = -g^2 s / 2; start x(1) ~ N(0, sigma_max^2 I); the
//       network sees x_t / sqrt(1 + sigma^2).
// Network input: [x_t (scaled); time features (t - 1/2, sin(pi 2^k t), cos(pi 2^k t)); c], a residual
// MLP F. With backbone = gaussian the prediction is
//   eps(x_t, t, c) = F(...) + k(t) (x_t - alpha m(c)),   k_i(t) = sigma / (alpha^2 v_i + sigma^2),
// the exact epsilon (-sigma times the score) of x_t when x | c ~ N(m(c), diag(v)): m(c) = W c + b
// (zero-initialised) and v = exp(log_var) (initialised to 1, the normalised marginal variance) are
// learned with F. The backbone carries the Gaussian part of the posterior at every noise level,
// where an epsilon-network alone must learn alpha m(c) / sigma, amplified by 1 / sigma near t_min
// and divided by sigma / alpha near t = 1; F only learns the non-Gaussian rest (compare the skip
// and output scalings of Karras et al. 2022, EDM, which do the same for the unconditional N(0, s^2)).
// Samplers integrate from t = 1 to t_min in `steps` steps, equal (grid_power 1) or shorter towards
// t_min, t_k = t_min + (1 - t_min)(1 - k/steps)^grid_power (kSamplerSchemes in score_head.cpp:
// Euler-Maruyama for the SDE, the last step without noise; Euler for the ODE; pc: the SDE step
// followed by corrector_steps Langevin steps at signal-to-noise ratio snr; heun: Heun's method on the
// probability-flow ODE, Karras et al. 2022 Algorithm 1, 2 network passes per step). With denoise
// every sampler ends with one Euler step of the probability-flow ODE from t_min to t = 0 (the network
// at t_min), which removes the noise of level sigma(t_min) to first order: for x ~ N(m, v) it scales
// x_t - m by 1 - sigma^2 / (2 (v + sigma^2)), against the exact sqrt(v / (v + sigma^2)). Tweedie's
// step E[x_0 | x_t] (Song et al. 2021's noise removal; Karras et al.'s last step, Euler in sigma)
// scales it by 1 - sigma^2 / (v + sigma^2) and narrows the draws by as much as the noise widened
// them: Var E[x_0 | x_t] = v - E Var(x_0 | x_t). No log-density.
class ScoreHead final : public Head {
 public:
  ScoreHead(Index state_size, Index context_size, const ScoreOptions& options, Index mean_samples,
            std::uint64_t mean_seed);
  HeadType type() const override { return HeadType::kScore; }
  std::string describe() const override;
  Index state_size() const override { return d_; }
  Index context_size() const override { return c_; }
  void bind(nn::ParameterBinder& binder, const std::string& prefix) override;
  void initialize(Rng& rng) override;
  double loss(const Matrix& x, const Matrix& ctx, Rng& rng, bool gradient, Matrix* dctx) override;
  // Derivative-informed training acts on the backbone's mean m(c) (backbone = gaussian only): the
  // head's posterior mean when F = 0 and, with F small against the backbone, its leading part. The
  // samplers' mean (mean_draws through push) is what the gates judge. `draws` is unused.
  bool supports_mean_penalty() const override { return has_backbone(); }
  void check_mean_penalty_supported() const override;  // names score.backbone
  double loss_with_mean_penalty(const Matrix& x, const Matrix& ctx, Rng& rng, bool gradient, Matrix* dctx,
                                const MeanPenalty& penalty, Index draws) override;
  Matrix sample(const Matrix& ctx, Rng& rng) override;  // with the configured sampler
  Matrix sample(const Matrix& ctx, Rng& rng, Sampler sampler, Index steps);
  // Network evaluations per draw of `sampler` with `steps` steps (pc: corrector_steps per step but the
  // last; heun: two per step; denoise: one more).
  static Index network_passes(Sampler sampler, Index steps, Index corrector_steps, bool denoise);
  // push: the probability-flow ODE (Euler, `steps` steps) from z at t = 1 to t_min, then (denoise)
  // on to t = 0.
  Matrix push(const Matrix& z, const Matrix& ctx) override;
  Matrix push_jvp(const Matrix& z, const Matrix& ctx, const Matrix& dctx) override;
  Matrix push_vjp(const Matrix& z, const Matrix& ctx, const Matrix& a) override;
  Matrix mean_draws() const override;
  bool has_sampler() const override { return true; }
  void set_sampler(Sampler sampler, Index steps) override;
  void record_options(AmortizedConfig& config) const override;  // score.sampler, score.steps

  double alpha(double t) const;
  double sigma(double t) const;
  // The inverse of sigma(t) on (0, 1]: the time at which the noise level is s (closed form).
  double time_at_sigma(double s) const;

 private:
  Index time_size() const { return 2 * o_.time_features + 1; }
  Index input_size() const { return d_ + time_size() + c_; }
  double input_scale(double t) const;  // c_in(t)
  void time_features(double t, double* out) const;
  // Coefficients of one backward Euler step from t to t - h of the ODE (noise = false) or of the
  // reverse SDE: x <- p x + q eps_net(c_in x, t, c) [+ r z].
  void step_coefficients(double t, double h, bool sde, double& p, double& q, double& r) const;
  // The samplers' steps k = 0 .. steps-1, each from t = t_k to t - h = t_{k+1}, on the grid
  // t_k = t_min + (1 - t_min)(1 - k/steps)^p, p = grid_power (1: equal steps); t_steps = t_min.
  struct TimeStep {
    double t = 1.0, h = 0.0;
  };
  std::vector<TimeStep> time_steps(Index steps) const;
  // The mean's map (push and its JVP/VJP) as steps x <- p x + q eps_net(x, t): the probability-flow
  // ODE's Euler steps on the grid of o_.steps and, with denoise, its step from t_min to 0.
  struct OdeStep {
    double t, p, q;
  };
  std::vector<OdeStep> ode_steps() const;
  // The probability-flow ODE's Euler step from t_min to 0, x <- p x + q eps_net(x, t_min).
  void denoise_coefficients(double& p, double& q) const;
  void fill_input(const Matrix& x, double t, const Matrix& ctx, Matrix& in) const;
  // The backbone's gain k(t) (d values; see above); only with backbone = gaussian.
  Vector backbone_gain(double t) const;
  // eps(x, t, c) for a batch: the network on fill_input and the backbone with mean m = m(c)
  // (d x B, from backbone_mean). Leaves the network's caches at this input.
  void predict(const Matrix& x, double t, const Matrix& ctx, const Matrix& m, Matrix& in, Matrix& eps);
  Matrix backbone_mean(const Matrix& ctx);  // m(c), d x B (zeros without a backbone)
  bool has_backbone() const { return o_.backbone == ScoreBackbone::kGaussian; }
  Matrix base_draws(Index n, Rng& rng) const;
  Index d_, c_;
  ScoreOptions o_;
  Index mean_samples_;
  std::uint64_t mean_seed_;
  std::unique_ptr<nn::Sequential> net_;
  nn::Dense mean_layer_;                // m(c) = W c + b (backbone = gaussian)
  nn::ParameterBinder::Block log_var_;  // log v, d values (backbone = gaussian)
};

// Registration (head_registry.cpp): name "score", keys score.*.
HeadRegistration score_head_registration();

}  // namespace varflow::amortized
