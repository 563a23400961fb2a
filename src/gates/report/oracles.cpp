// The oracles of the built-in problems: exact (linear-Gaussian), quadrature (two-moons) and 4D-Var
// with its Laplace posterior (Lorenz-96). See design/report.md.
#include "varflow/report/oracles.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>

#include "varflow/core/error.h"
#include "varflow/core/registry.h"
#include "varflow/covariance/covariances.h"
#include "varflow/var/exact_sensitivity.h"
#include "varflow/var/sensitivity.h"
#include "varflow/var/incremental_4dvar.h"

namespace varflow::report {

namespace {

JacobianOperator dense_jacobian(const Matrix& j) {
  return {[j](const Vector& v) { return Vector(j * v); }, [j](const Vector& w) { return Vector(j.transpose() * w); },
          j.cols(), j.rows()};
}

void check_shape(const std::string& problem, const amortized::ProblemShape& expected, const amortized::ProblemShape& shape) {
  if (!(expected == shape)) {
    throw InvalidArgument(format_message("model of problem '", problem, "' has state_size ", shape.state_size,
                                         ", obs_size ", shape.obs_size, "; the problem has state_size ",
                                         expected.state_size, ", obs_size ", expected.obs_size,
                                         " (Lorenz-96: pass the training config with --config)"));
  }
}

// ---- linear-Gaussian: exact ------------------------------------------------------------------------

class LinearGaussianOracle final : public Oracle {
 public:
  explicit LinearGaussianOracle(Index n) : problem_(n) {}
  const amortized::Simulator& simulator() const override { return problem_; }
  std::string describe() const override {
    return format_message("exact posterior N(y/2, ", problem_.posterior_variance(), " I) and J = 0.5 I");
  }
  std::shared_ptr<const Posterior> posterior(const Vector& y) override {
    const Index n = y.size();
    return std::make_shared<GaussianPosterior>(
        problem_.posterior_mean(y),
        std::make_shared<DiagonalCovariance>(Vector::Constant(n, problem_.posterior_variance())));
  }
  JacobianOperator jacobian(const Vector& y) override {
    const Index n = y.size();
    const double gain = problem_.posterior_mean(Vector::Ones(1))[0];
    return dense_jacobian(gain * Matrix::Identity(n, n));
  }
  Vector prior_variance() const override {
    // posterior_variance = pv nv / (pv + nv) and gain = pv / (pv + nv): pv = variance / (1 - gain).
    const double gain = problem_.posterior_mean(Vector::Ones(1))[0];
    return Vector::Constant(problem_.shape().state_size, problem_.posterior_variance() / (1.0 - gain));
  }

 private:
  amortized::LinearGaussian problem_;
};

// ---- two-moons: quadrature on a grid -----------------------------------------------------------------

// A posterior on a regular grid of cell centres with normalised weights.
class GridPosterior final : public Posterior {
 public:
  GridPosterior(Matrix points, Vector weights, double spacing)
      : points_(std::move(points)), weights_(std::move(weights)), spacing_(spacing) {
    mean_ = points_ * weights_;
    const Matrix c = points_.colwise() - mean_;
    std_ = (c.array().square().matrix() * weights_).array().sqrt();
  }
  Index size() const override { return points_.rows(); }
  Vector mean() const override { return mean_; }
  Vector marginal_std() const override { return std_; }
  // A cell by its weight, then uniform within the cell.
  Matrix samples(Index n, Rng& rng) const override {
    std::vector<double> cdf(static_cast<std::size_t>(weights_.size()));
    double acc = 0.0;
    for (Index k = 0; k < weights_.size(); ++k) cdf[static_cast<std::size_t>(k)] = acc += weights_[k];
    Matrix out(points_.rows(), n);
    for (Index j = 0; j < n; ++j) {
      const double u = rng.uniform() * acc;
      const auto it = std::lower_bound(cdf.begin(), cdf.end(), u);
      const Index k = std::min<Index>(static_cast<Index>(it - cdf.begin()), weights_.size() - 1);
      for (Index i = 0; i < points_.rows(); ++i) out(i, j) = points_(i, k) + (rng.uniform() - 0.5) * spacing_;
    }
    return out;
  }

