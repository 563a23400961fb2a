#include "varflow/var/cost.h"

#include <Eigen/Cholesky>
#include <atomic>
#include <cassert>
#include <cmath>
#include <mutex>

#include "varflow/core/error.h"
#include "varflow/var/block_diagonal_covariance.h"

namespace varflow {
namespace {

// R restricted to the present values of one slot (see the masking rule in cost.h).
struct SlotPrecision {
  std::vector<Index> present;
  bool all_present = true;
  std::shared_ptr<const Covariance> r;
  Eigen::LLT<Matrix> sub;  // Cholesky of R_pp when some (not all) values are missing

  Vector gather(const Vector& d) const {
    Vector p(static_cast<Index>(present.size()));
    for (std::size_t i = 0; i < present.size(); ++i) p[static_cast<Index>(i)] = d[present[i]];
    return p;
  }
  Vector scatter(const Vector& p, Index m) const {
    Vector d = Vector::Zero(m);
    for (std::size_t i = 0; i < present.size(); ++i) d[present[i]] = p[static_cast<Index>(i)];
    return d;
  }
  Vector weight(const Vector& d) const {
    if (all_present) return r->inverse_multiply(d);
    if (present.empty()) return Vector::Zero(d.size());
    return scatter(sub.solve(gather(d)), d.size());
  }
  Vector whiten(const Vector& d) const {
    if (all_present) return r->sqrt_inverse_multiply(d);
    if (present.empty()) return Vector::Zero(d.size());
    return scatter(sub.matrixL().solve(gather(d)), d.size());
  }
  // Zero at masked entries (their values may be NaN).
  Vector clean(const Vector& d) const {
    if (all_present) return d;
    return scatter(gather(d), d.size());
  }
};

}  // namespace

struct FourDVarCost::Data {
  AssimilationWindow window;
  std::shared_ptr<const Covariance> q;
  Index subwindow_steps = 0;
  Index num_subwindows = 0;
  std::shared_ptr<const Covariance> prior;
  std::vector<Index> offsets;                          // per slot, in the stacked layout
  std::vector<std::vector<std::size_t>> slots_at_step; // steps + 1 lists
  std::vector<SlotPrecision> precision;
  mutable std::atomic<Index> forward_runs{0}, tl_sweeps{0}, ad_sweeps{0}, soa_sweeps{0};

  Index n() const { return window.background.size(); }
  Index subwindow(Index k) const { return k / subwindow_steps; }
  Vector eta(const Vector& z, Index j) const { return z.segment(n() * (1 + j), n()); }

  // The forced trajectory from z (x_0 = z[0:n]). Throws NumericalError on a non-finite state.
  std::vector<Vector> run(const Vector& z) const {
    forward_runs.fetch_add(1, std::memory_order_relaxed);
    std::vector<Vector> states;
    states.reserve(static_cast<std::size_t>(window.steps) + 1);
    Vector x = z.head(n());
    states.push_back(x);
    for (Index k = 0; k < window.steps; ++k) {
      window.model->step(x);
      if (num_subwindows > 0) x += eta(z, subwindow(k));
      for (Index i = 0; i < x.size(); ++i) {
        if (!std::isfinite(x[i])) {
          throw NumericalError(format_message("FourDVarCost: ", window.model->name(), " produced x[", i, "] = ",
                                              x[i], " at step ", k + 1, " of ", window.steps));
        }
      }
      states.push_back(x);
    }
    return states;
  }

  // Precomputes the layout and the per-slot precisions.
  void init();

