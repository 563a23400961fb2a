// Step 5 of the cycle (design/cycle.md): trains and validates the amortized predictor with the given
// settings and prints the gate statistics and times. Run with OMP_NUM_THREADS=1.
//
//   varflow_predictor_bench [--seed S] [--forcing F] [--jacobian gauss-newton|map-differences]
//                           [--events N] [--oracle-check K] [key=value ...]
//
// key=value: any AmortizedSetup key (apply_entry), e.g. pairs=20000 training.epochs=40
// lorenz96.obs_stride=2; lorenz96.* keys set the step's problem. --forcing simulates the training
// pairs with Lorenz-96 of another forcing (a wrong model). --oracle-check K compares the oracle's
// Gauss-Newton J with central differences of its MAP at K events and exits. --latency-only trains
// the predictor without labels or gates (e.g. at model.n=1000, where the gates cost 1000 CG
// solves per Jacobian case) and prints only the per-event cost row: a forward pass costs the same
// whatever the weights' values. The trained model is written to <temp>/predictor_bench_<seed>_<pid>.nc.
#include <Eigen/Dense>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include <unistd.h>

#include "varflow/report/oracles.h"
#include "varflow/covariance/covariance.h"
#include "varflow/amortized/amortized_posterior.h"
#include "varflow/amortized/problems.h"
#include "varflow/cycle/predictor_step.h"
#include "varflow/model/lorenz96.h"

using namespace varflow;

// Per-event cost where amortization matters: the trained predictor's posterior (mean + 1000 draws)
// against the 4D-Var + Laplace oracle's (MAP, exact Gauss-Newton posterior, 1000 draws) on the same
// 10 events, side by side in this run.
void print_per_event_cost(const std::filesystem::path& path, const cycle::PredictorStepOptions& o, std::uint64_t seed) {
  auto q = amortized::AmortizedPosterior::load(path);
  const amortized::WindowProblem problem(o.problem);
  auto oracle = report::make_oracle("lorenz96", problem.shape(), o.validation);
  Rng event_rng(seed + 1000);
  const Matrix ys = problem.simulate(10, event_rng).y;
  double t_fast = 0.0, t_oracle = 0.0;
  for (Index e = 0; e < ys.cols(); ++e) {
    auto t0 = std::chrono::steady_clock::now();
    const Vector m = q.mean(ys.col(e));
    const Matrix draws = q.sample(ys.col(e), 1000, event_rng);
    auto t1 = std::chrono::steady_clock::now();
    const auto p = oracle->posterior(ys.col(e));
    const Matrix oracle_draws = p->samples(1000, event_rng);
    auto t2 = std::chrono::steady_clock::now();
    t_fast += std::chrono::duration<double>(t1 - t0).count();
    t_oracle += std::chrono::duration<double>(t2 - t1).count();
    if (!m.allFinite() || !draws.allFinite() || !oracle_draws.allFinite()) std::cout << "  event " << e << ": non-finite output\n";
  }
  const double n_events = static_cast<double>(ys.cols());
  std::cout << "  per-event posterior (mean + 1000 draws), n = " << o.problem.model.parameter("n") << ", "
            << q.parameter_count() << " weights: predictor " << 1e3 * t_fast / n_events
            << " ms, 4D-Var + Laplace oracle " << 1e3 * t_oracle / n_events << " ms, ratio " << t_oracle / t_fast << "\n";
}

