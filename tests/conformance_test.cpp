// Every built-in model, observation operator and covariance through the conformance suites.
#include "varflow/testing/conformance.h"

#include <Eigen/Eigenvalues>
#include <Eigen/SparseCore>

#include "test_states.h"
#include "varflow/covariance/covariances.h"
#include "varflow/model/linear_model.h"
#include "varflow/model/lorenz63.h"
#include "varflow/model/lorenz96.h"
#include "varflow/model/lorenz96_two_scale.h"
#include "varflow/obs/operators.h"

namespace varflow::testing {
namespace {

Vector lorenz96_state(Rng& rng) {
  const Lorenz96 model(40, 8.0, 0.05);
  return test::spun_up_state(model, Vector::Constant(40, 8.0), rng, 500);
}

// Both parameter sets of the two-scale model (Arnold et al. 2013; Rasp 2020), spun up 2 time units.
TwoScaleLorenz96Parameters rasp2020() {
  TwoScaleLorenz96Parameters p;
  p.k = 36;
  p.j = 10;
  p.forcing = 10.0;
  return p;
}

Vector two_scale_state(const TwoScaleLorenz96Parameters& p, Rng& rng) {
  const TwoScaleLorenz96 model(p);
  Vector x0 = Vector::Constant(model.state_size(), 0.1);
  x0.head(p.k).setConstant(p.forcing);
  return test::spun_up_state(model, x0, rng, 400);
}

Vector lorenz63_state(Rng& rng) {
  const Lorenz63 model;
  return test::spun_up_state(model, Vector::Constant(3, 1.0), rng, 1000);
}

Matrix random_matrix(Index rows, Index cols, std::uint64_t seed) {
  Rng rng(seed);
  Matrix a(rows, cols);
  for (Index j = 0; j < cols; ++j) a.col(j) = rng.normal_vector(rows);
  return a;
}

// A contraction-ish random matrix so that 50 steps stay O(1).
Matrix stable_matrix(Index n, std::uint64_t seed) {
  const Matrix a = random_matrix(n, n, seed);
  return a / (1.05 * a.operatorNorm());
}

Eigen::SparseMatrix<double> sparse_band(Index rows, Index cols) {
  Eigen::SparseMatrix<double> h(rows, cols);
  for (Index i = 0; i < rows; ++i) {
    h.insert(i, (2 * i) % cols) = 0.5;
    h.insert(i, (2 * i + 1) % cols) = 0.5;
  }
  return h;
}

INSTANTIATE_TEST_SUITE_P(
    Builtin, ModelConformance,
    ::testing::Values(
        ModelCase{"lorenz63", [] { return std::make_shared<Lorenz63>(); }, lorenz63_state},
        ModelCase{"lorenz96", [] { return std::make_shared<Lorenz96>(40, 8.0, 0.05); }, lorenz96_state},
        ModelCase{"lorenz96_two_scale_arnold2013", [] { return std::make_shared<TwoScaleLorenz96>(); },
                  [](Rng& rng) { return two_scale_state({}, rng); }},
        ModelCase{"lorenz96_two_scale_rasp2020", [] { return std::make_shared<TwoScaleLorenz96>(rasp2020()); },
                  [](Rng& rng) { return two_scale_state(rasp2020(), rng); }},
        ModelCase{"linear_dense", [] { return std::make_shared<LinearModel>(stable_matrix(12, 7)); },
                  [](Rng& rng) { return rng.normal_vector(12); }},
        ModelCase{"linear_sparse",
                  [] { return std::make_shared<LinearModel>(Eigen::SparseMatrix<double>(stable_matrix(8, 9).sparseView())); },
                  [](Rng& rng) { return rng.normal_vector(8); }},
        ModelCase{"advection_diffusion",
                  [] { return std::make_shared<AdvectionDiffusion1D>(64, 1.0, 0.1, 0.5, 1.0); },
                  [](Rng& rng) { return rng.normal_vector(64); }}),
    CaseName());

INSTANTIATE_TEST_SUITE_P(
    Builtin, ObservationOperatorConformance,
    ::testing::Values(
        ObservationOperatorCase{"identity", [] { return std::make_shared<IdentityObservation>(40); }, lorenz96_state},
        ObservationOperatorCase{"subset",
                                [] { return std::make_shared<SubsetObservation>(SubsetObservation::every(40, 3, 1)); },
                                lorenz96_state},
        ObservationOperatorCase{"linear_dense",
                                [] { return std::make_shared<LinearObservation>(random_matrix(7, 40, 11)); },
                                lorenz96_state},
        ObservationOperatorCase{"linear_sparse",
                                [] { return std::make_shared<LinearObservation>(sparse_band(15, 40)); },
                                lorenz96_state},
        ObservationOperatorCase{"arctan",
                                [] {
                                  return std::make_shared<ArctanObservation>(40, std::vector<Index>{0, 5, 9, 17, 33},
                                                                             4.0);
                                },
                                lorenz96_state}),
    CaseName());

Matrix spd_matrix(Index n, std::uint64_t seed) {
  const Matrix a = random_matrix(n, n, seed);
  return a * a.transpose() / static_cast<double>(n) + 0.5 * Matrix::Identity(n, n);
}

INSTANTIATE_TEST_SUITE_P(
    Builtin, CovarianceConformance,
    ::testing::Values(
        CovarianceCase{"diagonal",
                       [] { return std::make_shared<DiagonalCovariance>(Vector::LinSpaced(20, 0.1, 3.0)); }},
        CovarianceCase{"scaled_identity",
                       [] { return std::make_shared<DiagonalCovariance>(DiagonalCovariance::scaled_identity(40, 2.0)); }},
        CovarianceCase{"dense", [] { return std::make_shared<DenseCovariance>(spd_matrix(25, 5)); }},
        CovarianceCase{"periodic_gaussian",
                       [] { return std::make_shared<PeriodicGaussianCovariance>(40, 1.5, 2.0); },
                       // cond(C) ~ 4e8: inverse round-off ~ cond * 1e-16
                       CovarianceTolerances{.inverse = 1e-6}},
        CovarianceCase{"periodic_gaussian_nugget",
                       [] { return std::make_shared<PeriodicGaussianCovariance>(128, 0.5, 6.0, 0.5, 1e-3); }}),
    CaseName());

}  // namespace
}  // namespace varflow::testing
