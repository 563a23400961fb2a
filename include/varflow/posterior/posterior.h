#pragma once
// One Posterior type for every method: the 4D-Var family (Laplace / Gauss-Newton posteriors), the
// emulator-based 4D-Var and the amortized heads all answer with a Posterior, so the validation gates
// compare like with like.
#include <limits>
#include <memory>
#include <string>

#include "varflow/core/random.h"
#include "varflow/core/types.h"

namespace varflow {

class Covariance;

// Where a posterior came from.
struct Provenance {
  std::string method;           // e.g. "incremental_4dvar", "laplace_dense", "amortized_flow"
  int iterations = 0;           // solver iterations (outer x inner where it applies), 0 if none
  double final_cost = std::numeric_limits<double>::quiet_NaN();
  bool converged = false;
  std::string config_hash;      // hash of the configuration that produced it ("" if none)
  std::string version;          // varflow version that produced it
  // For a Laplace posterior over a control of size p built from k Hessian directions (a low-rank
  // or Lanczos form): the k updated directions are span(L V) of the Ritz / eigenvectors V in the
  // whitened control; the p - k directions orthogonal to V in the whitened control keep their prior
  // variance (a truncation, not a property of the problem). Dense posteriors update all p.
  // -1: not a Laplace posterior (unknown).
  Index updated_directions = -1;
  Index prior_only_directions = 0;
};

class Posterior {
 public:
  virtual ~Posterior() = default;

  // Dimension of the state.
  virtual Index size() const = 0;
  // The posterior mean (for a Laplace posterior: the MAP, which is its mean).
  virtual Vector mean() const = 0;
  // Marginal standard deviations, one per state component.
  virtual Vector marginal_std() const = 0;
  // n independent draws as the columns of a size() x n matrix.
  virtual Matrix samples(Index n, Rng& rng) const = 0;
  // The covariance as an operator, or nullptr when the posterior has none in closed form (e.g. a
  // flow or score posterior, known only through samples). Owned by the posterior.
  virtual const Covariance* covariance() const { return nullptr; }

  const Provenance& provenance() const { return provenance_; }
  void set_provenance(Provenance p) { provenance_ = std::move(p); }

 private:
  Provenance provenance_;
};

// A Gaussian posterior N(mean, C) with C given as a Covariance operator (dense, low-rank, ...).
class GaussianPosterior final : public Posterior {
 public:
  // Throws InvalidArgument when sizes disagree or the mean is not finite.
  GaussianPosterior(Vector mean, std::shared_ptr<const Covariance> covariance);

  Index size() const override { return mean_.size(); }
  Vector mean() const override { return mean_; }
  // From the operator: sqrt(e_i^T C e_i), computed once (size() products) and cached.
  Vector marginal_std() const override { return marginal_std_; }
  Matrix samples(Index n, Rng& rng) const override;
  const Covariance* covariance() const override { return covariance_.get(); }

 private:
  Vector mean_;
  std::shared_ptr<const Covariance> covariance_;
  Vector marginal_std_;
};

// A posterior known through an ensemble of draws (columns of `draws`); samples() resamples them
// with replacement when asked for more or fewer than it holds.
class SamplePosterior final : public Posterior {
 public:
  explicit SamplePosterior(Matrix draws);

  Index size() const override { return draws_.rows(); }
  Vector mean() const override { return draws_.rowwise().mean(); }
  Vector marginal_std() const override;
  Matrix samples(Index n, Rng& rng) const override;
  const Matrix& draws() const { return draws_; }

 private:
  Matrix draws_;
};

}  // namespace varflow
