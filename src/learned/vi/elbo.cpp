#include "varflow/vi/elbo.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>

#include <Eigen/Cholesky>

#include "varflow/amortized/problems.h"
#include "varflow/core/enum_text.h"
#include "varflow/core/error.h"

namespace varflow::vi {

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kHalfLog2Pi = 0.91893853320467274178;
constexpr EnumNames<ElboEstimator, 3> kEstimatorNames{{{ElboEstimator::kReparameterised, "reparameterised"},
                                                        {ElboEstimator::kStickingTheLanding, "stl"},
                                                        {ElboEstimator::kForwardKl, "forward-kl"}}};
}  // namespace

std::string to_string(ElboEstimator e) { return std::string(to_text(kEstimatorNames, e)); }
ElboEstimator elbo_estimator_from_string(const std::string& name, const std::string& what) {
  return from_text(kEstimatorNames, what, name);
}

Vector log_density_batch(const LogDensity& target, const Matrix& x, Matrix* gradient) {
  check_size("log_density_batch", "x rows", x.rows(), target.dim());
  return target.log_density_batch(x, gradient);
}

Vector LogDensity::log_density_batch(const Matrix& x, Matrix* gradient) const {
  const LogDensity& target = *this;
  const Index n = x.cols();
  Vector out(n);
  if (gradient) gradient->resize(x.rows(), n);
#pragma omp parallel for schedule(dynamic)
  for (Index j = 0; j < n; ++j) {
    Vector g;
    double v = kNaN;
    try {
      v = target.log_density(x.col(j), gradient ? &g : nullptr);
    } catch (const NumericalError&) {
      v = kNaN;
    }
    out[j] = v;
    if (gradient) {
      if (std::isfinite(v) && g.size() == x.rows()) {
        gradient->col(j) = g;
      } else {
        gradient->col(j).setConstant(kNaN);
        out[j] = kNaN;
      }
    }
  }
  return out;
}

// ---- targets ---------------------------------------------------------------------------------------

GaussianLogDensity::GaussianLogDensity(Vector mean, const Matrix& covariance) : mean_(std::move(mean)) {
  const Index d = mean_.size();
  check_at_least("GaussianLogDensity", "dimension", d, 1);
  check_size("GaussianLogDensity", "covariance rows", covariance.rows(), d);
  check_size("GaussianLogDensity", "covariance columns", covariance.cols(), d);
  Eigen::LLT<Matrix> llt(covariance);
  if (llt.info() != Eigen::Success) throw InvalidArgument("GaussianLogDensity: covariance is not positive definite");
  precision_ = llt.solve(Matrix::Identity(d, d));
  const Matrix l = llt.matrixL();
  log_norm_ = -static_cast<double>(d) * kHalfLog2Pi - l.diagonal().array().log().sum();
}

std::string GaussianLogDensity::describe() const { return format_message("gaussian(", mean_.size(), ")"); }

double GaussianLogDensity::log_density(const Vector& x, Vector* gradient) const {
  const Vector r = x - mean_;
  const Vector pr = precision_ * r;
  if (gradient) *gradient = -pr;
  return log_norm_ - 0.5 * r.dot(pr);
}

TwoMoonsPosterior::TwoMoonsPosterior(double y, Index nodes) : y_(y), nodes_(nodes) {
  check_finite("TwoMoonsPosterior", "y", y);
  check_at_least("TwoMoonsPosterior", "nodes", nodes, 16);
}

std::string TwoMoonsPosterior::describe() const {
  return format_message("two-moons posterior at y = ", y_, " (prior by ", nodes_, "-node midpoint rule)");
}

double TwoMoonsPosterior::log_density(const Vector& x, Vector* gradient) const {
  using amortized::TwoMoons;
  const Eigen::Vector2d m = TwoMoons::raw_mean(), s = TwoMoons::raw_std();
  const double r0 = x[0] * s[0] + m[0], r1 = x[1] * s[1] + m[1];
  const double inv_var = 1.0 / (TwoMoons::kMoonNoise * TwoMoons::kMoonNoise);
  // log sum over nodes of exp(-|r - c|^2 / (2 sigma^2)), with its gradient in r (softmax weights).
  double lmax = -std::numeric_limits<double>::infinity();
  std::vector<double> e(static_cast<std::size_t>(2 * nodes_));
  std::vector<double> c0(e.size()), c1(e.size());
  for (Index moon = 0; moon < 2; ++moon) {
    for (Index k = 0; k < nodes_; ++k) {
      const double t = (static_cast<double>(k) + 0.5) * std::numbers::pi / static_cast<double>(nodes_);
      const auto i = static_cast<std::size_t>(moon * nodes_ + k);
      c0[i] = moon == 0 ? std::cos(t) : 1.0 - std::cos(t);
      c1[i] = moon == 0 ? std::sin(t) : 0.5 - std::sin(t);
      e[i] = -0.5 * inv_var * ((r0 - c0[i]) * (r0 - c0[i]) + (r1 - c1[i]) * (r1 - c1[i]));
      lmax = std::max(lmax, e[i]);
    }
  }
  double sum = 0.0, g0 = 0.0, g1 = 0.0;
  for (std::size_t i = 0; i < e.size(); ++i) {
    const double w = std::exp(e[i] - lmax);
    sum += w;
    g0 += w * (c0[i] - r0);
    g1 += w * (c1[i] - r1);
  }
  const double log_prior = lmax + std::log(sum);
  // log TwoMoons::likelihood(x1 + x2, y), written out so that it stays finite far from the line.
  const double res = x[0] + x[1] - y_;
  const double obs_inv_var = 1.0 / (TwoMoons::kObsNoise * TwoMoons::kObsNoise);
  if (gradient) {
    gradient->resize(2);
    (*gradient)[0] = g0 / sum * inv_var * s[0] - res * obs_inv_var;
    (*gradient)[1] = g1 / sum * inv_var * s[1] - res * obs_inv_var;
  }
  return log_prior - 0.5 * res * res * obs_inv_var;
}

