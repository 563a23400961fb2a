// validate_model: the held-out events, Jacobian cases and SBC problem for an amortized posterior and
// the oracle of its problem, then the promotion decision (validation/promotion.h).
#include <chrono>
#include <cmath>
#include <memory>
#include <numbers>

#include "varflow/report/oracles.h"
#include "varflow/core/enum_text.h"
#include "varflow/core/error.h"
#include "varflow/covariance/covariances.h"
#include "varflow/report/validation_report.h"
#include "varflow/version.h"

namespace varflow::report {

namespace {
constexpr EnumNames<OracleJacobian, 3> kOracleJacobianNames{{{OracleJacobian::kGaussNewton, "gauss-newton"},
                                                             {OracleJacobian::kMapDifferences, "map-differences"},
                                                             {OracleJacobian::kExact, "exact"}}};
}  // namespace

std::string to_string(OracleJacobian v) { return std::string(to_text(kOracleJacobianNames, v)); }

OracleJacobian oracle_jacobian_from_string(const std::string& s, const std::string& key) {
  return from_text(kOracleJacobianNames, key, s);
}

void ValidationOptions::validate() const {
  auto fail = [](const std::string& m) { throw InvalidArgument("ValidationOptions: " + m); };
  if (events < 1) return fail(format_message("events = ", events, " must be >= 1"));
  if (posterior_draws < 400)
    return fail(format_message("posterior_draws = ", posterior_draws, " must be >= 400 (design/gates.md)"));
  if (jacobian_cases < 1 || jacobian_cases > events)
    return fail(format_message("jacobian_cases = ", jacobian_cases, " must be in [1, events = ", events, "]"));
  if (grid_points < 21) return fail(format_message("grid_points = ", grid_points, " must be >= 21"));
  if (!(grid_extent > 0.0)) return fail(format_message("grid_extent = ", grid_extent, " must be > 0"));
  if (!(jacobian_step > 0.0)) return fail(format_message("jacobian_step = ", jacobian_step, " must be > 0"));
  if (!(map_difference_step > 0.0 && map_difference_step < 1.0))
    return fail(format_message("map_difference_step = ", map_difference_step, " must be in (0, 1)"));
  with_context("ValidationOptions", [&] { window_problem.validate(); });
  if (prior_variance_draws < 100)
    return fail(format_message("prior_variance_draws = ", prior_variance_draws, " must be >= 100"));
  with_context("ValidationOptions", [&] { gates.validate(); });
}

namespace {

// Variances per component (rows) of the columns of x.
Vector row_variances(const Matrix& x) {
  const Vector m = x.rowwise().mean();
  return (x.colwise() - m).rowwise().squaredNorm() / static_cast<double>(x.cols() - 1);
}

// Stands in for a fast posterior that could not be formed (e.g. a non-finite mean refused by
// GaussianPosterior): NaN mean and spread, which the agreement gate reports as a failure.
class NonFinitePosterior final : public Posterior {
 public:
  explicit NonFinitePosterior(Index n) : n_(n) {}
  Index size() const override { return n_; }
  Vector mean() const override { return Vector::Constant(n_, std::nan("")); }
  Vector marginal_std() const override { return Vector::Constant(n_, std::nan("")); }
  Matrix samples(Index n, Rng&) const override { return Matrix::Constant(n_, n, std::nan("")); }

 private:
  Index n_;
};

}  // namespace

ValidationReport validate_model(amortized::AmortizedPosterior& q, const ValidationOptions& options, Rng& rng,
                                const ProgressCallback& progress) {
  options.validate();
  const std::unique_ptr<Oracle> oracle = make_oracle(q.problem(), q.shape(), options);
  return validate_model(q, *oracle, options, rng, progress);
}

ValidationReport validate_model(amortized::AmortizedPosterior& q, Oracle& oracle_ref, const ValidationOptions& options,
                                Rng& rng, const ProgressCallback& progress) {
  options.validate();
  Oracle* const oracle = &oracle_ref;
  {
    const amortized::ProblemShape s = oracle->simulator().shape(), m = q.shape();
    if (s.state_size != m.state_size || s.obs_size != m.obs_size) {
      throw InvalidArgument(format_message("validate: the oracle's problem has ", s.state_size, " states and ",
                                           s.obs_size, " observations, the model ", m.state_size, " and ", m.obs_size));
    }
  }
  auto say = [&](const std::string& line) {
    if (progress) progress(line);
  };
  const auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };

