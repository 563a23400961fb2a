#include "varflow/nn/gradient_check.h"

#include <algorithm>
#include <cmath>

#include "varflow/core/error.h"

namespace varflow::nn {

double relative_error(const Vector& a, const Vector& b, double floor) {
  return (a - b).norm() / std::max({a.norm(), b.norm(), floor});
}

Vector finite_difference_gradient(const std::function<double(const Vector&)>& f, const Vector& x, double h) {
  Vector g(x.size()), xp = x;
  for (Index i = 0; i < x.size(); ++i) {
    xp[i] = x[i] + h;
    const double fp = f(xp);
    xp[i] = x[i] - h;
    const double fm = f(xp);
    xp[i] = x[i];
    g[i] = (fp - fm) / (2.0 * h);
  }
  return g;
}

std::string GradientCheckResult::report() const {
  return format_message(passed ? "passed" : "FAILED", ": input ", input_error, ", parameters ", parameter_error,
                        ", tangent ", tangent_error, ", adjoint ", adjoint_error);
}

namespace {
Vector flat(const Matrix& m) { return Eigen::Map<const Vector>(m.data(), m.size()); }
}  // namespace

GradientCheckResult check_layer(Layer& layer, ParameterSet* params, const Matrix& x, Rng& rng,
                                const GradientCheckTolerances& tol) {
  GradientCheckResult r;
  Matrix y;
  layer.forward(x, y);
  const Matrix weights = rng.normal_matrix(y.rows(), y.cols());
  auto loss_at_x = [&](const Vector& xv) {
    Matrix xm = Eigen::Map<const Matrix>(xv.data(), x.rows(), x.cols()), ym;
    layer.forward(xm, ym);
    return (ym.array() * weights.array()).sum();
  };

  // Analytic: backward at x.
  layer.forward(x, y);
  if (params) params->zero_gradients();
  Matrix dx;
  layer.backward(weights, dx, true);
  const Vector g_param = params ? Vector(params->gradients()) : Vector();

  // Tangent and adjoint consistency at x.
  const Matrix v = rng.normal_matrix(x.rows(), x.cols());
  Matrix jv;
  layer.tangent(v, jv);
  const double lhs = (jv.array() * weights.array()).sum(), rhs = (v.array() * dx.array()).sum();
  r.adjoint_error = std::abs(lhs - rhs) / (std::abs(lhs) + tol.floor);

  // Finite differences.
  const Vector xv = flat(x);
  const Vector g_fd_x = finite_difference_gradient(loss_at_x, xv, tol.step);
  r.input_error = relative_error(flat(dx), g_fd_x, tol.floor);
  {
    Matrix yp, ym;
    Matrix xp = x + tol.step * v, xm = x - tol.step * v;
    layer.forward(xp, yp);
    layer.forward(xm, ym);
    r.tangent_error = relative_error(flat(jv), flat((yp - ym) / (2.0 * tol.step)), tol.floor);
  }
  if (params && params->size() > 0) {
    auto theta = params->values();
    const Vector saved = theta;
    auto loss_at_theta = [&](const Vector& t) {
      theta = t;
      Matrix ym;
      layer.forward(x, ym);
      return (ym.array() * weights.array()).sum();
    };
    const Vector g_fd_p = finite_difference_gradient(loss_at_theta, saved, tol.step);
    theta = saved;
    r.parameter_error = relative_error(g_param, g_fd_p, tol.floor);
  }
  layer.forward(x, y);  // leave the cache at x
  r.passed = r.input_error <= tol.relative && r.parameter_error <= tol.relative &&
             r.tangent_error <= tol.relative && r.adjoint_error <= tol.relative;
  return r;
}

std::string SecondOrderCheckResult::report() const {
  return format_message(passed ? "passed" : "FAILED", ": first order ", first_order_error, ", second order ",
                        second_order_error, ", adjoint ", adjoint_error, ", symmetry ", symmetry_error);
}

SecondOrderCheckResult check_layer_second_order(Layer& layer, const Matrix& x, Rng& rng,
                                                const GradientCheckTolerances& tol) {
  if (!layer.has_second_order()) {
    throw InvalidArgument(format_message("check_layer_second_order: ", layer.describe(), " has no second-order pass"));
  }
  const Index in = layer.input_size(), out = layer.output_size(), b = x.cols();
  const Matrix a = rng.normal_matrix(out, b), da = rng.normal_matrix(out, b);
  const Matrix dx1 = rng.normal_matrix(in, b), dx2 = rng.normal_matrix(in, b);
  const Matrix zero = Matrix::Zero(out, b);
  SecondOrderCheckResult r;
  Matrix y, g, g_da, a_in, h1, h2, a_in_da, h1_da;
  layer.forward(x, y);
  layer.backward(a, g, false);
  layer.backward(da, g_da, false);
  layer.second_order_backward(dx1, a, zero, a_in, h1);
  layer.second_order_backward(dx2, a, zero, a_in, h2);
  layer.second_order_backward(dx1, a, da, a_in_da, h1_da);
  r.first_order_error = std::max(relative_error(flat(a_in), flat(g), tol.floor),
                                 relative_error(flat(a_in_da), flat(g), tol.floor));
  r.adjoint_error = relative_error(flat(h1_da - h1), flat(g_da), tol.floor);
  const double lhs = (h1.array() * dx2.array()).sum(), rhs = (dx1.array() * h2.array()).sum();
  r.symmetry_error = std::abs(lhs - rhs) / (std::abs(lhs) + tol.floor);
  Matrix gp, gm;
  layer.forward(x + tol.step * dx1, y);
  layer.backward(a, gp, false);
  layer.forward(x - tol.step * dx1, y);
  layer.backward(a, gm, false);
  r.second_order_error = relative_error(flat(h1), flat((gp - gm) / (2.0 * tol.step)), tol.floor);
  layer.forward(x, y);  // leave the cache at x
  r.passed = r.first_order_error <= tol.relative && r.second_order_error <= tol.relative &&
             r.adjoint_error <= tol.relative && r.symmetry_error <= tol.relative;
  return r;
}

}  // namespace varflow::nn
