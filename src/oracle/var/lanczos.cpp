#include "varflow/var/lanczos.h"

#include <Eigen/Eigenvalues>
#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
#include <vector>

#include "varflow/core/error.h"
#include "varflow/core/random.h"

namespace varflow {

namespace {

// Rows of a tall basis per block of the products below: a block of 2048 x (a few dozen) columns
// stays in cache, so each product reads the basis from memory once and needs no workspace beyond a
// block (a whole-matrix product packs the basis into a workspace as large as itself, and Eigen's
// matrix-vector kernel re-reads the result vector once per few columns).
constexpr Index kRowBlock = 2048;

// v * y (n x c times c x k), block of rows by block of rows.
Matrix times_by_row_blocks(const Eigen::Ref<const Matrix>& v, const Eigen::Ref<const Matrix>& y) {
  Matrix out(v.rows(), y.cols());
  for (Index r = 0; r < v.rows(); r += kRowBlock) {
    const Index b = std::min(kRowBlock, v.rows() - r);
    out.middleRows(r, b).noalias() = v.middleRows(r, b) * y;
  }
  return out;
}

// w -= v * h, block of rows by block of rows.
void subtract_by_row_blocks(const Eigen::Ref<const Matrix>& v, const Vector& h, Vector& w) {
  for (Index r = 0; r < v.rows(); r += kRowBlock) {
    const Index b = std::min(kRowBlock, v.rows() - r);
    w.segment(r, b).noalias() -= v.middleRows(r, b) * h;
  }
}

// Two passes of classical Gram-Schmidt of w against the orthonormal columns of v; returns the summed
// coefficients (V^T w before the passes, to round-off). The Lanczos class keeps its own whole-matrix
// form of the same passes, whose bits the default solvers' results depend on.
Vector orthogonalise_twice(const Eigen::Ref<const Matrix>& v, Vector& w) {
  Vector h = v.transpose() * w;
  subtract_by_row_blocks(v, h, w);
  const Vector h2 = v.transpose() * w;
  subtract_by_row_blocks(v, h2, w);
  return h + h2;
}

}  // namespace

Lanczos::Lanczos(LinearOperator a, const Vector& start, Index max_vectors)
    : a_(std::move(a)), max_vectors_(max_vectors) {
  assert(max_vectors >= 1);
  const double norm = start.norm();
  assert(norm > 0.0 && std::isfinite(norm));
  v_.resize(start.size(), max_vectors + 1);
  v_.col(0) = start / norm;
  alpha_ = Vector::Zero(max_vectors);
  beta_ = Vector::Zero(max_vectors + 1);
}

bool Lanczos::step(double breakdown_tolerance) {
  if (j_ >= max_vectors_ || breakdown_ || non_finite_) return false;
  Vector w = a_(v_.col(j_));
  if (w.size() != v_.rows() || !w.allFinite()) {
    non_finite_ = true;
    return false;
  }
  if (j_ > 0) w -= beta_[j_] * v_.col(j_ - 1);
  const double alpha = v_.col(j_).dot(w);
  w -= alpha * v_.col(j_);
  // Full reorthogonalisation, twice ("twice is enough", Giraud et al. 2005).
  for (int pass = 0; pass < 2; ++pass) {
    const Vector c = v_.leftCols(j_ + 1).transpose() * w;
    w -= v_.leftCols(j_ + 1) * c;
  }
  const double beta = w.norm();
  alpha_[j_] = alpha;
  beta_[j_ + 1] = beta;
  t_norm_ = std::max(t_norm_, std::abs(alpha) + beta + beta_[j_]);
  ++j_;
  if (!(beta > breakdown_tolerance * t_norm_)) {
    breakdown_ = true;
  } else {
    v_.col(j_) = w / beta;
  }
  return true;
}

void Lanczos::reserve(Index max_vectors) {
  if (max_vectors <= max_vectors_) return;
  v_.conservativeResize(Eigen::NoChange, max_vectors + 1);
  alpha_.conservativeResize(max_vectors);
  beta_.conservativeResize(max_vectors + 1);
  alpha_.tail(max_vectors - max_vectors_).setZero();
  beta_.tail(max_vectors - max_vectors_).setZero();
  max_vectors_ = max_vectors;
}

bool Lanczos::restart(const Vector& candidate) {
  if (!breakdown_ || non_finite_ || j_ >= max_vectors_ || j_ >= v_.rows()) return false;
  if (candidate.size() != v_.rows() || !candidate.allFinite()) return false;
  const double scale = candidate.norm();
  if (!(scale > 0.0)) return false;
  Vector w = candidate;
  for (int pass = 0; pass < 2; ++pass) {
    const Vector c = v_.leftCols(j_).transpose() * w;
    w -= v_.leftCols(j_) * c;
  }
  const double norm = w.norm();
  if (!(norm > 1e-8 * scale)) return false;
  v_.col(j_) = w / norm;
  beta_[j_] = 0.0;  // T_j block diagonal: the new block is uncoupled from the invariant one
  breakdown_ = false;
  ++restarts_;
  return true;
}

Index Lanczos::extend(Index target, Rng& rng) {
  target = std::min<Index>(target, v_.rows());
  reserve(target);
  // A candidate in the span of the basis is unlucky but possible; a few draws settle it.
  int misses = 0;
  while (j_ < target && !non_finite_) {
    if (step()) continue;
    if (!breakdown_) break;
    if (restart(rng.normal_vector(v_.rows()))) {
      misses = 0;
    } else if (++misses > 4) {
      break;
    }
  }
  return j_;
}

Matrix Lanczos::tridiagonal() const {
  Matrix t = Matrix::Zero(j_, j_);
  for (Index i = 0; i < j_; ++i) {
    t(i, i) = alpha_[i];
    if (i + 1 < j_) t(i, i + 1) = t(i + 1, i) = beta_[i + 1];
  }
  return t;
}

void Lanczos::ritz_pairs(Vector* values, Matrix* vectors, Vector* residuals, Index leading) const {
  if (j_ == 0) {
    if (values) values->resize(0);
    if (vectors) vectors->resize(v_.rows(), 0);
    if (residuals) residuals->resize(0);
    return;
  }
  Eigen::SelfAdjointEigenSolver<Matrix> es;
  const Vector diag = alpha_.head(j_);
  const Vector sub = beta_.segment(1, j_ - 1);
  es.computeFromTridiagonal(diag, sub, Eigen::ComputeEigenvectors);
  if (values) *values = es.eigenvalues();
  if (vectors) {
    const Index count = leading < 0 ? j_ : std::min(leading, j_);
    *vectors = times_by_row_blocks(v_.leftCols(j_), es.eigenvectors().rightCols(count));
  }
  if (residuals) residuals->noalias() = (beta_[j_] * es.eigenvectors().row(j_ - 1).transpose()).cwiseAbs();
}

namespace {

// Eigenvalues (ascending) of the symmetric tridiagonal matrix with diagonal d and off-diagonal e
// (e[i] couples i and i + 1; e has the size of d, its last entry unused), and the last component of
// each unit eigenvector. Implicit QL with Wilkinson shifts (tql2: Bowdler, Martin, Reinsch &
// Wilkinson 1968, Numer. Math. 11), applying each rotation to the last row of the eigenvector matrix
// only. False when an eigenvalue takes more than 60 sweeps (never seen; the caller falls back).
bool tridiagonal_eigen_last_row(Vector d, Vector e, Vector* values, Vector* last) {
  const Index n = d.size();
  const double eps = std::numeric_limits<double>::epsilon();
  Vector z = Vector::Zero(n);
  z[n - 1] = 1.0;
  e[n - 1] = 0.0;
  for (Index l = 0; l < n; ++l) {
    int sweeps = 0;
    Index m = l;
    do {
      for (m = l; m < n - 1; ++m) {
        if (std::abs(e[m]) <= eps * (std::abs(d[m]) + std::abs(d[m + 1]))) break;
      }
      if (m == l) break;
      if (++sweeps > 60) return false;
      double g = (d[l + 1] - d[l]) / (2.0 * e[l]);
      double r = std::hypot(g, 1.0);
      g = d[m] - d[l] + e[l] / (g + std::copysign(r, g));
      double s = 1.0, c = 1.0, p = 0.0;
      Index i = m - 1;
      for (; i >= l; --i) {
        double f = s * e[i];
        const double b = c * e[i];
        r = std::hypot(f, g);
        e[i + 1] = r;
        if (r == 0.0) {  // underflow: deflate and sweep again
          d[i + 1] -= p;
          e[m] = 0.0;
          break;
        }
        s = f / r;
        c = g / r;
        g = d[i + 1] - p;
        r = (d[i] - g) * s + 2.0 * c * b;
        p = s * r;
        d[i + 1] = g + p;
        g = c * r - b;
        f = z[i + 1];
        z[i + 1] = s * z[i] + c * f;
        z[i] = c * z[i] - s * f;
      }
      if (r == 0.0 && i >= l) continue;
      d[l] -= p;
      e[l] = g;
      e[m] = 0.0;
    } while (m != l);
  }
  std::vector<Index> order(static_cast<std::size_t>(n));
  for (Index i = 0; i < n; ++i) order[static_cast<std::size_t>(i)] = i;
  std::sort(order.begin(), order.end(), [&d](Index a, Index b) { return d[a] < d[b]; });
  values->resize(n);
  last->resize(n);
  for (Index i = 0; i < n; ++i) {
    (*values)[i] = d[order[static_cast<std::size_t>(i)]];
    (*last)[i] = z[order[static_cast<std::size_t>(i)]];
  }
  return true;
}

}  // namespace

void Lanczos::ritz_values(Vector* values, Vector* residuals) const {
  if (j_ == 0) {
    values->resize(0);
    residuals->resize(0);
    return;
  }
  Vector e = Vector::Zero(j_);
  e.head(j_ - 1) = beta_.segment(1, j_ - 1);
  Vector last;
  if (!tridiagonal_eigen_last_row(alpha_.head(j_), e, values, &last)) {
    ritz_pairs(values, nullptr, residuals);
    return;
  }
  *residuals = (beta_[j_] * last).cwiseAbs();
}

void LanczosSolveOptions::validate() const {
  std::string e;
  if (max_iterations < 1) e = format_message("max_iterations = ", max_iterations, " must be at least 1");
  else if (!(relative_tolerance >= 0.0 && relative_tolerance < 1.0))
    e = format_message("relative_tolerance = ", relative_tolerance, " must be in [0, 1)");
  if (!e.empty()) throw InvalidArgument(e);
}

namespace {

// Solves T y = rhs for the SPD tridiagonal T (diag a, off-diagonal b) by LDL^T; false when a pivot is
// not positive (T, hence A, is not positive definite).
bool tridiagonal_solve(const Eigen::Ref<const Vector>& a, const Eigen::Ref<const Vector>& b, const Vector& rhs,
                       Vector& y) {
  const Index j = a.size();
  Vector d(j), l(j > 0 ? j - 1 : 0), z(j);
  for (Index i = 0; i < j; ++i) {
    d[i] = a[i] - (i > 0 ? l[i - 1] * b[i - 1] : 0.0);
    if (!(d[i] > 0.0) || !std::isfinite(d[i])) return false;
    if (i + 1 < j) l[i] = b[i] / d[i];
    z[i] = rhs[i] - (i > 0 ? l[i - 1] * z[i - 1] : 0.0);
  }
  y.resize(j);
  for (Index i = j - 1; i >= 0; --i) y[i] = z[i] / d[i] - (i + 1 < j ? l[i] * y[i + 1] : 0.0);
  return true;
}

}  // namespace

LanczosSolveResult lanczos_solve(const LinearOperator& a, const Vector& b, const LanczosSolveOptions& options,
                                 std::unique_ptr<Lanczos>* process) {
  if (process) process->reset();
  with_context("lanczos_solve", [&] { options.validate(); });
  check_finite("lanczos_solve", "b", b);
  LanczosSolveResult result;
  const double b_norm = b.norm();
  if (b_norm == 0.0) {
    result.x = Vector::Zero(b.size());
    result.converged = true;
    result.message = "zero right-hand side";
    result.ritz_vectors.resize(b.size(), 0);
    return result;
  }
  const Index max_vectors = std::min<Index>(options.max_iterations, b.size());
  auto owned = std::make_unique<Lanczos>(a, b, max_vectors);
  Lanczos& lz = *owned;
  Vector y;
  Vector rhs;
  while (lz.step()) {
    const Index j = lz.size();
    rhs = Vector::Zero(j);
    rhs[0] = b_norm;
    if (!tridiagonal_solve(lz.alpha(), lz.beta(), rhs, y)) {
      result.numerical_failure = true;
      result.message = format_message("the Lanczos matrix T_", j, " is not positive definite (the operator is not SPD)");
      break;
    }
    result.iterations = static_cast<int>(j);
    result.relative_residual = lz.broke_down() ? 0.0 : lz.next_beta() * std::abs(y[j - 1]) / b_norm;
    if (lz.broke_down() || result.relative_residual <= options.relative_tolerance) {
      result.converged = true;
      result.message = lz.broke_down() ? "invariant Krylov subspace (exact solution)"
                                       : format_message("relative residual ", result.relative_residual, " <= ",
                                                        options.relative_tolerance);
      break;
    }
  }
  if (lz.non_finite()) {
    result.numerical_failure = true;
    result.message = format_message("the operator returned a non-finite vector at iteration ", lz.size() + 1);
  } else if (!result.converged && !result.numerical_failure) {
    result.message = format_message("relative residual ", result.relative_residual, " > ", options.relative_tolerance,
                                    " after ", lz.size(), " iterations");
  }
  if (result.numerical_failure || y.size() != lz.size()) {
    // Keep the last consistent iterate (or zero).
    if (y.size() != lz.size()) y = Vector::Zero(lz.size());
  }
  result.x = lz.basis() * y;
  if (!result.numerical_failure && options.ritz_pairs) lz.ritz_pairs(&result.ritz_values, &result.ritz_vectors);
  if (process) *process = std::move(owned);
  return result;
}

LanczosSolveResult conjugate_gradient(const LinearOperator& a, const Vector& b, const LanczosSolveOptions& options) {
  with_context("conjugate_gradient", [&] { options.validate(); });
  check_finite("conjugate_gradient", "b", b);
  LanczosSolveResult result;
  const double b_norm = b.norm();
  result.x = Vector::Zero(b.size());
  if (b_norm == 0.0) {
    result.converged = true;
    result.message = "zero right-hand side";
    return result;
  }
  Vector r = b, p = b;
  double rr = b_norm * b_norm;
  const int max_iterations = static_cast<int>(std::min<Index>(options.max_iterations, 10 * b.size()));
  for (int it = 1; it <= max_iterations; ++it) {
    const Vector ap = a(p);
    if (ap.size() != b.size() || !ap.allFinite()) {
      result.numerical_failure = true;
      result.message = format_message("the operator returned a non-finite vector at iteration ", it);
      return result;
    }
    const double curvature = p.dot(ap);
    if (!(curvature > 0.0) || !std::isfinite(curvature)) {
      result.numerical_failure = true;
      result.message = format_message("p^T A p = ", curvature, " at iteration ", it,
                                      ": the operator is not positive definite (not SPD)");
      return result;
    }
    const double step = rr / curvature;
    result.x += step * p;
    r -= step * ap;
    const double rr_next = r.squaredNorm();
    result.iterations = it;
    result.relative_residual = std::sqrt(rr_next) / b_norm;
    if (result.relative_residual <= options.relative_tolerance) {
      result.converged = true;
      result.message = format_message("relative residual ", result.relative_residual, " <= ", options.relative_tolerance);
      return result;
    }
    p = r + (rr_next / rr) * p;
    rr = rr_next;
  }
  result.message = format_message("relative residual ", result.relative_residual, " > ", options.relative_tolerance,
                                  " after ", result.iterations, " iterations");
  return result;
}

void LanczosEigenOptions::validate() const {
  std::string e;
  if (rank < 1) e = format_message("rank = ", rank, " must be at least 1");
  else if (max_iterations < rank)
    e = format_message("max_iterations = ", max_iterations, " must be at least rank = ", rank);
  else if (!(tolerance > 0.0 && tolerance < 1.0)) e = format_message("tolerance = ", tolerance, " must be in (0, 1)");
  else if (max_basis != 0 && max_basis < rank + 2)
    e = format_message("max_basis = ", max_basis, " must be 0 (no restart) or at least rank + 2 = ", rank + 2);
  if (!e.empty()) throw InvalidArgument(e);
}

namespace {

// The thick-restart process of LanczosEigenOptions::max_basis. The basis V (n x (m + 1)) is kept
// orthonormal by two passes of classical Gram-Schmidt, whose coefficients give the projected matrix
// T = V^T A V column by column: tridiagonal after a fresh start, an arrowhead (the kept Ritz values
// on the diagonal, coupled to the residual vector) after a restart. A V_j = V_j T_j + beta v_{j+1}
// e_j^T holds throughout, so the residual of a Ritz pair (theta, V_j y) is beta |y_j|.
LanczosEigenResult thick_restart_eigenpairs(const LinearOperator& a, Index n, const LanczosEigenOptions& options) {
  LanczosEigenResult result;
  const Index k = std::min<Index>(options.rank, n);
  const Index m = options.max_basis;
  const Index keep = k + (m - k) / 2;  // Ritz vectors kept at a restart (< m)
  // A convergence check is a dense eigensolve of T_j (O(m^3)): every few steps, and before a restart.
  const Index check_every = std::max<Index>(1, (m - keep) / 4);
  Rng rng(options.seed);
  Matrix v(n, m + 1);
  Matrix t = Matrix::Zero(m, m);
  Vector start = rng.normal_vector(n);
  v.col(0) = start / start.norm();
  Index j = 0;           // columns of V whose product with A is in T
  double beta = 0.0;     // coupling of v_j to v_{j-1}: the residual norm of the current projection
  double t_norm = 0.0;
  bool exact = false;    // the basis spans an invariant subspace
  Eigen::SelfAdjointEigenSolver<Matrix> es;  // eigenpairs of T_j after solve_projection()
  auto solve_projection = [&]() { es.compute(t.topLeftCorner(j, j)); };
  auto leading_converged = [&]() {  // from es, which must hold T_j's eigenpairs
    const Vector& theta = es.eigenvalues();
    const double scale = std::max(std::abs(theta[0]), std::abs(theta[j - 1]));
    for (Index i = j - std::min(k, j); i < j; ++i) {
      if (beta * std::abs(es.eigenvectors()(j - 1, i)) > options.tolerance * scale) return false;
    }
    return true;
  };
  bool done = false;
  while (result.iterations < options.max_iterations) {
    Vector w = a(v.col(j));
    ++result.iterations;
    if (w.size() != n || !w.allFinite()) {
      result.numerical_failure = true;
      result.message = format_message("the operator returned a non-finite vector at iteration ", result.iterations);
      return result;
    }
    const Vector h = orthogonalise_twice(v.leftCols(j + 1), w);
    // Column j of T; the kept block of a restart (diagonal) is not recomputed.
    t.col(j).head(j + 1) = h;
    t.row(j).head(j + 1) = h.transpose();
    beta = w.norm();
    t_norm = std::max(t_norm, h.cwiseAbs().sum() + beta);
    ++j;
    if (!(beta > 1e-12 * t_norm)) {
      // Invariant subspace: its Ritz pairs are exact. Fewer than k of them (a repeated eigenvalue):
      // continue from a random vector orthogonal to the basis, uncoupled (beta = 0).
      beta = 0.0;
      if (j >= k || j >= n) {
        exact = true;
        done = true;
        break;
      }
      w = rng.normal_vector(n);
      orthogonalise_twice(v.leftCols(j), w);
      if (!(w.norm() > 1e-8)) break;
      w /= w.norm();
    } else {
      w /= beta;
    }
    v.col(j) = w;
    if (j >= k && ((j - k) % check_every == 0 || j == m)) {
      solve_projection();
      if (leading_converged()) {
        done = true;
        break;
      }
    }
    if (j == m) {
      // Restart: the `keep` leading Ritz vectors (es holds T_m's eigenpairs: j == m >= k + 2 was
      // checked above), then the residual vector v_{m+1}.
      v.leftCols(keep) = times_by_row_blocks(v.leftCols(m), es.eigenvectors().rightCols(keep));
      v.col(keep) = v.col(m);
      t.setZero();
      t.diagonal().head(keep) = es.eigenvalues().tail(keep);
      j = keep;
    }
  }
  solve_projection();
  if (!done) done = leading_converged();
  const Index kk = std::min(k, j);
  result.values = es.eigenvalues().tail(kk).reverse();
  result.vectors = times_by_row_blocks(v.leftCols(j), es.eigenvectors().rightCols(kk).rowwise().reverse());
  result.residuals.resize(kk);
  for (Index i = 0; i < kk; ++i) result.residuals[i] = beta * std::abs(es.eigenvectors()(j - 1, j - 1 - i));
  result.converged = done;
  result.message = done ? (exact ? "invariant Krylov subspace (exact Ritz pairs)"
                                 : format_message(kk, " leading Ritz pairs converged (thick restart, ", m, " vectors)"))
                        : format_message("not all of the ", kk, " leading Ritz pairs converged after ", result.iterations,
                                         " operator applications (thick restart, ", m, " vectors)");
  return result;
}

}  // namespace

LanczosEigenResult lanczos_eigenpairs(const LinearOperator& a, Index n, const LanczosEigenOptions& options) {
  with_context("lanczos_eigenpairs", [&] { options.validate(); });
  check_at_least("lanczos_eigenpairs", "n", n, 1);
  if (options.max_basis > 0 && options.max_basis < std::min<Index>(options.max_iterations, n)) {
    return thick_restart_eigenpairs(a, n, options);
  }
  LanczosEigenResult result;
  const Index k = std::min<Index>(options.rank, n);
  const Index max_vectors = std::min<Index>(options.max_iterations, n);
  Rng rng(options.seed);
  Lanczos lz(a, rng.normal_vector(n), max_vectors);
  Vector values, residuals;
  Matrix vectors;
  auto converged = [&]() {
    lz.ritz_values(&values, &residuals);
    const Index j = values.size();
    const Index kk = std::min(k, j);
    const double scale = std::max(std::abs(values[j - 1]), std::abs(values[0]));
    for (Index i = j - kk; i < j; ++i) {
      if (residuals[i] > options.tolerance * scale) return false;
    }
    return true;
  };
  bool done = false;
  for (;;) {
    if (!lz.step()) {
      // Breakdown before k vectors: the Krylov space is invariant (e.g. a repeated eigenvalue) but
      // holds fewer than k pairs; continue, deflated, from a random vector orthogonal to it.
      if (lz.broke_down() && lz.size() < k && lz.restart(rng.normal_vector(n))) continue;
      break;
    }
    // Checking costs O(j^2) (ritz_values); do it once k vectors exist.
    if (lz.size() >= k && (lz.broke_down() || converged())) {
      done = true;
      break;
    }
  }
  result.iterations = static_cast<int>(lz.size());
  if (lz.non_finite()) {
    result.numerical_failure = true;
    result.message = format_message("the operator returned a non-finite vector at iteration ", lz.size() + 1);
    return result;
  }
  if (lz.size() == 0) return result;
  if (!done) done = converged();
  lz.ritz_pairs(&values, &vectors, &residuals, k);
  const Index j = values.size();
  const Index kk = std::min(k, j);
  result.values = values.tail(kk).reverse();
  result.vectors = vectors.rightCols(kk).rowwise().reverse();
  result.residuals = residuals.tail(kk).reverse();
  result.converged = done;
  result.message = done ? (lz.broke_down() ? "invariant Krylov subspace (exact Ritz pairs)"
                                           : format_message(kk, " leading Ritz pairs converged"))
                        : format_message("not all of the ", kk, " leading Ritz pairs converged after ", lz.size(),
                                         " iterations");
  return result;
}

}  // namespace varflow
