#include "varflow/amortized/head_check.h"

#include <Eigen/LU>
#include <algorithm>
#include <numbers>

#include "varflow/core/error.h"

namespace varflow::amortized {

namespace {

using nn::finite_difference_gradient;
using nn::relative_error;

Vector flat(const Matrix& m) { return Eigen::Map<const Vector>(m.data(), m.size()); }

// Gradient check of a loss(parameters, context) whose analytic gradients come from one call of
// `evaluate` with gradient = true (it adds the parameter gradient to params and writes dL/dctx).
HeadGradientResult check_gradient(nn::ParameterSet& params, const Matrix& ctx,
                                  const std::function<double(const Matrix& c, bool gradient, Matrix* dctx)>& evaluate,
                                  const HeadCheckTolerances& tol) {
  HeadGradientResult r;
  const Vector theta = params.values();
  params.zero_gradients();
  Matrix dctx;
  evaluate(ctx, true, &dctx);
  const Vector g = params.gradients();
  const Vector g_fd = finite_difference_gradient(
      [&](const Vector& t) {
        params.values() = t;
        return evaluate(ctx, false, nullptr);
      },
      theta, tol.gradient.step);
  params.values() = theta;
  const Vector gc_fd = finite_difference_gradient(
      [&](const Vector& c) { return evaluate(Eigen::Map<const Matrix>(c.data(), ctx.rows(), ctx.cols()), false, nullptr); },
      flat(ctx), tol.gradient.step);
  r.parameter_error = params.size() > 0 ? relative_error(g, g_fd, tol.gradient.floor) : 0.0;
  r.context_error = dctx.size() == ctx.size() ? relative_error(flat(dctx), gc_fd, tol.gradient.floor)
                                              : std::numeric_limits<double>::infinity();
  r.passed = r.parameter_error <= tol.gradient.relative && r.context_error <= tol.gradient.relative;
  return r;
}

double log_normal(const Vector& z) {
  return -0.5 * z.squaredNorm() - 0.5 * static_cast<double>(z.size()) * std::log(2.0 * std::numbers::pi);
}

std::string shape(const Matrix& m) { return format_message(m.rows(), " x ", m.cols()); }

}  // namespace

std::string HeadGradientResult::report() const {
  return format_message(passed ? "passed" : "FAILED", ": relative error parameters ", parameter_error, ", context ",
                        context_error);
}

std::string MeanJacobianResult::report() const {
  return format_message(passed ? "passed" : "FAILED", ": relative error jvp ", jvp_error, ", vjp ", vjp_error,
                        "; |dm/dc| = ", jacobian_norm);
}

std::string HeadDensityResult::report() const {
  return format_message(passed ? "passed" : "FAILED", ": |log q + loss| ", loss_gap, ", closed form ", closed_form_gap,
                        ", sampling map ", sampling_map_gap, ", change of variables ", change_of_variables_gap,
                        ", normalisation ", normalisation_gap);
}

HeadGradientResult check_loss_gradient(Head& head, nn::ParameterSet& params, const Matrix& x, const Matrix& ctx,
                                       const Rng& noise, const HeadCheckTolerances& tol) {
  return check_gradient(
      params, ctx,
      [&](const Matrix& c, bool gradient, Matrix* dctx) {
        Rng r = noise;
        return head.loss(x, c, r, gradient, dctx);
      },
      tol);
}

HeadGradientResult check_mean_penalty_gradient(Head& head, nn::ParameterSet& params, const Matrix& x,
                                               const Matrix& ctx, const Head::MeanPenalty& penalty, Index draws,
                                               const Rng& noise, const HeadCheckTolerances& tol) {
  return check_gradient(
      params, ctx,
      [&](const Matrix& c, bool gradient, Matrix* dctx) {
        Rng r = noise;
        return head.loss_with_mean_penalty(x, c, r, gradient, dctx, penalty, draws);
      },
      tol);
}

HeadGradientResult check_moment_penalty_gradient(Head& head, nn::ParameterSet& params, const Matrix& x,
                                                 const Matrix& ctx, const Head::MeanPenalty& mean_penalty,
                                                 const Head::VariancePenalty& variance_penalty, Index draws,
                                                 const Rng& noise, const HeadCheckTolerances& tol) {
  return check_gradient(
      params, ctx,
      [&](const Matrix& c, bool gradient, Matrix* dctx) {
        Rng r = noise;
        return head.loss_with_moment_penalties(x, c, r, gradient, dctx, mean_penalty, variance_penalty, draws);
      },
      tol);
}

MeanJacobianResult check_mean_jacobian(Head& head, const Vector& ctx, const HeadCheckTolerances& tol) {
  const Index d = head.state_size(), cs = ctx.size();
  const double h = tol.gradient.step;
  Matrix j_fd(d, cs), j_fwd(d, cs), j_rev(d, cs);
  for (Index k = 0; k < cs; ++k) {
    Vector cp = ctx, cm = ctx;
    cp[k] += h;
    cm[k] -= h;
    j_fd.col(k) = (head.mean(cp) - head.mean(cm)) / (2.0 * h);
  }
  for (Index k = 0; k < cs; ++k) j_fwd.col(k) = head.mean_jvp(ctx, Vector::Unit(cs, k));
  for (Index i = 0; i < d; ++i) j_rev.row(i) = head.mean_vjp(ctx, Vector::Unit(d, i)).transpose();
  MeanJacobianResult r;
  r.jvp_error = relative_error(flat(j_fwd), flat(j_fd), tol.gradient.floor);
  r.vjp_error = relative_error(flat(j_rev), flat(j_fd), tol.gradient.floor);
  r.jacobian_norm = j_fd.norm();
  r.passed = r.jvp_error <= tol.gradient.relative && r.vjp_error <= tol.gradient.relative &&
             r.jacobian_norm > tol.sensitivity;
  return r;
}

HeadDensityResult check_log_density(Head& head, const Matrix& x, const Matrix& ctx, Rng& rng,
                                    const HeadDensityOptions& options, const HeadCheckTolerances& tol) {
  HeadDensityResult r;
  r.passed = true;
  if (!head.has_log_prob()) return r;
  const Index d = head.state_size();
  const Vector lp = head.log_prob(x, ctx);
  if (options.loss_is_negative_log_likelihood) {
    Rng noise(1);
    r.loss_gap = std::abs(lp.mean() + head.loss(x, ctx, noise, false, nullptr));
    r.passed = r.passed && r.loss_gap <= tol.log_density;
  }
  if (head.has_closed_form_moments()) {
    r.closed_form_gap = 0.0;
    r.sampling_map_gap = 0.0;
    for (Index j = 0; j < x.cols(); ++j) {
      const GaussianMoments m = head.closed_form_moments(ctx.col(j));
      const Matrix& l = m.cholesky;
      const Vector z = l.triangularView<Eigen::Lower>().solve(Vector(x.col(j) - m.mean));
      const double log_det = l.diagonal().array().abs().log().sum();
      r.closed_form_gap = std::max(r.closed_form_gap, std::abs(lp[j] - (log_normal(z) - log_det)));
      const Vector base = rng.normal_vector(d);
      const Vector pushed = head.push(base, ctx.col(j));
      r.sampling_map_gap = std::max(r.sampling_map_gap, (pushed - m.mean - l * base).cwiseAbs().maxCoeff());
    }
    r.passed = r.passed && r.closed_form_gap <= tol.log_density && r.sampling_map_gap <= tol.log_density;
  }
  if (options.sampling_map_is_bijective) {
    // log q(x) = log N(z) - log |det dx/dz| for x = G(z; c), the Jacobian by central differences:
    // ties the sampling direction to the density direction.
    constexpr double kStep = 1e-6;
    r.change_of_variables_gap = 0.0;
    for (Index j = 0; j < std::min<Index>(3, ctx.cols()); ++j) {
      const Vector z = 1.5 * rng.normal_vector(d);
      const Matrix c = ctx.col(j);
      const Vector xz = head.push(z, c);
      Matrix jac(d, d);
      for (Index k = 0; k < d; ++k) {
        Vector zp = z, zm = z;
        zp[k] += kStep;
        zm[k] -= kStep;
        jac.col(k) = (head.push(zp, c) - head.push(zm, c)) / (2.0 * kStep);
      }
      const double expected = log_normal(z) - std::log(std::abs(jac.determinant()));
      r.change_of_variables_gap = std::max(r.change_of_variables_gap, std::abs(head.log_prob(xz, c)[0] - expected));
    }
    r.passed = r.passed && r.change_of_variables_gap <= tol.change_of_variables;
  }
  if (d == 1) {
    const Index n = 40001;
    Matrix grid(1, n);
    for (Index i = 0; i < n; ++i) grid(0, i) = -20.0 + 40.0 * static_cast<double>(i) / static_cast<double>(n - 1);
    const Vector q = head.log_prob(grid, ctx.col(0).replicate(1, n)).array().exp();
    r.normalisation_gap = std::abs(q.sum() * 40.0 / static_cast<double>(n - 1) - 1.0);
    r.passed = r.passed && r.normalisation_gap <= tol.normalisation;
  }
  return r;
}

std::string check_head_shapes(Head& head, const Matrix& ctx, Rng& rng) {
  const Index d = head.state_size(), c = head.context_size(), b = ctx.cols();
  std::string problems;
  auto expect = [&](const char* what, const Matrix& m, Index rows, Index cols) {
    if (m.rows() != rows || m.cols() != cols) {
      problems += format_message(what, " is ", shape(m), ", expected ", rows, " x ", cols, "; ");
    }
  };
  if (ctx.rows() != c) return format_message("contexts are ", shape(ctx), ", the head's context size is ", c);
  const Matrix s = head.sample(ctx, rng);
  expect("sample(ctx)", s, d, b);
  if (!s.allFinite()) problems += "sample(ctx) has a non-finite value; ";
  Matrix z(d, b);
  for (Index j = 0; j < b; ++j) z.col(j) = rng.normal_vector(d);
  expect("push(z, ctx)", head.push(z, ctx), d, b);
  Matrix dctx(c, b), a(d, b);
  for (Index j = 0; j < b; ++j) {
    dctx.col(j) = rng.normal_vector(c);
    a.col(j) = rng.normal_vector(d);
  }
  expect("push_jvp(z, ctx, dctx)", head.push_jvp(z, ctx, dctx), d, b);
  expect("push_vjp(z, ctx, a)", head.push_vjp(z, ctx, a), c, b);
  const Matrix draws = head.mean_draws();
  if (draws.rows() != d || draws.cols() < 1) problems += format_message("mean_draws() is ", shape(draws), "; ");
  expect("mean(c)", head.mean(ctx.col(0)), d, 1);
  return problems;
}

}  // namespace varflow::amortized