 private:
  Matrix points_;
  Vector weights_;
  double spacing_;
  Vector mean_, std_;
};

class TwoMoonsOracle final : public Oracle {
 public:
  TwoMoonsOracle(Index points, double extent, double step) : step_(step) {
    spacing_ = 2.0 * extent / static_cast<double>(points - 1);
    grid_.resize(2, points * points);
    log_prior_.resize(points * points);
    const Eigen::Vector2d m = amortized::TwoMoons::raw_mean(), s = amortized::TwoMoons::raw_std();
    // p(x_raw) = 1/2 sum_moon 1/pi int_0^pi N(x_raw; c_moon(t), sigma^2 I) dt, midpoint rule in t.
    constexpr Index kT = 256;
    const double sigma = amortized::TwoMoons::kMoonNoise;
    std::vector<double> ct(kT), st(kT);
    for (Index k = 0; k < kT; ++k) {
      const double t = std::numbers::pi * (static_cast<double>(k) + 0.5) / kT;
      ct[static_cast<std::size_t>(k)] = std::cos(t);
      st[static_cast<std::size_t>(k)] = std::sin(t);
    }
    for (Index a = 0; a < points; ++a) {
      for (Index b = 0; b < points; ++b) {
        const Index k = a * points + b;
        const double x1 = -extent + spacing_ * static_cast<double>(a);
        const double x2 = -extent + spacing_ * static_cast<double>(b);
        grid_(0, k) = x1;
        grid_(1, k) = x2;
        const double r1 = x1 * s[0] + m[0], r2 = x2 * s[1] + m[1];
        double p = 0.0;
        for (std::size_t t = 0; t < ct.size(); ++t) {
          const double u1 = r1 - ct[t], u2 = r2 - st[t];                  // upper moon (cos t, sin t)
          const double l1 = r1 - (1.0 - ct[t]), l2 = r2 - (0.5 - st[t]);  // lower moon
          p += std::exp(-(u1 * u1 + u2 * u2) / (2.0 * sigma * sigma)) +
               std::exp(-(l1 * l1 + l2 * l2) / (2.0 * sigma * sigma));
        }
        log_prior_[k] = p > 0.0 ? std::log(p) : -std::numeric_limits<double>::infinity();
      }
    }
  }
  const amortized::Simulator& simulator() const override { return problem_; }
  std::string describe() const override {
    return format_message("quadrature posterior on a ", std::lround(std::sqrt(static_cast<double>(grid_.cols()))),
                          "^2 grid of spacing ", spacing_, " (exact prior density x Gaussian likelihood); J by ",
                          "central differences of its mean with step ", step_, " in y");
  }
  std::vector<std::string> notes() const override {
    return {"two-moons: the posterior is bimodal; agreement compares the mean and marginal spread of the "
            "mixture (a 1-sigma rule against the grid posterior), which is meaningful but blind to the mode "
            "shapes; SBC and sharpness see the full posterior"};
  }
  std::shared_ptr<const Posterior> posterior(const Vector& y) override {
    return std::make_shared<GridPosterior>(grid_, weights(y[0]), spacing_);
  }
  JacobianOperator jacobian(const Vector& y) override {
    const Vector plus = grid_ * weights(y[0] + step_), minus = grid_ * weights(y[0] - step_);
    return dense_jacobian((plus - minus) / (2.0 * step_));
  }
  Vector prior_variance() const override { return Vector::Ones(2); }  // standardised with exact moments

