#include <cmath>
#include <numbers>

#include "varflow/amortized/score_head.h"
#include "varflow/core/error.h"

namespace varflow::amortized {

ScoreHead::ScoreHead(Index state_size, Index context_size, const ScoreOptions& options, Index mean_samples,
                     std::uint64_t mean_seed)
    : d_(state_size), c_(context_size), o_(options), mean_samples_(mean_samples), mean_seed_(mean_seed) {
  net_ = nn::make_residual_mlp(input_size(), o_.width, o_.blocks, d_, o_.activation, nn::Init::kSmall);
}

std::string ScoreHead::describe() const {
  return format_message("score head (", to_string(o_.sde), " SDE, ", to_string(o_.sampler), " sampler, ", o_.steps,
                        " steps): epsilon network ", net_->describe());
}

void ScoreHead::bind(nn::ParameterBinder& binder, const std::string& prefix) { net_->bind(binder, prefix + ".net"); }
void ScoreHead::initialize(Rng& rng) { net_->initialize(rng); }

void ScoreHead::set_sampler(Sampler sampler, Index steps) {
  check_at_least("ScoreHead::set_sampler", "steps", steps, 1);
  o_.sampler = sampler;
  o_.steps = steps;
}

void ScoreHead::record_options(AmortizedConfig& config) const {
  config.score.sampler = o_.sampler;
  config.score.steps = o_.steps;
}

namespace {
double vp_integral(const ScoreOptions& o, double t) { return o.beta_min * t + 0.5 * t * t * (o.beta_max - o.beta_min); }
}  // namespace

double ScoreHead::alpha(double t) const {
  return o_.sde == SdeType::kVp ? std::exp(-0.5 * vp_integral(o_, t)) : 1.0;
}

double ScoreHead::sigma(double t) const {
  if (o_.sde == SdeType::kVp) return std::sqrt(-std::expm1(-vp_integral(o_, t)));
  return o_.sigma_min * std::pow(o_.sigma_max / o_.sigma_min, t);
}

double ScoreHead::input_scale(double t) const {
  if (o_.sde == SdeType::kVp) return 1.0;
  const double s = sigma(t);
  return 1.0 / std::sqrt(1.0 + s * s);
}

void ScoreHead::time_features(double t, double* out) const {
  out[0] = t - 0.5;
  double f = std::numbers::pi;
  for (Index k = 0; k < o_.time_features; ++k, f *= 2.0) {
    out[1 + 2 * k] = std::sin(f * t);
    out[2 + 2 * k] = std::cos(f * t);
  }
}

void ScoreHead::fill_input(const Matrix& x, double t, const Matrix& ctx, Matrix& in) const {
  const Index b = x.cols();
  in.resize(input_size(), b);
  in.topRows(d_) = input_scale(t) * x;
  Vector tf(time_size());
  time_features(t, tf.data());
  in.middleRows(d_, time_size()) = tf.replicate(1, b);
  in.bottomRows(c_) = ctx;
}

double ScoreHead::loss(const Matrix& x, const Matrix& ctx, Rng& rng, bool gradient, Matrix* dctx) {
  const Index b = x.cols();
  Matrix in(input_size(), b), eps(d_, b), out;
  Vector tf(time_size());
  for (Index j = 0; j < b; ++j) {
    const double t = o_.t_min + (1.0 - o_.t_min) * rng.uniform();
    for (Index i = 0; i < d_; ++i) eps(i, j) = rng.normal();
    const double a = alpha(t), s = sigma(t), cin = input_scale(t);
    in.col(j).head(d_) = cin * (a * x.col(j) + s * eps.col(j));
    time_features(t, tf.data());
    in.col(j).segment(d_, time_size()) = tf;
  }
  in.bottomRows(c_) = ctx;
  net_->forward(in, out);
  const Matrix r = out - eps;
  if (gradient) {
    Matrix gin;
    net_->backward(2.0 * r / static_cast<double>(b), gin, true);
    if (dctx) *dctx = gin.bottomRows(c_);
  }
  return r.squaredNorm() / static_cast<double>(b);
}

void ScoreHead::step_coefficients(double t, double h, bool sde, double& p, double& q, double& r) const {
  const double s = sigma(t);
  if (o_.sde == SdeType::kVp) {
    const double beta = o_.beta_min + t * (o_.beta_max - o_.beta_min);
    p = 1.0 + 0.5 * h * beta;
    q = (sde ? -h * beta : -0.5 * h * beta) / s;
    r = std::sqrt(beta * h);
  } else {
    const double log_ratio = std::log(o_.sigma_max / o_.sigma_min);
    p = 1.0;
    q = (sde ? -2.0 : -1.0) * h * s * log_ratio;
    r = s * std::sqrt(2.0 * log_ratio * h);
  }
}

Matrix ScoreHead::base_draws(Index n, Rng& rng) const {
  const double scale = o_.sde == SdeType::kVp ? 1.0 : std::sqrt(1.0 + o_.sigma_max * o_.sigma_max);
  Matrix z(d_, n);
  for (Index i = 0; i < z.size(); ++i) z.data()[i] = scale * rng.normal();
  return z;
}

Matrix ScoreHead::sample(const Matrix& ctx, Rng& rng) { return sample(ctx, rng, o_.sampler, o_.steps); }

Matrix ScoreHead::sample(const Matrix& ctx, Rng& rng, Sampler sampler, Index steps) {
  check_at_least("ScoreHead::sample", "steps", steps, 1);
  const Index n = ctx.cols();
  Matrix x = base_draws(n, rng), in, eps;
  const double h = (1.0 - o_.t_min) / static_cast<double>(steps);
  const bool sde = sampler != Sampler::kOde;
  const Index corrector_steps = sampler == Sampler::kPc ? o_.corrector_steps : 0;
  Matrix z;
  for (Index k = 0; k < steps; ++k) {
    const double t = 1.0 - static_cast<double>(k) * h;
    fill_input(x, t, ctx, in);
    net_->forward(in, eps);
    double p, q, r;
    step_coefficients(t, h, sde, p, q, r);
    x = p * x + q * eps;
    if (sde && k + 1 < steps) {
      for (Index i = 0; i < x.size(); ++i) x.data()[i] += r * rng.normal();
    }
    // Langevin corrector at the new time t - h (Song et al. 2021, Algorithms 4 and 5): with the
    // score s = -eps / sigma, x <- x + e s + sqrt(2 e) z, e = 2 a (snr |z| / |s|)^2, the norms
    // averaged over the draws; a = exp(-beta h) (VP; Song's 1 - beta_i, kept positive for large
    // steps) or 1 (VE). e is capped at sigma(t - h)^2, so a near-zero score (an untrained network)
    // cannot throw the draws beyond the noise level. Not after the last (noise-free) step.
    const double tc = t - h;
    for (Index c = 0; c < corrector_steps && k + 1 < steps; ++c) {
      fill_input(x, tc, ctx, in);
      net_->forward(in, eps);
      z.resize(x.rows(), x.cols());
      for (Index i = 0; i < z.size(); ++i) z.data()[i] = rng.normal();
      const double sc = sigma(tc);
      const double s_norm = eps.colwise().norm().mean() / sc;
      const double z_norm = z.colwise().norm().mean();
      const double a = o_.sde == SdeType::kVp ? std::exp(-(o_.beta_min + tc * (o_.beta_max - o_.beta_min)) * h) : 1.0;
      const double ratio = o_.snr * z_norm / std::max(s_norm, 1e-300);
      const double e = std::min(2.0 * a * ratio * ratio, sc * sc);
      x += (-e / sc) * eps + std::sqrt(2.0 * e) * z;
    }
  }
  return x;
}

Matrix ScoreHead::mean_draws() const {
  Rng rng(mean_seed_);
  return base_draws(mean_samples_, rng);
}

Matrix ScoreHead::push(const Matrix& z, const Matrix& ctx) {
  Matrix x = z, in, eps;
  const double h = (1.0 - o_.t_min) / static_cast<double>(o_.steps);
  for (Index k = 0; k < o_.steps; ++k) {
    const double t = 1.0 - static_cast<double>(k) * h;
    fill_input(x, t, ctx, in);
    net_->forward(in, eps);
    double p, q, r;
    step_coefficients(t, h, false, p, q, r);
    x = p * x + q * eps;
  }
  return x;
}

Matrix ScoreHead::push_jvp(const Matrix& z, const Matrix& ctx, const Matrix& dctx) {
  const Index m = z.cols();
  Matrix x = z, dx = Matrix::Zero(d_, m), in, din(input_size(), m), eps, deps;
  const double h = (1.0 - o_.t_min) / static_cast<double>(o_.steps);
  din.middleRows(d_, time_size()).setZero();
  din.bottomRows(c_) = dctx;
  for (Index k = 0; k < o_.steps; ++k) {
    const double t = 1.0 - static_cast<double>(k) * h;
    fill_input(x, t, ctx, in);
    net_->forward(in, eps);
    din.topRows(d_) = input_scale(t) * dx;
    net_->tangent(din, deps);
    double p, q, r;
    step_coefficients(t, h, false, p, q, r);
    x = p * x + q * eps;
    dx = p * dx + q * deps;
  }
  return dx;
}

Matrix ScoreHead::push_vjp(const Matrix& z, const Matrix& ctx, const Matrix& a) {
  const double h = (1.0 - o_.t_min) / static_cast<double>(o_.steps);
  std::vector<Matrix> xs(static_cast<std::size_t>(o_.steps));
  Matrix x = z, in, eps, gin;
  for (Index k = 0; k < o_.steps; ++k) {
    const double t = 1.0 - static_cast<double>(k) * h;
    xs[static_cast<std::size_t>(k)] = x;
    fill_input(x, t, ctx, in);
    net_->forward(in, eps);
    double p, q, r;
    step_coefficients(t, h, false, p, q, r);
    x = p * x + q * eps;
  }
  Matrix g = a;
  Matrix gctx = Matrix::Zero(c_, z.cols());
  for (Index k = o_.steps; k-- > 0;) {
    const double t = 1.0 - static_cast<double>(k) * h;
    fill_input(xs[static_cast<std::size_t>(k)], t, ctx, in);
    net_->forward(in, eps);  // restore the caches of step k
    double p, q, r;
    step_coefficients(t, h, false, p, q, r);
    net_->backward(q * g, gin, false);
    gctx += gin.bottomRows(c_);
    g = p * g + input_scale(t) * gin.topRows(d_);
  }
  return gctx;
}

// ---- registration ----------------------------------------------------------------------------------

namespace {
void validate_score(const AmortizedConfig& c) {
  const char* w = "AmortizedConfig";
  const ScoreOptions& score = c.score;
  check_positive(w, "score.beta_min", score.beta_min);
  if (!(score.beta_max > score.beta_min)) {
    throw InvalidArgument(format_message(w, ": score.beta_max = ", score.beta_max, " must exceed score.beta_min = ", score.beta_min));
  }
  check_positive(w, "score.sigma_min", score.sigma_min);
  if (!(score.sigma_max > score.sigma_min)) {
    throw InvalidArgument(format_message(w, ": score.sigma_max = ", score.sigma_max, " must exceed score.sigma_min = ", score.sigma_min));
  }
  if (!(score.t_min > 0.0 && score.t_min < 0.5)) {
    throw InvalidArgument(format_message(w, ": score.t_min = ", score.t_min, " must be in (0, 0.5)"));
  }
  check_at_least(w, "score.width", score.width, 1);
  check_at_least(w, "score.blocks", score.blocks, 0);
  check_at_least(w, "score.time_features", score.time_features, 0);
  check_at_least(w, "score.steps", score.steps, 1);
  check_at_least(w, "score.corrector_steps", score.corrector_steps, 0);
  check_positive(w, "score.snr", score.snr);
}

// The mean integrates the probability-flow ODE once per draw: fewer draws than the other heads.
void score_defaults(const std::string& problem, AmortizedSetup& s) {
  if (problem == "two-moons" || problem == "linear-gaussian") s.network.mean_samples = 256;
}
}  // namespace

HeadRegistration score_head_registration() {
  return {"score",
          [](const AmortizedConfig& config, Index state_size) -> std::unique_ptr<Head> {
            return std::make_unique<ScoreHead>(state_size, config.encoder.context, config.score, config.mean_samples,
                                               config.mean_seed);
          },
          validate_score, score_defaults, {}};
}

}  // namespace varflow::amortized
