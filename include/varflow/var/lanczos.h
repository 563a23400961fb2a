#pragma once
// Lanczos tridiagonalisation of a symmetric operator, and the two uses varflow makes of it:
//  - lanczos_solve: A x = b for symmetric positive definite A (the Lanczos form of conjugate gradients,
//    Paige & Saunders 1975, "Solution of sparse indefinite systems of linear equations", SINUM 12),
//    keeping the tridiagonal matrix so that its Ritz pairs give the spectrum of A on the Krylov space;
//  - lanczos_eigenpairs: the leading eigenpairs of a symmetric positive semi-definite A.
// Both use full reorthogonalisation (two passes of classical Gram-Schmidt against every Lanczos
// vector; Golub & Van Loan, Matrix Computations, 4th ed., section 10.1), so the basis stays
// orthonormal to round-off and no spurious copies of converged Ritz values appear. Memory is one
// n-vector per iteration. A is matrix-free: one application per iteration.
// conjugate_gradient solves the same systems by the Hestenes-Stiefel recurrences when no Ritz pairs
// are wanted: four n-vectors whatever the iteration count, and no reorthogonalisation.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "varflow/core/random.h"
#include "varflow/core/types.h"

namespace varflow {

using LinearOperator = std::function<Vector(const Vector&)>;

// The Lanczos process A V_j = V_j T_j + beta_{j+1} q_{j+1} e_j^T, V_j^T V_j = I.
class Lanczos {
 public:
  // `start` must be nonzero and finite (asserted); it is normalised to q_1.
  Lanczos(LinearOperator a, const Vector& start, Index max_vectors);

  // One iteration: adds alpha_j and beta_{j+1}. Returns false, doing nothing, once the process has
  // stopped: on breakdown (beta_{j+1} <= breakdown_tolerance * ||T||, an invariant subspace),
  // a non-finite A q_j, or max_vectors reached.
  bool step(double breakdown_tolerance = 1e-12);
  // Raises the limit on the number of Lanczos vectors (never lowers it), e.g. to extend the process
  // of a finished solve for more Ritz pairs.
  void reserve(Index max_vectors);
  Index max_vectors() const { return max_vectors_; }
  // Deflated restart after breakdown: when the process has found an invariant subspace and has room
  // for more vectors, `candidate` orthogonalised against every Lanczos vector becomes the next one
  // with beta = 0, so T_j becomes block diagonal and its Ritz pairs stay exact on the blocks found.
  // Returns false, doing nothing, when the process has not broken down, is full, or the candidate
  // lies (to round-off) in the span of the basis.
  bool restart(const Vector& candidate);
  // Steps the process (restarting after each breakdown with random vectors from `rng`) until it
  // holds min(target, dimension) vectors, a non-finite product occurs or every candidate is in the
  // span of the basis. Returns the number of vectors. Used to reach a requested rank whatever the
  // spectrum: a degenerate spectrum (e.g. A = c I) breaks a single Krylov space down after one vector.
  Index extend(Index target, Rng& rng);
  Index restarts() const { return restarts_; }     // deflated restarts so far

  Index size() const { return j_; }                // number of Lanczos vectors in V_j
  bool broke_down() const { return breakdown_; }   // invariant subspace found (the last step is exact)
  bool non_finite() const { return non_finite_; }  // A q produced NaN or Inf
  Eigen::Ref<const Matrix> basis() const { return v_.leftCols(j_); }  // V_j, n x j
  Eigen::Ref<const Vector> alpha() const { return alpha_.head(j_); }   // diag(T_j)
  // Off-diagonal beta_2 .. beta_j (size j - 1); next_beta() is beta_{j+1}.
  Eigen::Ref<const Vector> beta() const { return beta_.segment(1, j_ > 0 ? j_ - 1 : 0); }
  double next_beta() const { return j_ > 0 ? beta_[j_] : 0.0; }
  // T_j as a dense matrix.
  Matrix tridiagonal() const;
  // Ritz values (ascending) and Ritz vectors V_j S (orthonormal columns), and the residual norms
  // ||A y_i - theta_i y_i|| = beta_{j+1} |S_{j,i}|. With leading >= 0, *vectors holds only the Ritz
  // vectors of the `leading` largest values (its columns match values->tail(leading)): an n x leading
  // product instead of n x j.
  void ritz_pairs(Vector* values, Matrix* vectors, Vector* residuals = nullptr, Index leading = -1) const;
  // The Ritz values (ascending) and residual norms alone, in O(j^2): the implicit QL iteration on T_j
  // rotates only the last row of its eigenvector matrix (the row the residuals need), as ARPACK's
  // dstqrb does, instead of the j x j eigenvectors (O(j^3)). For convergence tests at every step.
  void ritz_values(Vector* values, Vector* residuals) const;