std::string FourDVarLogDensity::describe() const {
  return format_message("-J of a 4D-Var window (", cost_.control_size(), " controls, ", cost_.observation_size(),
                        " observations)");
}

double FourDVarLogDensity::log_density(const Vector& x, Vector* gradient) const {
  const double j = cost_.evaluate(x, gradient);
  if (gradient) *gradient = -*gradient;
  return -j;
}

// ---- ELBO ------------------------------------------------------------------------------------------

double elbo_loss(Flow& flow, const LogDensity& target, const Matrix& z, ElboEstimator estimator, bool gradient) {
  check_size("elbo_loss", "target dimension", target.dim(), flow.dim());
  const Index n = z.cols();
  Matrix x, gp;
  Vector lq;
  flow.sample(z, x, lq);
  if (!x.allFinite() || !lq.allFinite()) return kNaN;
  // The forward-KL gradient needs log p~ only, not its gradient.
  const bool target_gradient = gradient && estimator != ElboEstimator::kForwardKl;
  const Vector lp = log_density_batch(target, x, target_gradient ? &gp : nullptr);
  if (!lp.allFinite()) return kNaN;
  const double loss = (lq - lp).mean();
  if (!gradient) return loss;
  const double inv = 1.0 / static_cast<double>(n);
  Matrix gz;
  if (estimator == ElboEstimator::kReparameterised) {
    flow.sample_backward(-inv * gp, Vector::Constant(n, inv), gz, true);
  } else if (estimator == ElboEstimator::kForwardKl) {
    // -sum_j w_j d log q(x_j)/dtheta at fixed x_j, w = softmax(log p~ - log q) (self-normalised).
    const Vector lw = lp - lq;
    Vector w = (lw.array() - lw.maxCoeff()).exp().matrix();
    w /= w.sum();
    Matrix gx;
    flow.log_prob(x);
    flow.log_prob_backward(-w, gx, true);
  } else {
    // Path derivative only: (d log q / dx - d log p~ / dx)^T dx/dtheta, the score of q at x taken with
    // the parameters held fixed (one density pass), then the sampling pass again for its caches.
    Matrix score, x2;
    flow.log_prob(x);
    flow.log_prob_backward(Vector::Ones(n), score, false);
    Vector lq2;
    flow.sample(z, x2, lq2);
    flow.sample_backward(inv * (score - gp), Vector::Zero(n), gz, true);
  }
  return loss;
}

nn::TrainingOptions ElboOptions::default_training() {
  nn::TrainingOptions t;
  t.epochs = 40;
  t.learning_rate = 5e-3;
  t.schedule = nn::LearningRateSchedule::kCosine;
  t.patience = 0;
  t.min_steps = 0;
  t.weight_decay = 0.0;
  t.clip_norm = 10.0;
  return t;
}

void ElboOptions::validate() const {
  check_at_least("elbo", "draws", draws, 2);
  check_at_least("elbo", "steps_per_epoch", steps_per_epoch, 1);
  check_at_least("elbo", "validation_draws", validation_draws, 2);
  check_at_least("elbo", "evaluation_draws", evaluation_draws, 2);
  training.validate();
}

namespace {

class ElboObjective final : public nn::TrainingObjective {
 public:
  ElboObjective(Flow& flow, const LogDensity& target, const ElboOptions& o, Index n_train, Matrix validation)
      : flow_(flow), target_(target), o_(o), n_train_(n_train), validation_(std::move(validation)) {}
  nn::ParameterSet& parameters() override { return flow_.parameters(); }
  double batch_loss(const std::vector<Index>& items, bool gradient, Rng& rng) override {
    const Index n = static_cast<Index>(items.size());
    Matrix z(flow_.dim(), n);
    if (items.front() >= n_train_) {
      for (Index j = 0; j < n; ++j) z.col(j) = validation_.col(items[static_cast<std::size_t>(j)] - n_train_);
    } else {
      for (Index j = 0; j < n; ++j) z.col(j) = rng.normal_vector(flow_.dim());
    }
    return elbo_loss(flow_, target_, z, o_.estimator, gradient);
  }

 private:
  Flow& flow_;
  const LogDensity& target_;
  const ElboOptions& o_;
  Index n_train_;
  Matrix validation_;
};

}  // namespace

