// Lanczos-CG and the Lanczos eigensolver against dense linear algebra; failure reporting.
#include <gtest/gtest.h>

#include <Eigen/Eigenvalues>

#include "problems.h"
#include "varflow/core/error.h"
#include "varflow/testing/conformance.h"
#include "varflow/var/lanczos.h"

namespace varflow {
namespace {

constexpr std::uint64_t kSeed = 2101;

TEST(LanczosSolve, MatchesDenseSolveAndKeepsAnOrthonormalBasis) {
  Rng rng = testing::seeded_rng(kSeed);
  const Index n = 30;
  const Matrix a = Matrix::Identity(n, n) + test::random_spd(rng, n, 5.0);
  const Vector b = rng.normal_vector(n);
  const LanczosSolveResult r = lanczos_solve([&a](const Vector& x) { return Vector(a * x); }, b, {200, 1e-12});
  ASSERT_TRUE(r.converged) << r.message;
  const Vector exact = a.llt().solve(b);
  EXPECT_LT(test::relative_error(r.x, exact), 1e-10);
  EXPECT_LE(r.iterations, n);
  // The Ritz pairs at convergence on the full space are the eigenpairs of A.
  ASSERT_EQ(r.ritz_vectors.cols(), r.iterations);
  const Matrix vtv = r.ritz_vectors.transpose() * r.ritz_vectors;
  EXPECT_LT((vtv - Matrix::Identity(vtv.rows(), vtv.cols())).cwiseAbs().maxCoeff(), 1e-12);
  if (r.iterations == n) {
    const Eigen::SelfAdjointEigenSolver<Matrix> es(a);
    EXPECT_LT((r.ritz_values - es.eigenvalues()).cwiseAbs().maxCoeff(), 1e-10 * es.eigenvalues().maxCoeff());
  }
}

TEST(LanczosSolve, LowRankPlusIdentityConvergesInRankPlusOneIterations) {
  Rng rng = testing::seeded_rng(kSeed + 1);
  const Index n = 50, k = 6;
  const Matrix u = test::random_matrix(rng, n, k);
  const Matrix a = Matrix::Identity(n, n) + u * u.transpose();
  const LanczosSolveResult r =
      lanczos_solve([&a](const Vector& x) { return Vector(a * x); }, rng.normal_vector(n), {200, 1e-14});
  EXPECT_TRUE(r.converged) << r.message;
  EXPECT_LE(r.iterations, k + 1);
  // The Ritz values above 1 are exactly the nonzero eigenvalues of U U^T plus one.
  const Eigen::SelfAdjointEigenSolver<Matrix> es(u.transpose() * u);
  const Vector top = r.ritz_values.tail(k);
  EXPECT_LT(((top.array() - 1.0).matrix() - es.eigenvalues()).cwiseAbs().maxCoeff(), 1e-9 * es.eigenvalues().maxCoeff());
}

TEST(LanczosSolve, ReportsIterationLimitAndNonSpdOperators) {
  Rng rng = testing::seeded_rng(kSeed + 2);
  const Index n = 40;
  const Matrix a = Matrix::Identity(n, n) + test::random_spd(rng, n, 100.0);
  const LanczosSolveResult limited = lanczos_solve([&a](const Vector& x) { return Vector(a * x); }, rng.normal_vector(n), {3, 1e-12});
  EXPECT_FALSE(limited.converged);
  EXPECT_FALSE(limited.numerical_failure);
  EXPECT_EQ(limited.iterations, 3);
  const Matrix indefinite = -a;
  const LanczosSolveResult bad =
      lanczos_solve([&indefinite](const Vector& x) { return Vector(indefinite * x); }, rng.normal_vector(n));
  EXPECT_TRUE(bad.numerical_failure);
  EXPECT_NE(bad.message.find("not positive definite"), std::string::npos) << bad.message;
  const LanczosSolveResult nan =
      lanczos_solve([](const Vector& x) { return Vector(Vector::Constant(x.size(), NAN)); }, rng.normal_vector(n));
  EXPECT_TRUE(nan.numerical_failure);
  EXPECT_THROW(lanczos_solve([](const Vector& x) { return x; }, Vector::Ones(3), {0, 1e-8}), InvalidArgument);
  const LanczosSolveResult zero = lanczos_solve([](const Vector& x) { return x; }, Vector::Zero(3));
  EXPECT_TRUE(zero.converged);
  EXPECT_EQ(zero.x.norm(), 0.0);
}

TEST(ConjugateGradient, MatchesDenseSolveAndReportsFailures) {
  Rng rng = testing::seeded_rng(kSeed + 10);
  const Index n = 30;
  const Matrix a = Matrix::Identity(n, n) + test::random_spd(rng, n, 5.0);
  const Vector b = rng.normal_vector(n);
  const LinearOperator op = [&a](const Vector& x) { return Vector(a * x); };
  const LanczosSolveResult r = conjugate_gradient(op, b, {200, 1e-12});
  ASSERT_TRUE(r.converged) << r.message;
  EXPECT_LT(test::relative_error(r.x, a.llt().solve(b)), 1e-10);
  EXPECT_LE((b - a * r.x).norm(), 1.01e-12 * b.norm() + 1e-14);
  EXPECT_EQ(r.ritz_vectors.cols(), 0);
  // Same iterates as Lanczos-CG in exact arithmetic: same count on this well-conditioned system.
  EXPECT_NEAR(r.iterations, lanczos_solve(op, b, {200, 1e-12}).iterations, 2);
  const LanczosSolveResult limited = conjugate_gradient(op, b, {3, 1e-12});
  EXPECT_FALSE(limited.converged);
  EXPECT_FALSE(limited.numerical_failure);
  EXPECT_EQ(limited.iterations, 3);
  const Matrix indefinite = -a;
  const LanczosSolveResult bad = conjugate_gradient([&indefinite](const Vector& x) { return Vector(indefinite * x); }, b);
  EXPECT_TRUE(bad.numerical_failure);
  EXPECT_NE(bad.message.find("not positive definite"), std::string::npos) << bad.message;
  const LanczosSolveResult nan = conjugate_gradient([](const Vector& x) { return Vector(Vector::Constant(x.size(), NAN)); }, b);
  EXPECT_TRUE(nan.numerical_failure);
  EXPECT_THROW(conjugate_gradient(op, Vector::Ones(3), {0, 1e-8}), InvalidArgument);
  const LanczosSolveResult zero = conjugate_gradient(op, Vector::Zero(n));
  EXPECT_TRUE(zero.converged);
  EXPECT_EQ(zero.x.norm(), 0.0);
}

// ritz_values (last row of the eigenvector matrix only, O(j^2)) against the full eigensolve of
// ritz_pairs, on a spread spectrum and on a clustered one (identity plus low rank, where Ritz values
// converge to repeated eigenvalues); and ritz_pairs' leading vectors against all of them.
TEST(Lanczos, RitzValuesAndResidualsMatchTheFullEigensolve) {
  Rng rng = testing::seeded_rng(kSeed + 11);
  const Index n = 80;
  const Matrix u = test::random_matrix(rng, n, 6);
  for (const Matrix& a : {Matrix(Matrix::Identity(n, n) + test::random_spd(rng, n, 50.0)),
                          Matrix(Matrix::Identity(n, n) + u * u.transpose())}) {
    Lanczos lz([&a](const Vector& x) { return Vector(a * x); }, rng.normal_vector(n), 40);
    while (lz.step()) {
      Vector values, residuals, full_values, full_residuals;
      lz.ritz_values(&values, &residuals);
      lz.ritz_pairs(&full_values, nullptr, &full_residuals);
      const double scale = full_values.cwiseAbs().maxCoeff();
      ASSERT_EQ(values.size(), lz.size());
      EXPECT_LT((values - full_values).cwiseAbs().maxCoeff(), 1e-12 * scale) << "j = " << lz.size();
      EXPECT_LT((residuals - full_residuals).cwiseAbs().maxCoeff(), 1e-10 * scale) << "j = " << lz.size();
    }
    Vector values;
    Matrix all, leading;
    lz.ritz_pairs(&values, &all);
    lz.ritz_pairs(&values, &leading, nullptr, 5);
    ASSERT_EQ(leading.cols(), 5);
    EXPECT_LT((leading - all.rightCols(5)).cwiseAbs().maxCoeff(), 1e-14);
  }
}

// Thick restart with a basis of a few vectors more than the rank reaches the same leading pairs as
// the dense eigensolver on a decaying spectrum (many restarts), and the requested rank on a
// repeated eigenvalue (breakdown, then deflated continuation).
TEST(LanczosEigenpairs, ThickRestartFindsTheLeadingPairsInABoundedBasis) {
  Rng rng = testing::seeded_rng(kSeed + 12);
  const Index n = 300, k = 6;
  const Matrix q = Eigen::HouseholderQR<Matrix>(test::random_matrix(rng, n, n)).householderQ();
  Vector spectrum(n);
  for (Index i = 0; i < n; ++i) spectrum[i] = 100.0 * std::pow(0.97, static_cast<double>(i));
  const Matrix a = q * spectrum.asDiagonal() * q.transpose();
  LanczosEigenOptions o;
  o.rank = k;
  o.max_basis = 2 * k + 1;
  o.max_iterations = 2000;
  const LanczosEigenResult r = lanczos_eigenpairs([&a](const Vector& x) { return Vector(a * x); }, n, o);
  ASSERT_TRUE(r.converged) << r.message;
  EXPECT_GT(r.iterations, o.max_basis) << "no restart happened";
  ASSERT_EQ(r.values.size(), k);
  EXPECT_LT((r.values - spectrum.head(k)).cwiseAbs().maxCoeff(), 1e-8 * spectrum[0]);
  EXPECT_LT((r.vectors.transpose() * r.vectors - Matrix::Identity(k, k)).cwiseAbs().maxCoeff(), 1e-10);
  for (Index i = 0; i < k; ++i) {
    const double residual = (a * r.vectors.col(i) - r.values[i] * r.vectors.col(i)).norm();
    EXPECT_LT(residual, 1e-8 * spectrum[0]) << "pair " << i;
    EXPECT_NEAR(r.residuals[i], residual, 1e-8 * spectrum[0]) << "pair " << i;
  }
  // Same pairs as the unrestarted process.
  LanczosEigenOptions plain = o;
  plain.max_basis = 0;
  const LanczosEigenResult p = lanczos_eigenpairs([&a](const Vector& x) { return Vector(a * x); }, n, plain);
  EXPECT_LT((r.values - p.values).cwiseAbs().maxCoeff(), 1e-8 * spectrum[0]);

  const Matrix twice = 2.0 * Matrix::Identity(40, 40);
  LanczosEigenOptions d;
  d.rank = 5;
  d.max_basis = 8;
  const LanczosEigenResult repeated = lanczos_eigenpairs([&twice](const Vector& x) { return Vector(twice * x); }, 40, d);
  ASSERT_TRUE(repeated.converged) << repeated.message;
  ASSERT_EQ(repeated.values.size(), 5);
  EXPECT_LT((repeated.values.array() - 2.0).abs().maxCoeff(), 1e-12);
  EXPECT_LT((repeated.vectors.transpose() * repeated.vectors - Matrix::Identity(5, 5)).cwiseAbs().maxCoeff(), 1e-10);
  d.max_basis = 6;
  EXPECT_THROW(lanczos_eigenpairs([&twice](const Vector& x) { return Vector(twice * x); }, 40, d), InvalidArgument);
}

TEST(LanczosEigenpairs, LeadingEigenpairsOfALowRankOperator) {
  Rng rng = testing::seeded_rng(kSeed + 3);
  const Index n = 80, k = 10;
  const Matrix u = test::random_matrix(rng, n, k);
  const Matrix a = u * u.transpose();
  LanczosEigenOptions o;
  o.rank = 5;
  const LanczosEigenResult r = lanczos_eigenpairs([&a](const Vector& x) { return Vector(a * x); }, n, o);
  ASSERT_TRUE(r.converged) << r.message;
  const Eigen::SelfAdjointEigenSolver<Matrix> es(a);
  const Vector expected = es.eigenvalues().tail(5).reverse();
  EXPECT_LT((r.values - expected).cwiseAbs().maxCoeff(), 1e-9 * expected[0]);
  for (Index i = 0; i < 5; ++i) {
    const Vector y = r.vectors.col(i);
    EXPECT_LT((a * y - r.values[i] * y).norm(), 1e-8 * expected[0]);
  }
  // Asking for more than the rank: the Krylov space is invariant after k + 1 vectors; the process
  // restarts, deflated, and returns the 20 pairs asked for, the k nonzero ones exact and the rest 0.
  o.rank = 20;
  const LanczosEigenResult all = lanczos_eigenpairs([&a](const Vector& x) { return Vector(a * x); }, n, o);
  EXPECT_TRUE(all.converged) << all.message;
  ASSERT_EQ(all.values.size(), 20);
  EXPECT_LE(all.iterations, 21);
  EXPECT_LT((all.values.head(k) - es.eigenvalues().tail(k).reverse()).cwiseAbs().maxCoeff(), 1e-9 * expected[0]);
  EXPECT_LT(all.values.tail(20 - k).cwiseAbs().maxCoeff(), 1e-9 * expected[0]);
  EXPECT_LT((all.vectors.transpose() * all.vectors - Matrix::Identity(20, 20)).norm(), 1e-10);
  o.rank = 0;
  EXPECT_THROW(lanczos_eigenpairs([](const Vector& x) { return x; }, 3, o), InvalidArgument);
}

// A = c I (one eigenvalue of multiplicity n): every Krylov space is invariant after one vector. The
// eigenpairs and the extension of a solve's process reach the requested number by deflated restarts.
TEST(LanczosEigenpairs, RepeatedEigenvalueReachesTheRequestedRankByRestarts) {
  const Index n = 30;
  const LinearOperator a = [](const Vector& x) { return Vector(2.5 * x); };
  LanczosEigenOptions o;
  o.rank = 12;
  const LanczosEigenResult r = lanczos_eigenpairs(a, n, o);
  ASSERT_TRUE(r.converged) << r.message;
  ASSERT_EQ(r.values.size(), 12);
  EXPECT_LT((r.values.array() - 2.5).abs().maxCoeff(), 1e-12);
  EXPECT_LT((r.vectors.transpose() * r.vectors - Matrix::Identity(12, 12)).norm(), 1e-12);
  std::unique_ptr<Lanczos> process;
  const LanczosSolveResult s = lanczos_solve(a, Vector::Ones(n), {}, &process);
  ASSERT_TRUE(s.converged);
  EXPECT_EQ(process->size(), 1);
  EXPECT_FALSE(process->restart(Vector::Ones(n)));  // in the span of the basis
  Rng rng(3);
  EXPECT_EQ(process->extend(n, rng), n);
  EXPECT_EQ(process->restarts(), n - 1);
  Vector values;
  Matrix vectors;
  process->ritz_pairs(&values, &vectors);
  EXPECT_LT((values.array() - 2.5).abs().maxCoeff(), 1e-12);
  EXPECT_LT((vectors.transpose() * vectors - Matrix::Identity(n, n)).norm(), 1e-12);
}

}  // namespace
}  // namespace varflow