 private:
  Vector weights(double y) const {
    const double nv = amortized::TwoMoons::kObsNoise * amortized::TwoMoons::kObsNoise;
    Vector lw(log_prior_.size());
    for (Index k = 0; k < lw.size(); ++k) {
      const double d = grid_(0, k) + grid_(1, k) - y;
      lw[k] = log_prior_[k] - d * d / (2.0 * nv);
    }
    const double mx = lw.maxCoeff();
    Vector w = (lw.array() - mx).exp();
    return w / w.sum();
  }
  amortized::TwoMoons problem_;
  double step_, spacing_ = 0.0;
  Matrix grid_;
  Vector log_prior_;
};

// ---- a model window (lorenz96, window): incremental 4D-Var with its Laplace posterior --------------------------------------

class WindowOracle final : public Oracle {
 public:
  WindowOracle(const amortized::WindowProblemOptions& o, const ValidationOptions& v)
      : o_(o), problem_(o), jacobian_(v.window_jacobian), step_(v.map_difference_step * o.obs_noise) {
    // The exact sensitivity needs the model's second-order adjoint; without one, J is differenced.
    if (jacobian_ == OracleJacobian::kExact && !problem_.model().has_second_order()) {
      jacobian_ = OracleJacobian::kMapDifferences;
      fallback_ = true;
    }
    if (o.prior != amortized::WindowPrior::kClimatology) {
      // The simulator's prior exactly: x0 ~ N(c, prior_sd^2 I), or N(x_b, prior_sd^2 I) with the
      // background x_b that y carries (problem_.window(y) builds either).
      prior_variance_ = Vector::Constant(problem_.shape().state_size, o.prior_sd * o.prior_sd);
    } else {
      // Background: mean and covariance of the climatological states the problem draws x0 from.
      Rng rng(20240601);
      const Matrix x = problem_.simulate(v.prior_variance_draws, rng).x;
      background_ = x.rowwise().mean();
      const Matrix c = x.colwise() - background_;
      const Matrix cov = c * c.transpose() / static_cast<double>(x.cols() - 1);
      prior_variance_ = cov.diagonal();
      b_ = std::make_shared<DenseCovariance>(cov);
    }
  }
  const amortized::Simulator& simulator() const override { return problem_; }
  std::string describe() const override {
    const char* background = o_.prior == amortized::WindowPrior::kGaussian
                                 ? "the gaussian prior's centre and covariance (exact prior)"
                             : o_.prior == amortized::WindowPrior::kBackground
                                 ? "the background in y with B = prior_sd^2 I (exact prior)"
                                 : "climatological mean and covariance";
    return format_message("strong-constraint incremental 4D-Var over the ", o_.window, "-step window, background = ",
                          background,
                          "; Laplace (Gauss-Newton) posterior; J ", describe_jacobian());
  }
  std::vector<std::string> notes() const override {
    std::vector<std::string> out;
    const std::string p = problem_.name() + ": ";
    if (fallback_) {
      out.push_back(p + "the model has no second-order adjoint, so J is differenced (map-differences), not exact");
    }
    if (o_.prior != amortized::WindowPrior::kClimatology) {
      out.push_back(p + "the oracle's background is the simulator's " + amortized::to_string(o_.prior) +
                    " prior exactly; its only approximation is the Laplace posterior, which linearises the "
                    "model over the window");
    } else {
      out.push_back(p + "the oracle's Gaussian background is the climatology's mean and covariance, a "
                    "Gaussian approximation of the problem's prior; the Laplace posterior linearises the window");
    }
    switch (jacobian_) {
      case OracleJacobian::kGaussNewton:
        out.push_back(p + "J is the Gauss-Newton sensitivity, which omits second-derivative terms: with "
                      "obs_noise = 1 it differs from the derivative of the MAP by up to ~20% (0.6% at obs_noise = 0.1), "
                      "so Jacobian probing against it at the 5% tolerance can be stricter than the oracle's own accuracy");
        break;
      case OracleJacobian::kMapDifferences:
        out.push_back(p + "J is the derivative of the oracle's MAP by central differences in every observed "
                      "y component (2 solves each)");
        break;
      case OracleJacobian::kExact:
        out.push_back(p + "J is the exact derivative of the oracle's MAP (implicit-function theorem with the "
                      "full 4D-Var Hessian, second-order adjoints of the model), formed densely by one CG solve of J^T e_i "
                      "per state component; it agrees with central differences of the MAP to the solver tolerance, "
                      "without differencing");
        break;
    }
    return out;
  }
  std::shared_ptr<const Posterior> posterior(const Vector& y) override { return solve(y, true).posterior; }
  JacobianOperator jacobian(const Vector& y) override {
    if (jacobian_ == OracleJacobian::kMapDifferences) {
      Matrix j = Matrix::Zero(problem_.shape().state_size, y.size());
      Vector yp = y;
      for (Index k = 0; k < y.size(); ++k) {
        if (!std::isfinite(y[k])) continue;  // missing or unobserved: the mean does not depend on it
        yp[k] = y[k] + step_;
        const Vector plus = map(yp);
        yp[k] = y[k] - step_;
        const Vector minus = map(yp);
        yp[k] = y[k];
        j.col(k) = (plus - minus) / (2.0 * step_);
      }
      return dense_jacobian(j);
    }
    if (jacobian_ == OracleJacobian::kExact) {
      // The dense n x m matrix, one row J^T e_i per state component (n CG solves): its J v and J^T w
      // are then transposes of each other to round-off, as the gate's dot-product test of the
      // oracle's pair requires (separate CG solves per product agree only to the CG tolerance).
      // With the background prior the row is [J_b^T e_i; J^T e_i] (y starts with the background).
      const VarResult r = solve(y, false);
      const ExactObservationSensitivity s(*r.map);
      const Index nb = problem_.background_size(), m = s.observation_size();
      Matrix j(s.control_size(), nb + m);
      Vector background;
      for (Index i = 0; i < j.rows(); ++i) {
        j.row(i).tail(m) = s.apply_transpose(Vector::Unit(j.rows(), i), background).transpose();
        j.row(i).head(nb) = background.head(nb).transpose();
      }
      return dense_jacobian(j);
    }
    const VarResult r = solve(y, true);
    // P_a shares ownership with the posterior that holds it.
    auto s = std::make_shared<const ObservationSensitivity>(
        *r.map, std::shared_ptr<const Covariance>(r.posterior, r.posterior->covariance()));
    const Index nb = problem_.background_size();
    if (nb > 0) {
      const Index m = s->observation_size();
      return {[s, nb, m](const Vector& v) { return s->apply(v.tail(m), v.head(nb)); },
              [s, nb, m](const Vector& w) {
                Vector out(nb + m), background;
                out.tail(m) = s->apply_transpose(w, background);
                out.head(nb) = background;
                return out;
              },
              nb + m, s->control_size()};
    }
    return {[s](const Vector& v) { return s->apply(v); }, [s](const Vector& w) { return s->apply_transpose(w); },
            s->observation_size(), s->control_size()};
  }
  Vector prior_variance() const override { return prior_variance_; }

