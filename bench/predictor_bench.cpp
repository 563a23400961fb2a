// Step 5 of the cycle (design/cycle.md): trains and validates the amortized predictor with the given
// settings and prints the gate statistics and times. Run with OMP_NUM_THREADS=1.
//
//   varflow_predictor_bench [--seed S] [--forcing F] [--jacobian gauss-newton|map-differences]
//                           [--events N] [--oracle-check K] [key=value ...]
//
// key=value: any AmortizedSetup key (apply_entry), e.g. pairs=20000 training.epochs=40
// lorenz96.obs_stride=2; lorenz96.* keys set the step's problem. --forcing simulates the training
// pairs with Lorenz-96 of another forcing (a wrong model). --oracle-check K compares the oracle's
// Gauss-Newton J with central differences of its MAP at K events and exits.
#include <Eigen/Dense>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>

#include "report/oracles.h"
#include "varflow/amortized/problems.h"
#include "varflow/cycle/predictor_step.h"
#include "varflow/model/lorenz96.h"

using namespace varflow;

int main(int argc, char** argv) {
  cycle::PredictorStepOptions o;
  std::uint64_t seed = 1;
  double forcing = 0.0;
  Index oracle_check = 0, linear_check = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&] { return std::string(argv[++i]); };
    if (a == "--seed") {
      seed = std::stoull(next());
    } else if (a == "--forcing") {
      forcing = std::stod(next());
    } else if (a == "--jacobian") {
      o.validation.lorenz96_jacobian = report::oracle_jacobian_from_string(next());
    } else if (a == "--events") {
      o.validation.events = std::stol(next());
    } else if (a == "--linear-check") {
      linear_check = std::stol(next());
    } else if (a == "--oracle-check") {
      oracle_check = std::stol(next());
    } else {
      const auto eq = a.find('=');
      if (eq == std::string::npos) {
        std::cerr << "unknown argument " << a << "\n";
        return 2;
      }
      o.setup.lorenz96 = o.problem;
      amortized::apply_entry(o.setup, a.substr(0, eq), a.substr(eq + 1), "argument");
      o.problem = o.setup.lorenz96;
    }
  }
  o.validation.lorenz96 = o.problem;
  if (linear_check > 0) {
    // The best global linear map x ~ K y + k (least squares on 50000 physics pairs, missing = 0)
    // against the oracle's J at linear_check events: how far from linear the posterior mean is.
    const amortized::Lorenz96Problem problem(o.problem);
    Rng rng(seed);
    amortized::Dataset d = problem.simulate(50000, rng);
    Matrix y = d.y.array().isFinite().select(d.y, 0.0);
    Matrix a(y.rows() + 1, y.cols());
    a.topRows(y.rows()) = y;
    a.row(y.rows()).setOnes();
    const Matrix k = (a * a.transpose() + 1e-8 * Matrix::Identity(a.rows(), a.rows())).ldlt().solve(a * d.x.transpose()).transpose();
    report::ValidationOptions fd = o.validation;
    fd.lorenz96_jacobian = report::OracleJacobian::kMapDifferences;
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
    const amortized::Lorenz96Problem problem(o.problem);
    report::ValidationOptions gn = o.validation, fd = o.validation;
    gn.lorenz96_jacobian = report::OracleJacobian::kGaussNewton;
    fd.lorenz96_jacobian = report::OracleJacobian::kMapDifferences;
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
  if (forcing != 0.0) model = std::make_shared<Lorenz96>(o.problem.size, forcing, o.problem.dt);
  Rng rng(seed);
  const auto path = std::filesystem::temp_directory_path() / ("predictor_bench_" + std::to_string(seed) + ".nc");
  const auto r = cycle::run_predictor_step(model, o, rng, path, std::cerr);
  std::cout << "seed " << seed << ": " << (r.promoted() ? "PROMOTED" : "refused") << "; simulate "
            << r.simulate_seconds << " s, train " << r.train_seconds << " s, validate " << r.validate_seconds
            << " s\n  " << r.gate_line() << "\n  training: " << r.training_message << "\n";
  if (r.validated) {
    for (const auto& j : r.validation.decision.adjoint_calibration.jacobians) {
      std::cout << "  " << j.name << ": probe max " << j.max_probe_error << " mean " << j.mean_probe_error << " rho "
                << j.relative_operator_norm_difference << "\n";
    }
    const auto& a = r.validation.decision.agreement;
    std::cout << "  agreement: median spread " << a.spread_ratio_median << ", mean d " << a.mean_difference
              << ", |d| quantiles " << a.abs_difference_quantiles.transpose() << "\n";
  }
  return 0;
}