  void check_control(const char* where, const Vector& z, Index expected) const {
    check_size(where, "control z", z.size(), expected);
    check_finite(where, "control z", z);
  }
};

void FourDVarCost::Data::init() {
  Data& d = *this;
  const AssimilationWindow& w = d.window;
  d.offsets.resize(w.observations.size());
  d.slots_at_step.assign(static_cast<std::size_t>(w.steps) + 1, {});
  d.precision.resize(w.observations.size());
  Index offset = 0;
  for (std::size_t s = 0; s < w.observations.size(); ++s) {
    const Observations& o = w.observations[s];
    d.offsets[s] = offset;
    offset += o.values.size();
    d.slots_at_step[static_cast<std::size_t>(o.step)].push_back(s);
    SlotPrecision& p = d.precision[s];
    p.r = o.r;
    for (Index i = 0; i < o.values.size(); ++i) {
      if (o.present(i)) p.present.push_back(i);
    }
    p.all_present = static_cast<Index>(p.present.size()) == o.values.size();
    if (!p.all_present && !p.present.empty()) {
      const Matrix r = o.r->dense();
      const Index m = static_cast<Index>(p.present.size());
      Matrix rpp(m, m);
      for (Index a = 0; a < m; ++a) {
        for (Index b = 0; b < m; ++b) rpp(a, b) = r(p.present[static_cast<std::size_t>(a)], p.present[static_cast<std::size_t>(b)]);
      }
      p.sub.compute(rpp);
      if (p.sub.info() != Eigen::Success) {
        throw NumericalError(format_message("FourDVarCost: observations[", s,
                                            "]: the sub-block of R on the present values is not positive definite"));
      }
    }
  }
}

FourDVarCost::FourDVarCost(AssimilationWindow window) : data_(std::make_shared<Data>()) {
  window.validate();
  data_->window = std::move(window);
  data_->prior = data_->window.b;
  data_->init();
}

FourDVarCost::FourDVarCost(AssimilationWindow window, std::shared_ptr<const Covariance> q, Index subwindow_steps)
    : data_(std::make_shared<Data>()) {
  window.validate();
  if (!q) throw InvalidArgument("FourDVarCost: model-error covariance q is null");
  check_size("FourDVarCost", "q (model-error covariance)", q->size(), window.state_size());
  if (subwindow_steps < 1) {
    throw InvalidArgument(format_message("FourDVarCost: subwindow_steps = ", subwindow_steps, " must be at least 1"));
  }
  data_->window = std::move(window);
  data_->q = std::move(q);
  data_->subwindow_steps = subwindow_steps;
  data_->num_subwindows = (data_->window.steps + subwindow_steps - 1) / subwindow_steps;
  std::vector<std::shared_ptr<const Covariance>> blocks{data_->window.b};
  for (Index j = 0; j < data_->num_subwindows; ++j) blocks.push_back(data_->q);
  data_->prior = blocks.size() == 1 ? data_->window.b
                                    : std::make_shared<const BlockDiagonalCovariance>(std::move(blocks));
  data_->init();
}

FourDVarCost::~FourDVarCost() = default;
FourDVarCost::FourDVarCost(const FourDVarCost&) = default;
FourDVarCost& FourDVarCost::operator=(const FourDVarCost&) = default;

const AssimilationWindow& FourDVarCost::window() const { return data_->window; }
Index FourDVarCost::state_size() const { return data_->n(); }
bool FourDVarCost::weak_constraint() const { return data_->q != nullptr; }
Index FourDVarCost::num_subwindows() const { return data_->num_subwindows; }
Index FourDVarCost::subwindow_steps() const { return data_->subwindow_steps; }
Index FourDVarCost::control_size() const { return data_->n() * (1 + data_->num_subwindows); }
Index FourDVarCost::observation_size() const { return data_->window.observation_size(); }
const Covariance& FourDVarCost::prior() const { return *data_->prior; }
std::shared_ptr<const Covariance> FourDVarCost::prior_ptr() const { return data_->prior; }

Vector FourDVarCost::control_background() const {
  Vector zb = Vector::Zero(control_size());
  zb.head(state_size()) = data_->window.background;
  return zb;
}

Vector FourDVarCost::control_from_preconditioned(const Vector& v) const {
  data_->check_control("FourDVarCost::control_from_preconditioned", v, control_size());
  return control_background() + data_->prior->sqrt_multiply(v);
}

double FourDVarCost::evaluate(const Vector& z) const { return terms(z).total(); }

double FourDVarCost::evaluate(const Vector& z, Vector* gradient) const {
  if (gradient == nullptr) return evaluate(z);
  const Linearization lin = linearize(z);
  *gradient = lin.gradient();
  return lin.cost();
}

CostTerms FourDVarCost::terms(const Vector& z) const { return linearize(z).terms(); }

Linearization FourDVarCost::linearize(const Vector& z) const {
  const Data& d = *data_;
  d.check_control("FourDVarCost::linearize", z, control_size());
  Linearization lin(*this);
  lin.z_ = z;
  lin.states_ = d.run(z);
  CostTerms& t = lin.terms_;
  const Vector dx0 = z.head(d.n()) - d.window.background;
  t.background = 0.5 * dx0.dot(d.window.b->inverse_multiply(dx0));
  for (Index j = 0; j < d.num_subwindows; ++j) {
    const Vector eta = d.eta(z, j);
    t.model_error += 0.5 * eta.dot(d.q->inverse_multiply(eta));
  }
  lin.departures_.resize(observation_size());
  t.per_slot.assign(d.window.observations.size(), 0.0);
  for (std::size_t s = 0; s < d.window.observations.size(); ++s) {
    const Observations& o = d.window.observations[s];
    Vector hx;
    o.op->apply(lin.states_[static_cast<std::size_t>(o.step)], hx);
    const Vector dep = d.precision[s].clean(o.values - hx);
    for (Index i = 0; i < dep.size(); ++i) {
      if (!std::isfinite(dep[i])) {
        throw NumericalError(format_message("FourDVarCost: observations[", s, "]: departure[", i, "] = ", dep[i],
                                            " is not finite"));
      }
    }
    lin.departures_.segment(d.offsets[s], dep.size()) = dep;
    t.per_slot[s] = 0.5 * dep.dot(d.precision[s].weight(dep));
    t.observation += t.per_slot[s];
  }
  return lin;
}

SweepCounts FourDVarCost::counts() const {
  return SweepCounts{data_->forward_runs.load(), data_->tl_sweeps.load(), data_->ad_sweeps.load(),
                     data_->soa_sweeps.load()};
}

void FourDVarCost::reset_counts() const {
  data_->forward_runs = 0;
  data_->tl_sweeps = 0;
  data_->ad_sweeps = 0;
  data_->soa_sweeps = 0;
}

// ---- Linearization ------------------------------------------------------------------------------

struct Linearization::AdjointTrajectory {
  std::once_flag once;
  Vector weighted_departures;  // weight(departures()), the w of the second-order terms
  std::vector<Vector> lambda;
};

Linearization::Linearization(const FourDVarCost& cost)
    : cost_(cost), adjoint_trajectory_(std::make_shared<AdjointTrajectory>()) {}

Index Linearization::observation_size() const { return departures_.size(); }

const Vector& Linearization::state(Index k) const {
  assert(k >= 0 && k <= steps());
  return states_[static_cast<std::size_t>(k)];
}

Vector Linearization::tangent(const Vector& dz) const {
  const FourDVarCost::Data& d = *cost_.data_;
  d.check_control("Linearization::tangent", dz, z_.size());
  d.tl_sweeps.fetch_add(1, std::memory_order_relaxed);
  Vector out = Vector::Zero(observation_size());
  Vector dx = dz.head(d.n());
  const Index steps = d.window.steps;
  for (Index k = 0; k <= steps; ++k) {
    for (std::size_t s : d.slots_at_step[static_cast<std::size_t>(k)]) {
      const Observations& o = d.window.observations[s];
      Vector dy;
      o.op->apply_tangent(states_[static_cast<std::size_t>(k)], dx, dy);
      out.segment(d.offsets[s], dy.size()) = d.precision[s].clean(dy);
    }
    if (k < steps) {
      d.window.model->step_tangent(states_[static_cast<std::size_t>(k)], dx);
      if (d.num_subwindows > 0) dx += d.eta(dz, d.subwindow(k));
    }
  }
  if (!out.allFinite()) throw NumericalError("Linearization::tangent: the TL sweep produced a non-finite value");
  return out;
}

Vector Linearization::adjoint(const Vector& w) const {
  const FourDVarCost::Data& d = *cost_.data_;
  check_size("Linearization::adjoint", "w (observation-space vector)", w.size(), observation_size());
  d.ad_sweeps.fetch_add(1, std::memory_order_relaxed);
  const Index n = d.n();
  Vector out = Vector::Zero(z_.size());
  Vector a = Vector::Zero(n);
  for (Index k = d.window.steps; k >= 0; --k) {
    for (std::size_t s : d.slots_at_step[static_cast<std::size_t>(k)]) {
      const Observations& o = d.window.observations[s];
      const Vector ws = d.precision[s].clean(w.segment(d.offsets[s], o.values.size()));
      check_finite("Linearization::adjoint", "w", ws);
      Vector ax;
      o.op->apply_adjoint(states_[static_cast<std::size_t>(k)], ws, ax);
      a += ax;
    }
    if (k > 0) {
      // a is the adjoint of x_k; x_k = M(x_{k-1}) + eta_{j(k-1)}.
      if (d.num_subwindows > 0) out.segment(n * (1 + d.subwindow(k - 1)), n) += a;
      d.window.model->step_adjoint(states_[static_cast<std::size_t>(k - 1)], a);
    }
  }
  out.head(n) = a;
  if (!out.allFinite()) throw NumericalError("Linearization::adjoint: the AD sweep produced a non-finite value");
  return out;
}

Vector Linearization::weight(const Vector& dep) const {
  const FourDVarCost::Data& d = *cost_.data_;
  check_size("Linearization::weight", "d (observation-space vector)", dep.size(), observation_size());
  Vector out(dep.size());
  for (std::size_t s = 0; s < d.window.observations.size(); ++s) {
    const Index m = d.window.observations[s].values.size();
    out.segment(d.offsets[s], m) = d.precision[s].weight(d.precision[s].clean(dep.segment(d.offsets[s], m)));
  }
  return out;
}

Vector Linearization::whiten(const Vector& dep) const {
  const FourDVarCost::Data& d = *cost_.data_;
  check_size("Linearization::whiten", "d (observation-space vector)", dep.size(), observation_size());
  Vector out(dep.size());
  for (std::size_t s = 0; s < d.window.observations.size(); ++s) {
    const Index m = d.window.observations[s].values.size();
    out.segment(d.offsets[s], m) = d.precision[s].whiten(d.precision[s].clean(dep.segment(d.offsets[s], m)));
  }
  return out;
}

Vector Linearization::gradient() const {
  const FourDVarCost& c = cost_;
  return c.prior().inverse_multiply(z_ - c.control_background()) - adjoint(weight(departures_));
}

Vector Linearization::preconditioned_gradient(const Vector& v) const {
  check_size("Linearization::preconditioned_gradient", "v", v.size(), z_.size());
  return v - cost_.prior().sqrt_transpose_multiply(adjoint(weight(departures_)));
}

Vector Linearization::observation_hessian_multiply(const Vector& dz) const { return adjoint(weight(tangent(dz))); }

Vector Linearization::preconditioned_observation_hessian_multiply(const Vector& dv) const {
  const Covariance& l = cost_.prior();
  return l.sqrt_transpose_multiply(observation_hessian_multiply(l.sqrt_multiply(dv)));
}

Vector Linearization::preconditioned_hessian_multiply(const Vector& dv) const {
  return dv + preconditioned_observation_hessian_multiply(dv);
}

// ---- full Hessian -------------------------------------------------------------------------------------

bool Linearization::has_second_order() const {
  const AssimilationWindow& w = cost_.window();
  if (!w.model->has_second_order()) return false;
  for (const Observations& o : w.observations) {
    if (!o.op->has_second_order()) return false;
  }
  return true;
}

void require_second_order(const AssimilationWindow& w, std::string_view where) {
  if (!w.model->has_second_order()) {
    throw InvalidArgument(format_message(where, ": model '", w.model->name(),
                                         "' has no second-order adjoint (has_second_order() = false)"));
  }
  for (std::size_t s = 0; s < w.observations.size(); ++s) {
    const ObservationOperator& op = *w.observations[s].op;
    if (!op.has_second_order()) {
      throw InvalidArgument(format_message(where, ": observations[", s, "].op '", op.name(),
                                           "' has no second-order adjoint (has_second_order() = false)"));
    }
  }
}

void Linearization::require_second_order(std::string_view where) const {
  varflow::require_second_order(cost_.window(), where);
}

const Linearization::AdjointTrajectory& Linearization::adjoint_trajectory() const {
  AdjointTrajectory& t = *adjoint_trajectory_;
  std::call_once(t.once, [&] {
    // The AD sweep of adjoint(weight(departures_)), keeping lambda_k (the adjoint of x_k after the
    // slot terms at step k are added).
    const FourDVarCost::Data& d = *cost_.data_;
    d.ad_sweeps.fetch_add(1, std::memory_order_relaxed);
    const Vector w = weight(departures_);
    std::vector<Vector> lambda(static_cast<std::size_t>(d.window.steps) + 1);
    Vector a = Vector::Zero(d.n());
    for (Index k = d.window.steps; k >= 0; --k) {
      for (std::size_t s : d.slots_at_step[static_cast<std::size_t>(k)]) {
        const Observations& o = d.window.observations[s];
        Vector ax;
        o.op->apply_adjoint(states_[static_cast<std::size_t>(k)], w.segment(d.offsets[s], o.values.size()), ax);
        a += ax;
      }
      lambda[static_cast<std::size_t>(k)] = a;
      if (k > 0) d.window.model->step_adjoint(states_[static_cast<std::size_t>(k - 1)], a);
    }
    if (!a.allFinite()) {
      throw NumericalError("Linearization::full_hessian_multiply: the AD sweep of the departures produced a non-finite value");
    }
    t.weighted_departures = w;
    t.lambda = std::move(lambda);
  });
  return t;
}

Vector Linearization::full_observation_hessian_multiply(const Vector& dz) const {
  const FourDVarCost::Data& d = *cost_.data_;
  const char* where = "Linearization::full_hessian_multiply";
  d.check_control(where, dz, z_.size());
  require_second_order(where);
  const AdjointTrajectory& t = adjoint_trajectory();
  const std::vector<Vector>& lambda = t.lambda;
  const Vector& w = t.weighted_departures;
  const Index n = d.n(), steps = d.window.steps;
  // TL sweep, keeping dx_k.
  d.tl_sweeps.fetch_add(1, std::memory_order_relaxed);
  std::vector<Vector> dx(static_cast<std::size_t>(steps) + 1);
  dx[0] = dz.head(n);
  for (Index k = 0; k < steps; ++k) {
    Vector next = dx[static_cast<std::size_t>(k)];
    d.window.model->step_tangent(states_[static_cast<std::size_t>(k)], next);
    if (d.num_subwindows > 0) next += d.eta(dz, d.subwindow(k));
    dx[static_cast<std::size_t>(k) + 1] = std::move(next);
  }
  // SOA sweep: nu_k = M'(x_k)^T nu_{k+1} - SOA_M(x_k, dx_k, lambda_{k+1})
  //                   + sum_{s at k} [H'^T R^-1 H' dx_k - SOA_H(x_k, dx_k, w_s)].
  d.soa_sweeps.fetch_add(1, std::memory_order_relaxed);
  Vector out = Vector::Zero(z_.size());
  Vector nu = Vector::Zero(n);
  Vector dy, ax, second;
  for (Index k = steps; k >= 0; --k) {
    const Vector& x = states_[static_cast<std::size_t>(k)];
    const Vector& dxk = dx[static_cast<std::size_t>(k)];
    for (std::size_t s : d.slots_at_step[static_cast<std::size_t>(k)]) {
      const Observations& o = d.window.observations[s];
      const SlotPrecision& p = d.precision[s];
      o.op->apply_tangent(x, dxk, dy);
      o.op->apply_adjoint(x, p.weight(p.clean(dy)), ax);
      o.op->apply_second_order_adjoint(x, dxk, w.segment(d.offsets[s], o.values.size()), second);
      nu += ax - second;
    }
    if (k > 0) {
      // nu is the adjoint of x_k; x_k = M(x_{k-1}) + eta_{j(k-1)}.
      if (d.num_subwindows > 0) out.segment(n * (1 + d.subwindow(k - 1)), n) += nu;
      const Vector& xm = states_[static_cast<std::size_t>(k - 1)];
      d.window.model->step_second_order_adjoint(xm, dx[static_cast<std::size_t>(k - 1)],
                                                lambda[static_cast<std::size_t>(k)], second);
      d.window.model->step_adjoint(xm, nu);
      nu -= second;
    }
  }
  out.head(n) = nu;
  if (!out.allFinite()) throw NumericalError(format_message(where, ": the SOA sweep produced a non-finite value"));
  return out;
}

Vector Linearization::full_hessian_multiply(const Vector& dz) const {
  return cost_.prior().inverse_multiply(dz) + full_observation_hessian_multiply(dz);
}

Vector Linearization::preconditioned_full_hessian_multiply(const Vector& dv) const {
  const Covariance& l = cost_.prior();
  return dv + l.sqrt_transpose_multiply(full_observation_hessian_multiply(l.sqrt_multiply(dv)));
}

}  // namespace varflow