 private:
  Vector map(const Vector& y) const {
    return solve(y, false).analysis;
  }
  std::string describe_jacobian() const {
    switch (jacobian_) {
      case OracleJacobian::kGaussNewton: return "by ObservationSensitivity at the MAP";
      case OracleJacobian::kMapDifferences:
        return format_message("by central differences of the MAP in y (step ", step_, ")");
      case OracleJacobian::kExact:
        return "by ExactObservationSensitivity at the MAP (full-Hessian implicit-function derivative)";
    }
    return "";
  }
  VarResult solve(const Vector& y, bool exact_posterior) const {
    // The problem's window (physics, its observation network) with the oracle's background.
    const AssimilationWindow w =
        o_.prior == amortized::WindowPrior::kClimatology ? problem_.window(y, background_, b_) : problem_.window(y);
    GaussNewtonOptions options;
    if (exact_posterior) options.posterior_lanczos_vectors = problem_.shape().state_size;  // the exact Gauss-Newton posterior at the MAP
    SolverSummary summary;
    VarResult r = IncrementalFourDVar(options).solve(w, &summary);
    if (!r.posterior || !r.map) {
      throw Error(format_message(problem_.name(), " oracle: 4D-Var gave no posterior: ", summary.BriefReport()));
    }
    return r;
  }
  amortized::WindowProblemOptions o_;
  amortized::WindowProblem problem_;  // with the physics model
  OracleJacobian jacobian_;
  bool fallback_ = false;  // kExact asked for, kMapDifferences used (no second-order adjoint)
  double step_;
  Vector background_, prior_variance_;
  std::shared_ptr<const Covariance> b_;
};

}  // namespace

namespace {

// An oracle registered for a problem of that name.
struct OracleEntry {
  std::string name;
  OracleFactory make;
};

// The oracle of a window problem (options.window_problem): 4D-Var of the problem's window.
OracleFactory window_oracle(const std::string& problem) {
  return [problem](const amortized::ProblemShape& shape, const ValidationOptions& options) -> std::unique_ptr<Oracle> {
    check_shape(problem, amortized::WindowProblem(options.window_problem).shape(), shape);
    return std::make_unique<WindowOracle>(options.window_problem, options);
  };
}

std::vector<OracleEntry> builtin_oracles() {
  return {
      {"linear-gaussian",
       [](const amortized::ProblemShape& shape, const ValidationOptions&) -> std::unique_ptr<Oracle> {
         check_shape("linear-gaussian", amortized::LinearGaussian(shape.state_size).shape(), shape);
         return std::make_unique<LinearGaussianOracle>(shape.state_size);
       }},
      {"two-moons",
       [](const amortized::ProblemShape& shape, const ValidationOptions& options) -> std::unique_ptr<Oracle> {
         check_shape("two-moons", amortized::TwoMoons().shape(), shape);
         return std::make_unique<TwoMoonsOracle>(options.grid_points, options.grid_extent, options.jacobian_step);
       }},
      {"lorenz96", window_oracle("lorenz96")},
      {"window", window_oracle("window")},
  };
}

Registry<OracleEntry>& oracle_registry() {
  static Registry<OracleEntry> oracles("oracle for problem", builtin_oracles());
  return oracles;
}

}  // namespace

void register_oracle(const std::string& problem, OracleFactory factory) {
  if (!factory) throw InvalidArgument(format_message("register_oracle: problem ", problem, " needs a factory"));
  oracle_registry().add({problem, std::move(factory)}, "register_oracle");
}

std::unique_ptr<Oracle> make_oracle(const std::string& problem, const amortized::ProblemShape& shape,
                                    const ValidationOptions& options) {
  if (const OracleEntry* e = oracle_registry().find(problem)) return e->make(shape, options);
  throw InvalidArgument(format_message("model problem = '", problem, "' has no oracle: validate knows ",
                                       oracle_registry().names_text()));
}

}  // namespace varflow::report
