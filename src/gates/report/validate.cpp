// validate_model: the held-out events, Jacobian cases and SBC problem for an amortized posterior and
// the oracle of its problem, then the promotion decision (validation/promotion.h).
#include <chrono>
#include <cmath>
#include <memory>
#include <numbers>

#include "varflow/report/oracles.h"
#include "varflow/core/communicator.h"
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

// A posterior known by its mean and marginal standard deviations only: what the agreement gate reads,
// gathered from the rank that computed it.
class MomentsPosterior final : public Posterior {
 public:
  MomentsPosterior(Vector mean, Vector sd) : mean_(std::move(mean)), sd_(std::move(sd)) {}
  Index size() const override { return mean_.size(); }
  Vector mean() const override { return mean_; }
  Vector marginal_std() const override { return sd_; }
  Matrix samples(Index, Rng&) const override {
    throw Error("MomentsPosterior: a posterior gathered from another rank holds its moments only, no draws");
  }

 private:
  Vector mean_, sd_;
};

JacobianOperator dense_jacobian(const Matrix& j) {
  return {[j](const Vector& v) { return Vector(j * v); }, [j](const Vector& w) { return Vector(j.transpose() * w); },
          j.cols(), j.rows()};
}

}  // namespace

ValidationReport validate_model(amortized::AmortizedPosterior& q, const ValidationOptions& options, Rng& rng,
                                const ProgressCallback& progress) {
  return validate_model(q, options, rng, progress, serial_communicator());
}

ValidationReport validate_model(amortized::AmortizedPosterior& q, const ValidationOptions& options, Rng& rng,
                                const ProgressCallback& progress, const Communicator& comm) {
  options.validate();
  const std::unique_ptr<Oracle> oracle = make_oracle(q.problem(), q.shape(), options);
  return validate_model(q, *oracle, options, rng, progress, comm);
}

ValidationReport validate_model(amortized::AmortizedPosterior& q, Oracle& oracle, const ValidationOptions& options,
                                Rng& rng, const ProgressCallback& progress) {
  return validate_model(q, oracle, options, rng, progress, serial_communicator());
}

ValidationReport validate_model(amortized::AmortizedPosterior& q, Oracle& oracle_ref, const ValidationOptions& options,
                                Rng& rng, const ProgressCallback& progress, const Communicator& comm) {
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
    if (progress && comm.is_root()) progress(line);
  };
  const auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };

  ValidationReport r;
  r.problem = q.problem();
  r.model_checksum = q.checksum();
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
  // Per event, on the rank that owns it (distributed_map): the fast posterior's moments from the
  // event's own stream item_rng(fast_base, e), the oracle's moments and, for the first
  // jacobian_cases events, the oracle's J as a dense n x m matrix (m JVPs of unit vectors; the
  // exact and map-differences oracles are dense already). Records come back in event order.
  const std::uint64_t fast_base = rng.engine()();
  const Index state_size = q.shape().state_size, obs_size = q.shape().obs_size;
  const Index my_events = (options.events - comm.rank() + comm.size() - 1) / comm.size();  // cyclic share
  const std::vector<std::string> records = distributed_map(
      comm, options.events, "validate_model", [](Index e) { return format_message("event_", e); },
      [&](Index e) {
        const Vector y = held_out.y.col(e);
        RecordWriter w;
        Rng g = item_rng(fast_base, e);
        std::shared_ptr<const Posterior> fast;
        std::string failure;
        try {
          fast = q.posterior(y, options.posterior_draws, g);
        } catch (const InvalidArgument& unformed) {
          fast = std::make_shared<NonFinitePosterior>(state_size);
          failure = unformed.what();
        }
        const std::shared_ptr<const Posterior> exact = oracle->posterior(y);
        const Vector exact_mean = exact->mean(), exact_std = exact->marginal_std();
        if (!exact_mean.allFinite() || !exact_std.allFinite()) {
          throw NumericalError(format_message("the oracle's posterior has a non-finite mean or standard deviation"));
        }
        w.put(failure);
        w.put(fast->mean());
        w.put(fast->marginal_std());
        w.put(exact_mean);
        w.put(exact_std);
        if (e < options.jacobian_cases) {
          const JacobianOperator j = oracle->jacobian(y);
          Matrix dense(state_size, obs_size);
          for (Index k = 0; k < obs_size; ++k) dense.col(k) = j.jvp(Vector::Unit(obs_size, k));
          if (!dense.allFinite()) throw NumericalError("the oracle's Jacobian has a non-finite entry");
          w.put(dense);
        }
        const Index done = e / comm.size() + 1;
        if (done % 5 == 0 || done == my_events) {
          say(format_message("event ", done, "/", my_events, comm.size() > 1 ? " of rank 0's" : "", " (oracle and ",
                             options.posterior_draws, " fast draws), ", elapsed(), " s"));
        }
        return w.bytes();
      });
  Index unformed = 0;
  std::string first_failure;
  const bool split_draws = comm.size() > 1 && q.mean_draw_blocks() > 1;
  for (Index e = 0; e < options.events; ++e) {
    RecordReader rec(records[static_cast<std::size_t>(e)]);
    const Vector y = held_out.y.col(e);
    const std::string name = format_message("event_", e);
    const std::string failure = rec.get_string();
    if (!failure.empty() && unformed++ == 0) first_failure = format_message(name, ": ", failure);
    Vector fast_mean = rec.get_vector(), fast_std = rec.get_vector();
    Vector exact_mean = rec.get_vector(), exact_std = rec.get_vector();
    auto fast = std::make_shared<MomentsPosterior>(fast_mean, fast_std);
    auto exact = std::make_shared<MomentsPosterior>(exact_mean, exact_std);
    in.held_out_events.push_back({name, fast, exact});
    r.events.push_back({name, y, fast_mean, fast_std, exact_mean, exact_std});
    if (e < options.jacobian_cases) {
      // The fast J v and J^T w average over the mean's base draws: with more than one block of draws
      // they are split over the ranks inside each product (collective: all ranks probe one case at a
      // time); a Gaussian head's exact mean has one, so its cases are split over the ranks instead.
      // The numbers are the same either way and for any number of ranks (design/parallel.md).
      auto* qp = &q;
      const Communicator* c = split_draws ? &comm : &serial_communicator();
      JacobianOperator fj{[qp, y, c](const Vector& v) { return qp->mean_jvp(y, v, Mask(), *c); },
                          [qp, y, c](const Vector& w) { return qp->mean_vjp(y, w, Mask(), *c); }, obs_size,
                          state_size};
      fj.collective = split_draws;
      in.jacobians.push_back({name, fj, dense_jacobian(rec.get_matrix())});
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
  r.decision = decide_promotion(in, rng, options.gates, comm);
  r.seconds = elapsed();
  say(format_message("gates done in ", r.seconds, " s: ", r.passed() ? "all passed" : "failed"));
  return r;
}

}  // namespace varflow::report
