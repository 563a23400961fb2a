#include <cassert>
#include <cmath>
#include <numbers>
#include <utility>
#include <vector>

#include "varflow/nn/parallel.h"
#include "varflow/amortized/gaussian_head.h"
#include "varflow/core/error.h"

namespace varflow::amortized {

using nn::parallel_worth_it;

namespace {
constexpr double kLogScaleClamp = 7.0;  // diagonal of L in [e^-7, e^7] (normalised units)
}

GaussianHead::GaussianHead(Index state_size, Index context_size, const GaussianOptions& options, bool direct)
    : d_(state_size), c_(context_size), o_(options), direct_(direct) {
  if (direct) {
    if (o_.covariance != CovarianceForm::kDiagonal || o_.linear_skip || c_ != output_size()) {
      throw InvalidArgument(format_message("GaussianHead: a direct head needs the diagonal form, no linear skip and a context of 2 x ",
                                           d_, " (got ", c_, ")"));
    }
    net_ = std::make_unique<nn::Sequential>();
    net_->emplace<nn::ActivationLayer>(nn::Activation::kIdentity, c_);
    return;
  }
  net_ = nn::make_mlp(c_, o_.width, o_.depth, output_size(), o_.activation, nn::Init::kSmall);
  if (o_.linear_skip) {
    auto wrapped = std::make_unique<nn::Sequential>();
    wrapped->emplace<nn::LinearSkip>(std::move(net_));
    net_ = std::move(wrapped);
  }
}

Index GaussianHead::output_size() const {
  return o_.covariance == CovarianceForm::kFull ? 2 * d_ + d_ * (d_ - 1) / 2 : 2 * d_;
}

std::string GaussianHead::describe() const {
  if (direct_) return format_message("gaussian head (diagonal, direct): mean and log-sd are the context (", c_, ")");
  return format_message("gaussian head (", to_string(o_.covariance), " Cholesky factor): ", net_->describe());
}

void GaussianHead::bind(nn::ParameterBinder& binder, const std::string& prefix) { net_->bind(binder, prefix + ".net"); }

void GaussianHead::initialize(Rng& rng) { net_->initialize(rng); }

double GaussianHead::Factor::log_det() const {
  double s = 0.0;  // in index order, as every earlier version summed it (bit-identical losses)
  for (Index i = 0; i < sd.size(); ++i) s += std::log(sd[i]);
  return s;
}
Vector GaussianHead::Factor::times(const Vector& z) const {
  return lower.size() == 0 ? Vector(sd.cwiseProduct(z)) : Vector(lower.triangularView<Eigen::Lower>() * z);
}
Vector GaussianHead::Factor::solve(const Vector& e) const {
  return lower.size() == 0 ? Vector(e.cwiseQuotient(sd)) : Vector(lower.triangularView<Eigen::Lower>().solve(e));
}
Vector GaussianHead::Factor::transpose_solve(const Vector& r) const {
  return lower.size() == 0 ? Vector(r.cwiseQuotient(sd))
                           : Vector(lower.transpose().triangularView<Eigen::Upper>().solve(r));
}

void GaussianHead::unpack(const Vector& out, Vector& mu, Factor& l, Vector& s_raw) const {
  mu = out.head(d_);
  s_raw = out.segment(d_, d_);
  l.sd.resize(d_);
  for (Index i = 0; i < d_; ++i) l.sd[i] = std::exp(kLogScaleClamp * std::tanh(s_raw[i] / kLogScaleClamp));
  if (o_.covariance == CovarianceForm::kFull) {
    l.lower = Matrix::Zero(d_, d_);
    l.lower.diagonal() = l.sd;
    Index p = 2 * d_;
    for (Index i = 1; i < d_; ++i) {
      for (Index k = 0; k < i; ++k) l.lower(i, k) = out[p++];
    }
  } else {
    l.lower.resize(0, 0);
  }
}

double GaussianHead::loss(const Matrix& x, const Matrix& ctx, Rng& rng, bool gradient, Matrix* dctx) {
  return loss_with_mean_penalty(x, ctx, rng, gradient, dctx, nullptr, 0);
}

double GaussianHead::loss_with_mean_penalty(const Matrix& x, const Matrix& ctx, Rng& rng, bool gradient, Matrix* dctx,
                                            const MeanPenalty& penalty, Index draws) {
  return loss_with_moment_penalties(x, ctx, rng, gradient, dctx, penalty, nullptr, draws);
}

double GaussianHead::loss_with_moment_penalties(const Matrix& x, const Matrix& ctx, Rng&, bool gradient, Matrix* dctx,
                                                const MeanPenalty& penalty, const VariancePenalty& variance_penalty,
                                                Index) {
  const Index b = x.cols();
  assert(ctx.cols() >= b);
  Matrix out;
  net_->forward(ctx, out);
  Vector losses(b);
  Matrix dout = Matrix::Zero(out.rows(), gradient ? ctx.cols() : 0);
  const double log2pi = std::log(2.0 * std::numbers::pi);
  // With a variance penalty: each column's log marginal variances, and its factor and raw log-scales
  // kept for the penalty's gradient (v_i = sum_k L_ik^2, the diagonal form sd_i^2).
  Matrix log_v;
  std::vector<Factor> factors;
  std::vector<Vector> raw;
  if (variance_penalty) {
    log_v.resize(d_, b);
    factors.resize(static_cast<std::size_t>(b));
    raw.resize(static_cast<std::size_t>(b));
  }
#pragma omp parallel for schedule(static) if (parallel_worth_it(b * d_ * (o_.covariance == CovarianceForm::kFull ? d_ : 1) * 4))
  for (Index j = 0; j < b; ++j) {
    Vector mu, s_raw;
    Factor l;
    unpack(out.col(j), mu, l, s_raw);
    if (variance_penalty) {
      for (Index i = 0; i < d_; ++i) {
        log_v(i, j) = std::log(l.lower.size() == 0 ? l.sd[i] * l.sd[i] : l.lower.row(i).head(i + 1).squaredNorm());
      }
    }
    const Vector e = x.col(j) - mu;
    const Vector r = l.solve(e);
    const double logdet = l.log_det();
    losses[j] = 0.5 * r.squaredNorm() + logdet + 0.5 * static_cast<double>(d_) * log2pi;
    if (gradient) {
      // r = L^-1 e, u = L^-T r: d/dmu = -u, d/dL = -u r^T (lower part) + diag(1/L_ii).
      const Vector u = l.transpose_solve(r);
      const double inv_b = 1.0 / static_cast<double>(b);
      dout.col(j).head(d_) = -u * inv_b;
      for (Index i = 0; i < d_; ++i) {
        const double th = std::tanh(s_raw[i] / kLogScaleClamp);
        const double ds = (-u[i] * r[i]) * l.sd[i] + 1.0;  // d/ds of the loss, L_ii = e^s
        dout(d_ + i, j) = ds * (1.0 - th * th) * inv_b;
      }
      if (o_.covariance == CovarianceForm::kFull) {
        Index p = 2 * d_;
        for (Index i = 1; i < d_; ++i) {
          for (Index k = 0; k < i; ++k) dout(p++, j) = -u[i] * r[k] * inv_b;
        }
      }
    }
    if (variance_penalty) {
      factors[static_cast<std::size_t>(j)] = std::move(l);
      raw[static_cast<std::size_t>(j)] = std::move(s_raw);
    }
  }
  double total = losses.mean();
  if (penalty) {
    Matrix g;
    total += penalty(out.topRows(d_), gradient ? &g : nullptr);
    if (gradient) dout.topRows(d_) += g;
  }
  if (variance_penalty) {
    // d log v_i / d L_ik = 2 L_ik / v_i.
    Matrix g;
    total += variance_penalty(log_v, gradient ? &g : nullptr);
    if (gradient) {
      for (Index j = 0; j < b; ++j) {
        const Factor& l = factors[static_cast<std::size_t>(j)];
        const Vector& s_raw = raw[static_cast<std::size_t>(j)];
        Index p = 2 * d_;
        for (Index i = 0; i < d_; ++i) {
          const double scale = 2.0 * g(i, j) / std::exp(log_v(i, j));  // dL/dv_i times 2
          const double th = std::tanh(s_raw[i] / kLogScaleClamp);
          dout(d_ + i, j) += scale * l.sd[i] * l.sd[i] * (1.0 - th * th);  // L_ii = e^s, ds/ds_raw = 1 - th^2
          if (l.lower.size() == 0) continue;
          for (Index k = 0; k < i; ++k) dout(p++, j) += scale * l.lower(i, k);
        }
      }
    }
  }
  if (gradient) {
    Matrix gin;
    net_->backward(dout, gin, true);
    if (dctx) *dctx = std::move(gin);
  }
  return total;
}

Vector GaussianHead::log_prob(const Matrix& x, const Matrix& ctx) {
  Matrix out;
  net_->forward(ctx, out);
  const Index b = x.cols();
  Vector lp(b);
  const double log2pi = std::log(2.0 * std::numbers::pi);
  for (Index j = 0; j < b; ++j) {
    Vector mu, s_raw;
    Factor l;
    unpack(out.col(j), mu, l, s_raw);
    const Vector r = l.solve(Vector(x.col(j) - mu));
    const double logdet = l.log_det();
    lp[j] = -0.5 * r.squaredNorm() - logdet - 0.5 * static_cast<double>(d_) * log2pi;
  }
  return lp;
}

Matrix GaussianHead::sample(const Matrix& ctx, Rng& rng) {
  Matrix z(d_, ctx.cols());
  for (Index j = 0; j < ctx.cols(); ++j) z.col(j) = rng.normal_vector(d_);
  return push(z, ctx);
}

GaussianMoments GaussianHead::closed_form_moments(const Vector& ctx) {
  Matrix out;
  net_->forward(ctx, out);
  GaussianMoments m;
  Vector s_raw;
  Factor l;
  unpack(out.col(0), m.mean, l, s_raw);
  m.diagonal = o_.covariance == CovarianceForm::kDiagonal;
  m.cholesky = m.diagonal ? Matrix(l.sd.asDiagonal()) : l.lower;
  return m;
}

Vector GaussianHead::tangent_times(const Vector& dout, const Vector& s_raw, const Factor& l, const Vector& z) const {
  Vector dlz(d_);  // the diagonal of dL: dL_ii = L_ii (1 - tanh^2) ds_i
  for (Index i = 0; i < d_; ++i) {
    const double th = std::tanh(s_raw[i] / kLogScaleClamp);
    dlz[i] = l.sd[i] * (1.0 - th * th) * dout[d_ + i] * z[i];
  }
  if (o_.covariance == CovarianceForm::kFull) {
    Index p = 2 * d_;
    for (Index i = 1; i < d_; ++i) {
      for (Index k = 0; k < i; ++k) dlz[i] += dout[p++] * z[k];
    }
  }
  return dlz;
}

Matrix GaussianHead::push(const Matrix& z, const Matrix& ctx) {
  Matrix out;
  net_->forward(ctx, out);
  Matrix x(d_, z.cols());
  for (Index j = 0; j < z.cols(); ++j) {
    Vector mu, s_raw;
    Factor l;
    unpack(out.col(j), mu, l, s_raw);
    x.col(j) = mu + l.times(z.col(j));
  }
  return x;
}

Matrix GaussianHead::push_jvp(const Matrix& z, const Matrix& ctx, const Matrix& dctx) {
  Matrix out, dout;
  net_->forward(ctx, out);
  net_->tangent(dctx, dout);
  Matrix dx(d_, z.cols());
  for (Index j = 0; j < z.cols(); ++j) {
    Vector mu, s_raw;
    Factor l;
    unpack(out.col(j), mu, l, s_raw);
    dx.col(j) = dout.col(j).head(d_) + tangent_times(dout.col(j), s_raw, l, z.col(j));
  }
  return dx;
}

Matrix GaussianHead::push_vjp(const Matrix& z, const Matrix& ctx, const Matrix& a) {
  Matrix out, gin;
  net_->forward(ctx, out);
  Matrix gout = Matrix::Zero(out.rows(), z.cols());
  for (Index j = 0; j < z.cols(); ++j) {
    Vector mu, s_raw;
    Factor l;
    unpack(out.col(j), mu, l, s_raw);
    // x = mu + L z: dx/dmu = I, dx_i/dL_ik = z_k.
    gout.col(j).head(d_) = a.col(j);
    for (Index i = 0; i < d_; ++i) {
      const double th = std::tanh(s_raw[i] / kLogScaleClamp);
      gout(d_ + i, j) = a(i, j) * z(i, j) * l.sd[i] * (1.0 - th * th);
    }
    if (o_.covariance == CovarianceForm::kFull) {
      Index p = 2 * d_;
      for (Index i = 1; i < d_; ++i) {
        for (Index k = 0; k < i; ++k) gout(p++, j) = a(i, j) * z(k, j);
      }
    }
  }
  net_->backward(gout, gin, false);
  return gin;
}

// ---- registration ----------------------------------------------------------------------------------

namespace {
void validate_gaussian(const AmortizedConfig& c) {
  const char* w = "AmortizedConfig";
  check_at_least(w, "gaussian.width", c.gaussian.width, 1);
  check_at_least(w, "gaussian.depth", c.gaussian.depth, 0);
}

void gaussian_defaults(const std::string& problem, AmortizedSetup& s) {
  if (problem == "linear-gaussian") {
    // Exact labels cost nothing here: every pair carries the posterior mean and two J probes.
    s.labels.pairs = s.pairs;
    s.labels.probes = 2;
  }
}
}  // namespace

HeadRegistration gaussian_head_registration() {
  return {"gaussian",
          [](const AmortizedConfig& config, Index state_size) -> std::unique_ptr<Head> {
            if (config.encoder.type == EncoderType::kLocal) {  // the encoder's field is the context
              return std::make_unique<GaussianHead>(state_size, 2 * state_size, config.gaussian, true);
            }
            return std::make_unique<GaussianHead>(state_size, config.encoder.context, config.gaussian);
          },
          validate_gaussian, gaussian_defaults, {}};
}

}  // namespace varflow::amortized
