#pragma once
// Gaussian regression head (head.h): q(x | c) = N(mu(c), L(c) L(c)^T), log-density, sampling and
// closed-form moments.
#include <memory>
#include <string>

#include "varflow/amortized/head.h"
#include "varflow/amortized/head_registry.h"

namespace varflow::amortized {

// q(x | c) = N(mu(c), L(c) L(c)^T), L lower triangular with diagonal exp(s(c)), s soft-clamped to
// [-7, 7] by 7 tanh(.); full form: the strictly lower entries free, diagonal form: L diagonal.
// One MLP c -> [mu (d); s (d); lower entries row by row (d(d-1)/2, full form only)]. Loss: the
// Gaussian negative log-likelihood 0.5 |L^-1 (x - mu)|^2 + sum s + d/2 log 2 pi.
// direct (the local encoder, diagonal form only): no MLP, the context is [mu; s] itself
// (context_size = 2 * state_size).
class GaussianHead final : public Head {
 public:
  GaussianHead(Index state_size, Index context_size, const GaussianOptions& options, bool direct = false);
  HeadType type() const override { return HeadType::kGaussian; }
  std::string describe() const override;
  Index state_size() const override { return d_; }
  Index context_size() const override { return c_; }
  void bind(nn::ParameterBinder& binder, const std::string& prefix) override;
  void initialize(Rng& rng) override;
  double loss(const Matrix& x, const Matrix& ctx, Rng& rng, bool gradient, Matrix* dctx) override;
  bool supports_mean_penalty() const override { return true; }
  double loss_with_mean_penalty(const Matrix& x, const Matrix& ctx, Rng& rng, bool gradient, Matrix* dctx,
                                const MeanPenalty& penalty, Index draws) override;
  // log v_i = log (L L^T)_ii, for either covariance form.
  bool supports_variance_penalty() const override { return true; }
  double loss_with_moment_penalties(const Matrix& x, const Matrix& ctx, Rng& rng, bool gradient, Matrix* dctx,
                                    const MeanPenalty& mean_penalty, const VariancePenalty& variance_penalty,
                                    Index draws) override;
  bool has_log_prob() const override { return true; }
  Vector log_prob(const Matrix& x, const Matrix& ctx) override;
  Matrix sample(const Matrix& ctx, Rng& rng) override;
  Matrix push(const Matrix& z, const Matrix& ctx) override;
  Matrix push_jvp(const Matrix& z, const Matrix& ctx, const Matrix& dctx) override;
  Matrix push_vjp(const Matrix& z, const Matrix& ctx, const Matrix& a) override;
  Matrix mean_draws() const override { return Matrix::Zero(d_, 1); }
  bool has_closed_form_moments() const override { return true; }
  GaussianMoments closed_form_moments(const Vector& ctx) override;  // mu and L for one context
  CovarianceForm form() const { return o_.covariance; }

 private:
  Index output_size() const;
  // The Cholesky factor of one column: L = diag(sd) + its strictly lower part (full form only).
  // The diagonal form keeps sd alone, so every per-column product and solve is O(d), not O(d^2).
  struct Factor {
    Vector sd;     // L's diagonal, d
    Matrix lower;  // L whole (d x d) in the full form; empty in the diagonal form
    Vector times(const Vector& z) const;            // L z
    Vector solve(const Vector& e) const;            // L^-1 e
    Vector transpose_solve(const Vector& r) const;  // L^-T r
    double log_det() const;                         // log det L = sum log sd
  };
  void unpack(const Vector& out, Vector& mu, Factor& l, Vector& s_raw) const;
  // dL z from a tangent of the network output; l and s_raw at the same column.
  Vector tangent_times(const Vector& dout, const Vector& s_raw, const Factor& l, const Vector& z) const;
  Index d_, c_;
  GaussianOptions o_;
  bool direct_ = false;
  std::unique_ptr<nn::Sequential> net_;
};


// Registration (head_registry.cpp): name "gaussian", keys gaussian.*; with encoder.type = local the
// head is direct (the encoder's field of mean and log-sd is its context).
HeadRegistration gaussian_head_registration();

}  // namespace varflow::amortized