  ValidationReport r;
  r.problem = q.problem();
  r.head = amortized::to_string(q.config().head);
  r.shape = q.shape();
  r.seed = rng.seed();
  r.version = VARFLOW_VERSION_STRING;
  r.training = q.training_summary();
  r.training_stored = q.trained() && !r.training.train_loss.empty();
  if (!r.training_stored) r.notes.push_back("the model file holds no training loss curves");

  const auto& problem = oracle->simulator();
  r.problem_description = problem.describe();
  r.oracle_description = oracle->describe();
  for (const auto& n : oracle->notes()) r.notes.push_back(n);

  PromotionInputs in;
  // Held-out events from the simulator (an independent stream of rng).
  say(format_message("simulating ", options.events, " held-out events"));
  Rng event_rng = rng.split();
  const amortized::Dataset held_out = problem.simulate(options.events, event_rng);
  Index unformed = 0;
  std::string first_failure;
  for (Index e = 0; e < options.events; ++e) {
    const Vector y = held_out.y.col(e);
    const std::string name = format_message("event_", e);
    std::shared_ptr<const Posterior> fast;
    try {
      fast = q.posterior(y, options.posterior_draws, rng);
    } catch (const InvalidArgument& failure) {
      fast = std::make_shared<NonFinitePosterior>(q.shape().state_size);
      if (unformed++ == 0) first_failure = format_message(name, ": ", failure.what());
    }
    std::shared_ptr<const Posterior> exact = oracle->posterior(y);
    in.held_out_events.push_back({name, fast, exact});
    r.events.push_back({name, y, fast->mean(), fast->marginal_std(), exact->mean(), exact->marginal_std()});
    if (e < options.jacobian_cases) {
      auto* qp = &q;
      JacobianOperator fj{[qp, y](const Vector& v) { return qp->mean_jvp(y, v); },
                          [qp, y](const Vector& w) { return qp->mean_vjp(y, w); }, q.shape().obs_size,
                          q.shape().state_size};
      in.jacobians.push_back({name, fj, oracle->jacobian(y)});
    }
    if ((e + 1) % 5 == 0 || e + 1 == options.events) {
      say(format_message("event ", e + 1, "/", options.events, " (oracle and ", options.posterior_draws,
                         " fast draws), ", elapsed(), " s"));
    }
  }
  if (unformed > 0) {
    r.notes.push_back(format_message("the fast posterior could not be formed at ", unformed,
                                     " events (entered as NaN, failing agreement); first: ", first_failure));
  }

  // SBC: pairs (x, y) drawn from the simulator itself. prior_sample draws a pair and keeps its
  // observations, simulate returns them: the gate calls prior -> simulator -> posterior in that order
  // for every simulation, so (x, y) is a draw of the joint exactly as the model was trained on. The
  // gate requires finite observations, so missing values (NaN, gridded problems) are handed to it as
  // 0 and the posterior callback conditions on the kept observations with their NaNs.
  auto pending = std::make_shared<Vector>();
  const auto* sim = &problem;
  in.sbc.prior_sample = [sim, pending](Rng& g) {
    const amortized::Dataset d = sim->simulate(1, g);
    *pending = d.y.col(0);
    return Vector(d.x.col(0));
  };
  in.sbc.simulate = [pending](const Vector&, Rng&) {
    return Vector(pending->array().isFinite().select(*pending, 0.0));
  };
  in.sbc.posterior_samples = [&q, pending](const Vector&, Index n, Rng& g) { return q.sample(*pending, n, g); };
  in.sbc.prior_variance = oracle->prior_variance();
  if (in.sbc.prior_variance.size() == 0) {
    say(format_message("estimating prior variances from ", options.prior_variance_draws, " simulated states"));
    Rng g = rng.split();
    in.sbc.prior_variance = row_variances(problem.simulate(options.prior_variance_draws, g).x);
  }

  say(format_message("running the gates (", options.gates.sbc.simulations, " SBC simulations x ",
                     options.gates.sbc.posterior_draws, " draws)"));
  r.decision = decide_promotion(in, rng, options.gates);
  r.seconds = elapsed();
  say(format_message("gates done in ", r.seconds, " s: ", r.passed() ? "all passed" : "failed"));
  return r;
}

}  // namespace varflow::report