 private:
  LinearOperator a_;
  Matrix v_;       // n x (max_vectors + 1)
  Vector alpha_;   // size max_vectors
  Vector beta_;    // beta_[j] = beta_{j+1} in 1-based notation; beta_[0] = 0
  Index j_ = 0;
  Index max_vectors_;
  double t_norm_ = 0.0;
  Index restarts_ = 0;
  bool breakdown_ = false, non_finite_ = false;
};

struct LanczosSolveOptions {
  int max_iterations = 200;          // Krylov dimension limit (>= 1)
  double relative_tolerance = 1e-10; // stop when ||b - A x_j|| <= tol ||b||
  bool ritz_pairs = true;            // false: leave the result's Ritz pairs empty (saves an n x j product)
  void validate() const;  // InvalidArgument "<field> = <value> <rule>"
};

struct LanczosSolveResult {
  Vector x;                     // the approximate solution, x_0 = 0
  int iterations = 0;
  double relative_residual = 0.0;
  bool converged = false;       // tolerance met (or an exact invariant subspace found)
  bool numerical_failure = false;  // non-finite A q, or T_j not positive definite (A not SPD)
  std::string message;
  // Ritz pairs of T_j at the end (ascending values; vectors n x j, orthonormal columns).
  Vector ritz_values;
  Matrix ritz_vectors;
};

// Solves A x = b for SPD A by Lanczos-CG from x_0 = 0. b = 0 returns x = 0, converged, no Ritz pairs.
// Throws InvalidArgument for invalid options or a non-finite b. When `process` is not null it receives
// the Lanczos process (null for b = 0), which may be extended later with reserve() and step(); the
// operator `a` is copied into it, so whatever `a` refers to must outlive it.
LanczosSolveResult lanczos_solve(const LinearOperator& a, const Vector& b, const LanczosSolveOptions& options = {},
                                 std::unique_ptr<Lanczos>* process = nullptr);

// The same solve by conjugate gradients (Hestenes & Stiefel 1952) from x_0 = 0, keeping no basis: the
// iterates equal lanczos_solve's in exact arithmetic; in floating point the search directions lose
// conjugacy as Lanczos vectors would lose orthogonality without reorthogonalisation, which may delay
// convergence on clustered spectra but never stops it (Greenbaum 1997, Iterative Methods for Solving
// Linear Systems, chapter 4). Memory O(n), no Ritz pairs (options.ritz_pairs is ignored). Stops when
// the recursively updated residual meets the tolerance; numerical_failure when p^T A p <= 0 (A not
// SPD) or A returns a non-finite vector. Throws as lanczos_solve does.
LanczosSolveResult conjugate_gradient(const LinearOperator& a, const Vector& b, const LanczosSolveOptions& options = {});

struct LanczosEigenOptions {
  Index rank = 20;                 // number k of leading eigenpairs wanted (>= 1; capped at n)
  int max_iterations = 300;        // operator applications (>= rank); without restarts the Krylov
                                   // dimension, capped at n
  // Thick restart (Wu & Simon 2000, "Thick-restart Lanczos method for large symmetric eigenvalue
  // problems", SIMAX 22): when > 0, the basis never holds more than max_basis vectors (>= rank + 2):
  // when it is full, the leading Ritz vectors (rank plus half the spare room) and the residual
  // vector are kept and the process continues from them. Memory O(n max_basis) instead of
  // O(n max_iterations), and each reorthogonalisation costs O(n max_basis). 0: no restart.
  Index max_basis = 0;
  // A Ritz pair counts as converged when ||A y - theta y|| <= tolerance * theta_max.
  double tolerance = 1e-10;
  std::uint64_t seed = 20240901;   // the random start vector (reproducible)
  void validate() const;  // InvalidArgument "<field> = <value> <rule>"
};

struct LanczosEigenResult {
  Vector values;   // the k leading eigenvalues, descending
  Matrix vectors;  // n x k, orthonormal columns
  Vector residuals;  // ||A y_i - theta_i y_i||
  int iterations = 0;
  bool converged = false;          // every returned pair met the tolerance
  bool numerical_failure = false;  // non-finite A q
  std::string message;
};

// The k leading eigenpairs of a symmetric positive semi-definite A on R^n. Stops when the k leading
// Ritz pairs have converged or at max_iterations. At a breakdown before k vectors (an invariant
// Krylov space, e.g. a repeated eigenvalue) the process restarts, deflated, from a random vector
// orthogonal to the basis (Lanczos::restart), so k pairs are returned whatever the spectrum.
LanczosEigenResult lanczos_eigenpairs(const LinearOperator& a, Index n, const LanczosEigenOptions& options = {});

}  // namespace varflow
