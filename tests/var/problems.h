#pragma once
// Assimilation windows shared by the variational tests: a linear-Gaussian window with its closed-form
// BLUE posterior, and Lorenz-63 / Lorenz-96 twin windows.
#include <Eigen/Cholesky>
#include <Eigen/Eigenvalues>
#include <Eigen/LU>
#include <Eigen/QR>
#include <memory>
#include <vector>

#include "varflow/core/random.h"
#include "varflow/covariance/covariances.h"
#include "varflow/model/linear_model.h"
#include "varflow/model/lorenz63.h"
#include "varflow/model/lorenz96.h"
#include "varflow/obs/operators.h"
#include "varflow/var/window.h"

namespace varflow::test {

inline Matrix random_matrix(Rng& rng, Index rows, Index cols) {
  Matrix a(rows, cols);
  for (Index j = 0; j < cols; ++j) a.col(j) = rng.normal_vector(rows);
  return a;
}

// A random SPD matrix with eigenvalues in [scale * 0.5, scale * 2] (well conditioned).
inline Matrix random_spd(Rng& rng, Index n, double scale) {
  const Eigen::HouseholderQR<Matrix> qr(random_matrix(rng, n, n));
  const Matrix q = qr.householderQ();
  Vector ev(n);
  for (Index i = 0; i < n; ++i) ev[i] = scale * (0.5 + 1.5 * rng.uniform());
  const Matrix c = q * ev.asDiagonal() * q.transpose();
  return 0.5 * (c + c.transpose());
}

inline double relative_error(const Matrix& a, const Matrix& b) { return (a - b).norm() / b.norm(); }

// A linear-Gaussian window: dense B, LinearModel A (spectral norm about 1), LinearObservation H_s and
// dense R_s at the given steps; the observations are drawn from the prior predictive. `missing` lists
// (slot, index) pairs to mask (their values are set to NaN).
struct LinearGaussianProblem {
  AssimilationWindow window;
  Matrix a, b;
  std::vector<Matrix> h, r;
};

inline LinearGaussianProblem linear_gaussian_problem(Rng& rng, Index n, Index steps, const std::vector<Index>& obs_steps,
                                                     const std::vector<Index>& obs_sizes,
                                                     const std::vector<std::pair<std::size_t, Index>>& missing = {}) {
  LinearGaussianProblem p;
  const Matrix a0 = random_matrix(rng, n, n);
  p.a = a0 / a0.operatorNorm() * 1.02;
  p.b = random_spd(rng, n, 1.0);
  p.window.background = rng.normal_vector(n);
  p.window.b = std::make_shared<DenseCovariance>(p.b);
  p.window.model = std::make_shared<LinearModel>(p.a);
  p.window.steps = steps;
  const Vector truth = p.window.background + DenseCovariance(p.b).sample(rng);
  for (std::size_t s = 0; s < obs_steps.size(); ++s) {
    Observations o;
    o.step = obs_steps[s];
    const Matrix h = random_matrix(rng, obs_sizes[s], n);
    const Matrix r = random_spd(rng, obs_sizes[s], 0.5);
    Vector x = truth;
    for (Index k = 0; k < o.step; ++k) x = p.a * x;
    o.values = h * x + DenseCovariance(r).sample(rng);
    o.op = std::make_shared<LinearObservation>(h);
    o.r = std::make_shared<DenseCovariance>(r);
    p.h.push_back(h);
    p.r.push_back(r);
    p.window.observations.push_back(o);
  }
  for (const auto& [slot, i] : missing) {
    Observations& o = p.window.observations[slot];
    if (o.mask.size() == 0) o.mask = Mask::Constant(o.values.size(), true);
    o.mask[i] = false;
    o.values[i] = std::numeric_limits<double>::quiet_NaN();
  }
  return p;
}

// The closed-form Gaussian posterior of a linear problem y = G z + e, e ~ N(0, R), z ~ N(zb, Bz):
// P = (Bz^-1 + G^T R^-1 G)^-1, mean = zb + P G^T R^-1 (y - G zb). Missing rows already removed.
struct Blue {
  Vector mean;
  Matrix covariance;
  Matrix gain;  // d mean / d y = P G^T R^-1
};

inline Blue blue(const Vector& zb, const Matrix& bz, const Matrix& g, const Matrix& r, const Vector& y) {
  const Matrix rinv_g = r.llt().solve(g);
  const Matrix precision = bz.llt().solve(Matrix::Identity(zb.size(), zb.size())) + g.transpose() * rinv_g;
  Blue out;
  out.covariance = precision.llt().solve(Matrix::Identity(zb.size(), zb.size()));
  out.covariance = 0.5 * (out.covariance + out.covariance.transpose());
  out.gain = out.covariance * rinv_g.transpose();
  out.mean = zb + out.gain * (y - g * zb);
  return out;
}

// The stacked linear map z -> (H_s x_{k(s)})_s of a linear window, its R and y with the masked rows
// removed. For weak constraint (q != null) z = (x_0, eta_1 .. eta_S) with sub-windows of `sub` steps.
struct StackedLinear {
  Matrix g, r, bz;
  Vector y, zb;
  std::vector<Index> rows;  // the stacked-layout index of each kept row
};

inline StackedLinear stack_linear(const LinearGaussianProblem& p, const Matrix* q = nullptr, Index sub = 1) {
  const AssimilationWindow& w = p.window;
  const Index n = w.state_size();
  const Index num_sub = q ? (w.steps + sub - 1) / sub : 0;
  const Index pz = n * (1 + num_sub);
  StackedLinear s;
  s.bz = Matrix::Zero(pz, pz);
  s.bz.topLeftCorner(n, n) = p.b;
  for (Index j = 0; j < num_sub; ++j) s.bz.block(n * (1 + j), n * (1 + j), n, n) = *q;
  s.zb = Vector::Zero(pz);
  s.zb.head(n) = w.background;
  // Phi_k: z -> x_k.
  std::vector<Matrix> phi(static_cast<std::size_t>(w.steps) + 1);
  phi[0] = Matrix::Zero(n, pz);
  phi[0].leftCols(n) = Matrix::Identity(n, n);
  for (Index k = 0; k < w.steps; ++k) {
    Matrix next = p.a * phi[static_cast<std::size_t>(k)];
    if (q) next.block(0, n * (1 + k / sub), n, n) += Matrix::Identity(n, n);
    phi[static_cast<std::size_t>(k) + 1] = next;
  }
  Index total = 0, offset = 0;
  for (const Observations& o : w.observations) total += o.count();
  s.g.resize(total, pz);
  s.r = Matrix::Zero(total, total);
  s.y.resize(total);
  Index row = 0;
  for (std::size_t slot = 0; slot < w.observations.size(); ++slot) {
    const Observations& o = w.observations[slot];
    const Matrix gs = p.h[slot] * phi[static_cast<std::size_t>(o.step)];
    std::vector<Index> present;
    for (Index i = 0; i < o.values.size(); ++i) {
      if (o.present(i)) present.push_back(i);
    }
    for (std::size_t a = 0; a < present.size(); ++a) {
      s.g.row(row + static_cast<Index>(a)) = gs.row(present[a]);
      s.y[row + static_cast<Index>(a)] = o.values[present[a]];
      s.rows.push_back(offset + present[a]);
      for (std::size_t b = 0; b < present.size(); ++b) {
        s.r(row + static_cast<Index>(a), row + static_cast<Index>(b)) = p.r[slot](present[a], present[b]);
      }
    }
    row += static_cast<Index>(present.size());
    offset += o.values.size();
  }
  return s;
}

// A state on the attractor.
inline Vector attractor_state(const Model& model, Vector x0, Rng& rng, Index spin_up) {
  x0 += 0.01 * rng.normal_vector(x0.size());
  for (Index k = 0; k < spin_up; ++k) model.step(x0);
  return x0;
}

// A twin window for a chaotic model: truth from the attractor, x_b = truth + N(0, sigma_b^2 I),
// every `obs_stride`-th variable observed every `obs_every` steps (from step obs_every) with
// R = sigma_o^2 I. Returns the true initial state in *truth.
inline AssimilationWindow twin_window(std::shared_ptr<const Model> model, const Vector& truth0, Rng& rng, Index steps,
                                      Index obs_every, Index obs_stride, double sigma_b, double sigma_o) {
  const Index n = model->state_size();
  AssimilationWindow w;
  w.model = model;
  w.steps = steps;
  w.b = std::make_shared<DiagonalCovariance>(DiagonalCovariance::scaled_identity(n, sigma_b * sigma_b));
  w.background = truth0 + sigma_b * rng.normal_vector(n);
  auto op = std::make_shared<SubsetObservation>(SubsetObservation::every(n, obs_stride));
  auto r = std::make_shared<DiagonalCovariance>(DiagonalCovariance::scaled_identity(op->obs_size(), sigma_o * sigma_o));
  Vector x = truth0;
  for (Index k = 1; k <= steps; ++k) {
    model->step(x);
    if (k % obs_every == 0) {
      Observations o;
      o.step = k;
      Vector y;
      op->apply(x, y);
      o.values = y + sigma_o * rng.normal_vector(y.size());
      o.op = op;
      o.r = r;
      w.observations.push_back(o);
    }
  }
  return w;
}

}  // namespace varflow::test