Matrix sample_flow(Flow& flow, Index n, Rng& rng) {
  Matrix z(flow.dim(), n), x;
  for (Index j = 0; j < n; ++j) z.col(j) = rng.normal_vector(flow.dim());
  Vector lq;
  flow.sample(z, x, lq);
  return x;
}

ElboEvaluation evaluate_elbo(Flow& flow, const LogDensity& target, Index draws, Rng& rng) {
  check_at_least("evaluate_elbo", "draws", draws, 2);
  ElboEvaluation e;
  e.draws = draws;
  Matrix z(flow.dim(), draws), x;
  for (Index j = 0; j < draws; ++j) z.col(j) = rng.normal_vector(flow.dim());
  Vector lq;
  flow.sample(z, x, lq);
  const Vector lp = log_density_batch(target, x, nullptr);
  const Vector lw = lp - lq;
  if (!lw.allFinite()) {
    e.finite = false;
    e.elbo = e.elbo_standard_error = e.log_evidence = e.ess_fraction = kNaN;
    return e;
  }
  const double n = static_cast<double>(draws);
  e.elbo = lw.mean();
  e.elbo_standard_error = std::sqrt((lw.array() - e.elbo).square().sum() / (n - 1.0) / n);
  const double m = lw.maxCoeff();
  const Vector w = (lw.array() - m).exp().matrix();
  e.log_evidence = m + std::log(w.mean());
  e.ess_fraction = w.sum() * w.sum() / (n * w.squaredNorm());
  return e;
}

std::string ElboSummary::brief_report() const {
  return format_message(training.brief_report(), "; ELBO ", evaluation.elbo, " +- ", evaluation.elbo_standard_error,
                        ", IS log-evidence ", evaluation.log_evidence, ", IS effective sample fraction ",
                        evaluation.ess_fraction, " (", evaluation.draws, " draws)");
}

ElboSummary fit_elbo(Flow& flow, const LogDensity& target, const ElboOptions& options, Rng& rng,
                     const nn::ProgressCallback& progress) {
  options.validate();
  check_size("fit_elbo", "target dimension", target.dim(), flow.dim());
  Matrix validation(flow.dim(), options.validation_draws);
  for (Index j = 0; j < options.validation_draws; ++j) validation.col(j) = rng.normal_vector(flow.dim());
  const Index n_train = options.steps_per_epoch * options.draws;
  ElboObjective objective(flow, target, options, n_train, std::move(validation));
  nn::TrainingOptions t = options.training;
  t.batch_size = options.draws;
  ElboSummary s;
  s.training = nn::fit(objective, n_train, options.validation_draws, t, rng, progress);
  if (s.training.ok()) {
    s.evaluation = evaluate_elbo(flow, target, options.evaluation_draws, rng);
  } else {
    s.evaluation.finite = false;
  }
  return s;
}

// ---- Laplace ---------------------------------------------------------------------------------------

LaplaceApproximation laplace_approximation(const LogDensity& target, const Vector& start, Index max_iterations) {
  check_size("laplace_approximation", "start", start.size(), target.dim());
  const Index d = target.dim();
  const double h = 1e-5;
  auto hessian = [&](const Vector& x) {
    Matrix hm(d, d);
    Vector gp, gm;
    for (Index i = 0; i < d; ++i) {
      Vector xp = x, xm = x;
      xp[i] += h;
      xm[i] -= h;
      target.log_density(xp, &gp);
      target.log_density(xm, &gm);
      hm.col(i) = (gp - gm) / (2.0 * h);
    }
    return Matrix(0.5 * (hm + hm.transpose()));
  };
  LaplaceApproximation r;
  Vector x = start, g;
  double f = target.log_density(x, &g);
  for (r.iterations = 0; r.iterations < max_iterations; ++r.iterations) {
    if (g.norm() <= 1e-6 * (1.0 + std::abs(f))) {
      r.converged = true;
      break;
    }
    const Matrix neg_h = -hessian(x);
    Eigen::LLT<Matrix> llt(neg_h);
    // Newton where -H is positive definite, gradient ascent otherwise; backtrack until log p~ rises.
    Vector step = llt.info() == Eigen::Success ? Vector(llt.solve(g)) : Vector(g * (1e-2 / std::max(1.0, g.norm())));
    bool moved = false;
    for (int b = 0; b < 40; ++b, step *= 0.5) {
      Vector gn;
      const double fn = target.log_density(x + step, &gn);
      if (std::isfinite(fn) && fn >= f) {
        x += step;
        f = fn;
        g = gn;
        moved = true;
        break;
      }
    }
    if (!moved) break;
  }
  if (!r.converged) r.converged = g.norm() <= 1e-6 * (1.0 + std::abs(f));
  r.mode = x;
  const Matrix neg_h = -hessian(x);
  Eigen::LLT<Matrix> llt(neg_h);
  if (llt.info() != Eigen::Success) {
    r.converged = false;
    r.covariance = Matrix::Constant(d, d, kNaN);
  } else {
    r.covariance = llt.solve(Matrix::Identity(d, d));
  }
  return r;
}

}  // namespace varflow::vi