int main(int argc, char** argv) {
  cycle::PredictorStepOptions o;
  std::uint64_t seed = 1;
  double forcing = 0.0;
  Index oracle_check = 0, linear_check = 0, mean_check = 0;
  bool latency_only = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&] { return std::string(argv[++i]); };
    if (a == "--seed") {
      seed = std::stoull(next());
    } else if (a == "--forcing") {
      forcing = std::stod(next());
    } else if (a == "--jacobian") {
      o.validation.window_jacobian = report::oracle_jacobian_from_string(next());
    } else if (a == "--events") {
      o.validation.events = std::stol(next());
    } else if (a == "--mean-check") {
      mean_check = std::stol(next());
    } else if (a == "--linear-check") {
      linear_check = std::stol(next());
    } else if (a == "--latency-only") {
      latency_only = true;
    } else if (a == "--oracle-check") {
      oracle_check = std::stol(next());
    } else {
      const auto eq = a.find('=');
      if (eq == std::string::npos) {
        std::cerr << "unknown argument " << a << "\n";
        return 2;
      }
      o.setup.window_problem = o.problem;
      amortized::apply_entry(o.setup, a.substr(0, eq), a.substr(eq + 1), "argument");
      o.problem = o.setup.window_problem;
    }
  }
  o.validation.window_problem = o.problem;
  if (mean_check > 0) {
    // The exact posterior mean and its derivative dE[x|y]/dy = Cov(x, g(x) | y) R^-1 (g: the
    // observed trajectory; the likelihood is Gaussian in y) by self-normalised importance sampling
    // from the oracle's Laplace posterior, against the oracle's MAP and its J (map differences).
    const amortized::WindowProblem problem(o.problem);
    report::ValidationOptions fd = o.validation;
    fd.window_jacobian = report::OracleJacobian::kMapDifferences;
    auto of = report::make_oracle("lorenz96", problem.shape(), fd);
    const auto& po = o.problem;
    const auto model_ptr = po.model.make();
    const Model& model = *model_ptr;
    Rng rng(seed);
    const amortized::Dataset e = problem.simulate(mean_check, rng);
    const Index draws = 200000, n = model.state_size();
    for (Index j = 0; j < mean_check; ++j) {
      const Vector y = e.y.col(j);
      const auto post = of->posterior(y);
      const Vector m = post->mean();
      const Matrix l = post->covariance()->dense().llt().matrixL();
      Matrix xs(n, draws), gs(y.size(), draws);
      Vector logw(draws);
      for (Index k = 0; k < draws; ++k) {
        const Vector z = rng.normal_vector(n);
        Vector x = m + l * z;
        xs.col(k) = x;
        double lt = -0.5 * (x - problem.center()).squaredNorm() / (po.prior_sd * po.prior_sd);
        for (Index step = 0, slot = 0; step <= po.window; ++step) {
          if (step % po.obs_every == 0) {
            for (Index i = 0; i < n; ++i) {
              const double yi = y[slot * n + i];
              gs(slot * n + i, k) = x[i];
              if (std::isfinite(yi)) lt -= 0.5 * (yi - x[i]) * (yi - x[i]) / (po.obs_noise * po.obs_noise);
            }
            ++slot;
          }
          if (step < po.window) model.step(x);
        }
        logw[k] = lt + 0.5 * z.squaredNorm();
      }
      const double mx = logw.maxCoeff();
      Vector w = (logw.array() - mx).exp();
      w /= w.sum();
      const double ess = 1.0 / w.squaredNorm();
      const Vector mean = xs * w;
      const Vector gbar = gs * w;
      const Matrix xc = xs.colwise() - mean;
      const Matrix gc = (gs.colwise() - gbar).array().rowwise() * w.transpose().array();
      Matrix jm = xc * gc.transpose() / (po.obs_noise * po.obs_noise);
      for (Index k = 0; k < y.size(); ++k)
        if (!std::isfinite(y[k])) jm.col(k).setZero();
      const JacobianOperator jf = of->jacobian(y);
      double worst = 0.0, avg = 0.0;
      for (int p = 0; p < 20; ++p) {
        Vector v = rng.normal_vector(y.size());
        for (Index i = 0; i < v.size(); ++i)
          if (!std::isfinite(y[i])) v[i] = 0.0;
        v.normalize();
        const Vector a = jf.jvp(v), b = jm * v;
        const double err = (b - a).norm() / a.norm();
        worst = std::max(worst, err);
        avg += err / 20.0;
      }
      const Vector d = (mean - m).cwiseQuotient(post->marginal_std());
      std::cout << "event " << j << ": ESS " << ess << " of " << draws << "; |E[x|y] - MAP| / sigma max "
                << d.cwiseAbs().maxCoeff() << "; dE[x|y]/dy vs dMAP/dy probe error mean " << avg << ", max " << worst
                << "\n";
    }
    return 0;
  }
  if (linear_check > 0) {
    // The best global linear map x ~ K y + k (least squares on 50000 physics pairs, missing = 0)
    // against the oracle's J at linear_check events: how far from linear the posterior mean is.
    const amortized::WindowProblem problem(o.problem);
    Rng rng(seed);
    amortized::Dataset d = problem.simulate(50000, rng);
    Matrix y = d.y.array().isFinite().select(d.y, 0.0);
    Matrix a(y.rows() + 1, y.cols());
    a.topRows(y.rows()) = y;
    a.row(y.rows()).setOnes();
    const Matrix k = (a * a.transpose() + 1e-8 * Matrix::Identity(a.rows(), a.rows())).ldlt().solve(a * d.x.transpose()).transpose();
    report::ValidationOptions fd = o.validation;
    fd.window_jacobian = report::OracleJacobian::kMapDifferences;
    auto of = report::make_oracle("lorenz96", problem.shape(), fd);
    const amortized::Dataset e = problem.simulate(linear_check, rng);
    for (Index j = 0; j < linear_check; ++j) {
      const Vector yj = e.y.col(j);
      const JacobianOperator jf = of->jacobian(yj);
      double worst = 0.0, mean = 0.0;
      for (int p = 0; p < 20; ++p) {
        Vector v = rng.normal_vector(yj.size());
        for (Index i = 0; i < v.size(); ++i)
          if (!std::isfinite(yj[i])) v[i] = 0.0;
        v.normalize();
        const Vector ja = jf.jvp(v);
        const Vector kb = k.leftCols(yj.size()) * v;
        const double err = (kb - ja).norm() / ja.norm();
        worst = std::max(worst, err);
        mean += err / 20.0;
      }
      std::cout << "event " << j << ": global linear regression vs oracle J: probe error mean " << mean << ", max "
                << worst << "\n";
    }
    return 0;
  }
  if (oracle_check > 0) {
    const amortized::WindowProblem problem(o.problem);
    report::ValidationOptions gn = o.validation, fd = o.validation;
    gn.window_jacobian = report::OracleJacobian::kGaussNewton;
    fd.window_jacobian = report::OracleJacobian::kMapDifferences;
    auto og = report::make_oracle("lorenz96", problem.shape(), gn);
    auto of = report::make_oracle("lorenz96", problem.shape(), fd);
    Rng rng(seed);
    const amortized::Dataset d = problem.simulate(oracle_check, rng);
    for (Index e = 0; e < oracle_check; ++e) {
      const Vector y = d.y.col(e);
      const auto t0 = std::chrono::steady_clock::now();
      const JacobianOperator jf = of->jacobian(y);
      const double t_fd = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const JacobianOperator jg = og->jacobian(y);
      double worst = 0.0, mean = 0.0;
      for (int k = 0; k < 20; ++k) {
        Vector v = rng.normal_vector(y.size());
        for (Index i = 0; i < v.size(); ++i)
          if (!std::isfinite(y[i])) v[i] = 0.0;
        v.normalize();
        const Vector a = jf.jvp(v), b = jg.jvp(v);
        const double err = (b - a).norm() / a.norm();
        worst = std::max(worst, err);
        mean += err / 20.0;
      }
      std::cout << "event " << e << ": Gauss-Newton J vs MAP differences: probe error mean " << mean << ", max "
                << worst << "; map-differences J in " << t_fd << " s\n";
    }
    return 0;
  }
  std::shared_ptr<const Model> model;
  if (forcing != 0.0) model = std::make_shared<Lorenz96>(static_cast<Index>(o.problem.model.parameter("n")), forcing, o.problem.model.parameter("dt"));
  Rng rng(seed);
  // One file per process: runs side by side (the same seed included) must not read each other's model.
  const auto path = std::filesystem::temp_directory_path() /
                    ("predictor_bench_" + std::to_string(seed) + "_" + std::to_string(::getpid()) + ".nc");
  if (latency_only) {
    const amortized::WindowProblem problem(o.problem);
    amortized::Dataset data = problem.simulate(o.setup.pairs, rng);
    if (o.setup.network.linear_gain == amortized::LinearGain::kOracle) {  // m sensitivity solves
      const auto tg = std::chrono::steady_clock::now();
      problem.linearize(data);
      std::cout << "latency only: the oracle gain in "
                << std::chrono::duration<double>(std::chrono::steady_clock::now() - tg).count() << " s\n";
    }
    amortized::AmortizedPosterior q(o.setup.network, problem.shape(), rng, problem.name());
    q.set_problem_definition(problem.definition());
    const auto t0 = std::chrono::steady_clock::now();
    const nn::TrainingSummary s = q.train(data, o.setup.training, rng, nn::log_every_tenth(std::cerr, "latency: "));
    std::cout << "latency only (no labels, no gates): trained " << data.size() << " pairs in "
              << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() << " s: " << s.brief_report() << "\n";
    q.save(path);
    print_per_event_cost(path, o, seed);
    return 0;
  }
  const auto r = cycle::run_predictor_step(model, o, rng, path, std::cerr);
  std::cout << "seed " << seed << ": " << (r.promoted() ? "PROMOTED" : "refused") << "; simulate "
            << r.simulate_seconds << " s, label " << r.label_seconds << " s, train " << r.train_seconds << " s, validate " << r.validate_seconds
            << " s\n  " << r.gate_line() << "\n  training: " << r.training_message << "\n";
  if (r.validated) {
    for (const auto& j : r.validation.decision.adjoint_calibration.jacobians) {
      std::cout << "  " << j.name << ": probe max " << j.max_probe_error << " mean " << j.mean_probe_error << " rho "
                << j.relative_operator_norm_difference << "; jvp/vjp dot-product error fast "
                << j.fast_dot_product.relative_error << (j.fast_dot_product.passed ? "" : " FAIL") << ", oracle "
                << j.oracle_dot_product.relative_error << (j.oracle_dot_product.passed ? "" : " FAIL") << "\n";
    }
    const auto& a = r.validation.decision.agreement;
    std::cout << "  agreement: median spread " << a.spread_ratio_median << ", mean d " << a.mean_difference
              << ", |d| quantiles " << a.abs_difference_quantiles.transpose() << "\n";
  }
  if (r.training_ok) print_per_event_cost(path, o, seed);
  return 0;
}
