// The coupling transforms (rational-quadratic spline, affine) one scalar at a time: inverse,
// derivative and every gradient against central differences (relative error <= 1e-6).
#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "varflow/amortized/spline.h"
#include "varflow/core/error.h"
#include "varflow/nn/gradient_check.h"
#include "varflow/testing/conformance.h"

namespace varflow::amortized {
namespace {

using nn::GradientCheckTolerances;
using nn::relative_error;

struct Transform {
  std::string name;
  Index params;
  std::function<double(const double*, double, double*)> forward;
  std::function<double(const double*, double)> inverse;
  std::function<double(const double*, double, double, double, double*)> backward;
  std::function<double(const double*, double, const double*, double*)> tangent;
};

std::vector<Transform> transforms() {
  static const SplineShape shape{6, 3.0};
  static const double clamp = 2.0;
  return {
      {"spline", shape.parameter_count(),
       [](const double* t, double x, double* l) { return rqs_forward(shape, t, x, l); },
       [](const double* t, double y) { return rqs_inverse(shape, t, y); },
       [](const double* t, double x, double gy, double gl, double* g) { return rqs_backward(shape, t, x, gy, gl, g); },
       [](const double* t, double x, const double* dt, double* d) { return rqs_tangent_theta(shape, t, x, dt, d); }},
      {"affine", 2, [](const double* t, double x, double* l) { return affine_forward(clamp, t, x, l); },
       [](const double* t, double y) { return affine_inverse(clamp, t, y); },
       [](const double* t, double x, double gy, double gl, double* g) { return affine_backward(clamp, t, x, gy, gl, g); },
       [](const double* t, double x, const double* dt, double* d) { return affine_tangent_theta(clamp, t, x, dt, d); }},
  };
}

class CouplingTransform : public ::testing::TestWithParam<int> {};

TEST_P(CouplingTransform, InverseAndDerivatives) {
  const Transform tr = transforms()[static_cast<std::size_t>(GetParam())];
  Rng rng = testing::seeded_rng(701);
  const GradientCheckTolerances tol;
  double worst_inverse = 0.0;
  Vector all_g, all_fd, all_tan, all_tan_fd, all_dx, all_dx_fd;
  std::vector<double> g, gfd, tan, tanfd, dx, dxfd;
  for (int trial = 0; trial < 200; ++trial) {
    Vector theta(tr.params), dtheta(tr.params);
    for (Index i = 0; i < tr.params; ++i) { theta[i] = 1.5 * rng.normal(); dtheta[i] = rng.normal(); }
    const double x = 4.0 * rng.normal();  // about a third outside [-3, 3]: the tails are checked too
    double l = 0.0;
    const double y = tr.forward(theta.data(), x, &l);
    worst_inverse = std::max(worst_inverse, std::abs(tr.inverse(theta.data(), y) - x));
    // d y / dx = exp(l).
    double lp, lm;
    const double h = tol.step;
    dx.push_back(std::exp(l));
    dxfd.push_back((tr.forward(theta.data(), x + h, &lp) - tr.forward(theta.data(), x - h, &lm)) / (2 * h));
    // Reverse mode for L = gy * y + gl * l.
    const double gy = rng.normal(), gl = rng.normal();
    Vector gtheta(tr.params);
    const double gx = tr.backward(theta.data(), x, gy, gl, gtheta.data());
    auto loss = [&](const Vector& t, double xv) {
      double lv;
      const double yv = tr.forward(t.data(), xv, &lv);
      return gy * yv + gl * lv;
    };
    g.push_back(gx);
    gfd.push_back((loss(theta, x + h) - loss(theta, x - h)) / (2 * h));
    const Vector fd = nn::finite_difference_gradient([&](const Vector& t) { return loss(t, x); }, theta, h);
    for (Index i = 0; i < tr.params; ++i) { g.push_back(gtheta[i]); gfd.push_back(fd[i]); }
    // Forward mode in theta.
    double dydx = 0.0;
    tan.push_back(tr.tangent(theta.data(), x, dtheta.data(), &dydx));
    const Vector tp = theta + h * dtheta, tm = theta - h * dtheta;
    tanfd.push_back((tr.forward(tp.data(), x, &lp) - tr.forward(tm.data(), x, &lm)) / (2 * h));
    EXPECT_NEAR(dydx, std::exp(l), 1e-12 * std::exp(l));
  }
  auto vec = [](const std::vector<double>& v) { return Eigen::Map<const Vector>(v.data(), static_cast<Index>(v.size())); };
  EXPECT_LT(worst_inverse, 1e-10) << tr.name;
  const double e_dx = relative_error(vec(dx), vec(dxfd)), e_g = relative_error(vec(g), vec(gfd)),
               e_t = relative_error(vec(tan), vec(tanfd));
  EXPECT_LT(e_dx, tol.relative) << tr.name << " dy/dx";
  EXPECT_LT(e_g, tol.relative) << tr.name << " reverse mode";
  EXPECT_LT(e_t, tol.relative) << tr.name << " forward mode in theta";
  std::cout << tr.name << ": relative errors dy/dx " << e_dx << ", reverse " << e_g << ", tangent " << e_t
            << ", worst inverse " << worst_inverse << "\n";
}

INSTANTIATE_TEST_SUITE_P(Both, CouplingTransform, ::testing::Values(0, 1),
                         [](const ::testing::TestParamInfo<int>& p) { return transforms()[static_cast<std::size_t>(p.param)].name; });

TEST(Spline, ZeroParametersGiveTheIdentity) {
  const SplineShape s{8, 5.0};
  const Vector theta = Vector::Zero(s.parameter_count());
  for (double x : {-7.0, -5.0, -1.3, 0.0, 0.4, 4.99, 5.0, 12.0}) {
    double l = 1.0;
    EXPECT_NEAR(rqs_forward(s, theta.data(), x, &l), x, 1e-12);
    EXPECT_NEAR(l, 0.0, 1e-12);
  }
}

TEST(Spline, ExtremeInputsAndParametersStayFinite) {
  const SplineShape s{8, 5.0};
  Rng rng = testing::seeded_rng(702);
  Vector theta(s.parameter_count()), g(s.parameter_count());
  for (Index i = 0; i < theta.size(); ++i) theta[i] = 30.0 * rng.normal();
  for (double x : {-1e300, -5.0, -4.999999, 0.0, 4.9999999, 5.0, 1e300}) {
    double l = 0.0;
    const double y = rqs_forward(s, theta.data(), x, &l);
    const double gx = rqs_backward(s, theta.data(), x, 1.0, 1.0, g.data());
    EXPECT_TRUE(std::isfinite(y) && std::isfinite(l) && std::isfinite(gx) && g.allFinite()) << "x = " << x;
    EXPECT_TRUE(std::isfinite(rqs_inverse(s, theta.data(), x))) << "x = " << x;
  }
}

TEST(Spline, ShapeValidationNamesTheField) {
  SplineShape s{1, 5.0};
  try {
    s.validate();
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("bins = 1"), std::string::npos) << e.what();
  }
  s = SplineShape{8, -1.0};
  EXPECT_THROW(s.validate(), InvalidArgument);
}

}  // namespace
}  // namespace varflow::amortized
