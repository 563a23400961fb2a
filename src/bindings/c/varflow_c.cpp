// The C ABI (include/varflow/c/varflow.h): handles over the C++ classes, and one guard that turns
// every exception into a status and a message. design/c_abi.md.
#include "varflow/c/varflow.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include "varflow/amortized/amortized_posterior.h"
#include "varflow/core/communicator.h"
#include "varflow/core/error.h"
#include "varflow/core/random.h"
#include "varflow/covariance/covariances.h"
#include "varflow/io/options.h"
#include "varflow/model/model_registry.h"
#include "varflow/obs/operators.h"
#include "varflow/posterior/posterior.h"
#include "varflow/report/oracles.h"
#include "varflow/report/validation_report.h"
#include "varflow/validation/linearization_checks.h"
#include "varflow/var/incremental_4dvar.h"
#include "varflow/var/sensitivity.h"
#include "varflow/var/strong_4dvar.h"
#include "varflow/version.h"

namespace {

using varflow::Index;
using varflow::Matrix;
using varflow::Vector;

// A call-back returned nonzero or wrote a non-finite value. A NumericalError, so that a solver reports
// it as its numerical failure; the C layer then returns VARFLOW_CALLBACK_ERROR with this message.
class CallbackFailure : public varflow::NumericalError {
 public:
  using varflow::NumericalError::NumericalError;
};

thread_local std::string last_error;

// The first failure of a call-back during one varflow call (call-backs run one at a time).
struct CallbackLog {
  std::mutex mutex;  // serialises the call-backs of one model or operator
  std::string failure;
  // Whether a non-finite value written by a call-back is a failure. Off during the linearisation
  // checks, whose large Taylor steps may legitimately overflow (they report those as NaN ratios).
  bool refuse_non_finite = true;
  void fail(const std::string& message) {
    if (failure.empty()) failure = message;
    throw CallbackFailure(message);
  }
};

void check_returned(CallbackLog& log, int rc, const std::string& who, const char* what) {
  if (rc != 0) log.fail(varflow::format_message(who, ": the ", what, " call-back returned ", rc));
}
void check_written(CallbackLog& log, const Vector& v, const std::string& who, const char* what) {
  if (!log.refuse_non_finite) return;
  for (Index i = 0; i < v.size(); ++i) {
    if (!std::isfinite(v[i])) log.fail(varflow::format_message(who, ": the ", what, " call-back wrote ", v[i], " at index ", i));
  }
}

class CallbackModel final : public varflow::Model {
 public:
  CallbackModel(Index n, varflow_step_fn step_fn, varflow_step_tangent_fn tangent_fn,
                varflow_step_adjoint_fn adjoint_fn, void* user, std::string name)
      : n_(n), step_(step_fn), tangent_(tangent_fn), adjoint_(adjoint_fn), user_(user), name_(std::move(name)) {}
  Index state_size() const override { return n_; }
  std::string name() const override { return name_; }
  CallbackLog& log() const { return log_; }

 protected:
  void do_step(Vector& x) const override {
    std::lock_guard<std::mutex> lock(log_.mutex);
    check_returned(log_, step_(user_, n_, x.data()), name_, "step");
    check_written(log_, x, name_, "step");
  }
  void do_step_tangent(const Vector& x, Vector& dx) const override {
    std::lock_guard<std::mutex> lock(log_.mutex);
    check_returned(log_, tangent_(user_, n_, x.data(), dx.data()), name_, "tangent");
    check_written(log_, dx, name_, "tangent");
  }
  void do_step_adjoint(const Vector& x, Vector& ax) const override {
    std::lock_guard<std::mutex> lock(log_.mutex);
    check_returned(log_, adjoint_(user_, n_, x.data(), ax.data()), name_, "adjoint");
    check_written(log_, ax, name_, "adjoint");
  }

 private:
  Index n_;
  varflow_step_fn step_;
  varflow_step_tangent_fn tangent_;
  varflow_step_adjoint_fn adjoint_;
  void* user_;
  std::string name_;
  mutable CallbackLog log_;
};

class CallbackOperator final : public varflow::ObservationOperator {
 public:
  CallbackOperator(Index n, Index m, varflow_obs_apply_fn apply_fn, varflow_obs_tangent_fn tangent_fn,
                   varflow_obs_adjoint_fn adjoint_fn, void* user, std::string name)
      : n_(n), m_(m), apply_(apply_fn), tangent_(tangent_fn), adjoint_(adjoint_fn), user_(user), name_(std::move(name)) {}
  Index state_size() const override { return n_; }
  Index obs_size() const override { return m_; }
  std::string name() const override { return name_; }
  CallbackLog& log() const { return log_; }

 protected:
  void do_apply(const Vector& x, Vector& y) const override {
    std::lock_guard<std::mutex> lock(log_.mutex);
    y.resize(m_);
    check_returned(log_, apply_(user_, n_, x.data(), m_, y.data()), name_, "apply");
    check_written(log_, y, name_, "apply");
  }
  void do_apply_tangent(const Vector& x, const Vector& dx, Vector& dy) const override {
    std::lock_guard<std::mutex> lock(log_.mutex);
    dy.resize(m_);
    check_returned(log_, tangent_(user_, n_, x.data(), dx.data(), m_, dy.data()), name_, "tangent");
    check_written(log_, dy, name_, "tangent");
  }
  void do_apply_adjoint(const Vector& x, const Vector& ay, Vector& ax) const override {
    std::lock_guard<std::mutex> lock(log_.mutex);
    ax.resize(n_);
    check_returned(log_, adjoint_(user_, n_, x.data(), m_, ay.data(), ax.data()), name_, "adjoint");
    check_written(log_, ax, name_, "adjoint");
  }

 private:
  Index n_, m_;
  varflow_obs_apply_fn apply_;
  varflow_obs_tangent_fn tangent_;
  varflow_obs_adjoint_fn adjoint_;
  void* user_;
  std::string name_;
  mutable CallbackLog log_;
};

// The failure logs of the call-back objects one call uses (null entries for built-in ones): cleared
// before the call, the first failure reported after it.
struct CallbackScope {
  std::vector<CallbackLog*> logs;
  explicit CallbackScope(std::vector<CallbackLog*> used) : logs(std::move(used)) {
    for (auto* l : logs) {
      if (l) l->failure.clear();
    }
  }
  std::string failure() const {
    for (auto* l : logs) {
      if (l && !l->failure.empty()) return l->failure;
    }
    return "";
  }
};

// Lets the call-backs of one log write non-finite values for the lifetime of the object.
class NonFiniteAllowed {
 public:
  explicit NonFiniteAllowed(CallbackLog* log) : log_(log) {
    if (log_) log_->refuse_non_finite = false;
  }
  ~NonFiniteAllowed() {
    if (log_) log_->refuse_non_finite = true;
  }
  NonFiniteAllowed(const NonFiniteAllowed&) = delete;
  NonFiniteAllowed& operator=(const NonFiniteAllowed&) = delete;

 private:
  CallbackLog* log_;
};

}  // namespace

struct varflow_model {
  std::shared_ptr<const varflow::Model> model;
  CallbackLog* log = nullptr;  // of a call-back model (owned by it), null for a registered one
  std::string error;
};
struct varflow_obs_operator {
  std::shared_ptr<const varflow::ObservationOperator> op;
  CallbackLog* log = nullptr;  // of a call-back operator (owned by it), null for a built-in one
  std::string error;
};
struct varflow_window {
  varflow::AssimilationWindow window;  // holds the model and operators whose logs are below
  std::vector<CallbackLog*> logs;
  std::string error;
};
struct varflow_result {
  varflow::VarResult result;
  varflow::SolverSummary summary;
  std::unique_ptr<varflow::ObservationSensitivity> sensitivity;
  Index observation_size = 0;
  std::string error;
};
struct varflow_amortized {
  std::unique_ptr<varflow::amortized::AmortizedPosterior> q;
  std::string error;
};

namespace {

// Runs f, turning every exception into a status; the message goes to the thread's last error and to
// `handle_error` when given.
template <typename F>
varflow_status guarded(std::string* handle_error, F&& f) {
  varflow_status status = VARFLOW_OK;
  std::string message;
  try {
    status = f();
  } catch (const CallbackFailure& e) {
    status = VARFLOW_CALLBACK_ERROR;
    message = e.what();
  } catch (const varflow::InvalidArgument& e) {
    status = VARFLOW_INVALID_ARGUMENT;
    message = e.what();
  } catch (const varflow::NumericalError& e) {
    status = VARFLOW_NUMERICAL_FAILURE;
    message = e.what();
  } catch (const std::bad_alloc&) {
    status = VARFLOW_INTERNAL_ERROR;
    message = "out of memory";
  } catch (const std::exception& e) {
    status = VARFLOW_INTERNAL_ERROR;
    message = e.what();
  } catch (...) {
    status = VARFLOW_INTERNAL_ERROR;
    message = "unknown error";
  }
  if (status != VARFLOW_OK && !message.empty()) {
    last_error = message;
    if (handle_error) *handle_error = message;
  }
  return status;
}

// The status of a call on a NULL handle (there is no handle to keep the message).
varflow_status null_handle(const char* function, const char* argument) {
  last_error = varflow::format_message(function, ": ", argument, " is NULL");
  return VARFLOW_INVALID_ARGUMENT;
}

void require(bool ok, const char* function, const char* what) {
  if (!ok) throw varflow::InvalidArgument(varflow::format_message(function, ": ", what));
}
template <typename T>
void require_pointer(const T* p, const char* function, const char* argument) {
  if (p == nullptr) throw varflow::InvalidArgument(varflow::format_message(function, ": ", argument, " is NULL"));
}
void require_size(Index n, const char* function, const char* argument) {
  if (n < 1) throw varflow::InvalidArgument(varflow::format_message(function, ": ", argument, " = ", n, " must be at least 1"));
}

Vector copy_in(const double* p, Index n) { return Eigen::Map<const Vector>(p, n); }
void copy_out(const Vector& v, double* out) { Eigen::Map<Vector>(out, v.size()) = v; }
varflow::Mask mask_in(const int* mask, Index m) {
  varflow::Mask out;
  if (mask == nullptr) return out;
  out.resize(m);
  for (Index i = 0; i < m; ++i) out[i] = mask[i] != 0;
  return out;
}

void fill_report(const varflow::LinearizationReport& r, varflow_check_report* out) {
  out->dot_product_relative_error = r.dot_product.relative_error;
  out->taylor_min_ratio = r.taylor.min_ratio;
  out->taylor_linear_decades = r.taylor.linear_decades;
  out->linearity_error = r.linearity.linearity_error;
  out->dot_product_passed = r.dot_product.passed;
  out->taylor_passed = r.taylor.passed;
  out->linearity_passed = r.linearity.passed;
  out->passed = r.passed();
}

std::string name_or(const char* name, const char* fallback) { return name ? std::string(name) : std::string(fallback); }

}  // namespace

extern "C" {

const char* varflow_last_error(void) { return last_error.c_str(); }
const char* varflow_version(void) { return VARFLOW_VERSION_STRING; }

// ---- models ----------------------------------------------------------------------------------------

varflow_status varflow_model_create(int64_t n, varflow_step_fn step, varflow_step_tangent_fn tangent,
                                    varflow_step_adjoint_fn adjoint, void* user, const char* name,
                                    varflow_model** out) {
  return guarded(nullptr, [&] {
    const char* f = "varflow_model_create";
    require_pointer(out, f, "out");
    *out = nullptr;
    require_size(n, f, "n");
    require(step && tangent && adjoint, f, "the step, tangent and adjoint call-backs must all be given");
    auto h = std::make_unique<varflow_model>();
    auto model = std::make_shared<CallbackModel>(n, step, tangent, adjoint, user, name_or(name, "user model"));
    h->log = &model->log();
    h->model = std::move(model);
    *out = h.release();
    return VARFLOW_OK;
  });
}

varflow_status varflow_model_create_registered(const char* name, int64_t count, const char* const* keys,
                                               const double* values, varflow_model** out) {
  return guarded(nullptr, [&] {
    const char* f = "varflow_model_create_registered";
    require_pointer(out, f, "out");
    *out = nullptr;
    require_pointer(name, f, "name");
    require(count >= 0, f, "count must be >= 0");
    if (count > 0) {
      require_pointer(keys, f, "keys");
      require_pointer(values, f, "values");
    }
    varflow::ModelSpec spec;
    spec.name = varflow::find_model(name, f).name;
    spec.parameters = varflow::ModelSpec::default_parameters(spec.name);
    for (int64_t i = 0; i < count; ++i) {
      require_pointer(keys[i], f, "a key");
      if (spec.parameters.find(keys[i]) == spec.parameters.end()) {
        throw varflow::InvalidArgument(varflow::format_message(f, ": model ", spec.name, " has no parameter '", keys[i], "'"));
      }
      spec.parameters[keys[i]] = values[i];
    }
    auto h = std::make_unique<varflow_model>();
    h->model = spec.make();
    *out = h.release();
    return VARFLOW_OK;
  });
}

void varflow_model_destroy(varflow_model* model) { delete model; }
int64_t varflow_model_state_size(const varflow_model* model) { return model ? model->model->state_size() : 0; }
const char* varflow_model_last_error(const varflow_model* model) { return model ? model->error.c_str() : ""; }

varflow_status varflow_model_forecast(varflow_model* model, int64_t steps, double* x) {
  if (model == nullptr) return null_handle("varflow_model_forecast", "model");
  return guarded(&model->error, [&] {
    const char* f = "varflow_model_forecast";
    require_pointer(x, f, "x");
    require(steps >= 0, f, "steps must be >= 0");
    const CallbackScope scope({model->log});
    Vector state = copy_in(x, model->model->state_size());
    for (int64_t k = 0; k < steps; ++k) model->model->step(state);
    copy_out(state, x);
    return VARFLOW_OK;
  });
}

varflow_status varflow_model_check(varflow_model* model, const double* x, int64_t steps, uint64_t seed,
                                   varflow_check_report* report) {
  if (model == nullptr) return null_handle("varflow_model_check", "model");
  return guarded(&model->error, [&] {
    const char* f = "varflow_model_check";
    require_pointer(x, f, "x");
    require_pointer(report, f, "report");
    require(steps >= 1, f, "steps must be >= 1");
    const Vector x0 = copy_in(x, model->model->state_size());
    varflow::check_finite(f, "x", x0);
    varflow::Rng rng(seed);
    const CallbackScope scope({model->log});
    NonFiniteAllowed allowed(model->log);
    fill_report(varflow::check_linearization(varflow::linearize(*model->model, x0, steps), x0, rng), report);
    return VARFLOW_OK;
  });
}

// ---- observation operators ------------------------------------------------------------------------

varflow_status varflow_obs_operator_create(int64_t n, int64_t m, varflow_obs_apply_fn apply,
                                           varflow_obs_tangent_fn tangent, varflow_obs_adjoint_fn adjoint,
                                           void* user, const char* name, varflow_obs_operator** out) {
  return guarded(nullptr, [&] {
    const char* f = "varflow_obs_operator_create";
    require_pointer(out, f, "out");
    *out = nullptr;
    require_size(n, f, "n");
    require_size(m, f, "m");
    require(apply && tangent && adjoint, f, "the apply, tangent and adjoint call-backs must all be given");
    auto h = std::make_unique<varflow_obs_operator>();
    auto op = std::make_shared<CallbackOperator>(n, m, apply, tangent, adjoint, user, name_or(name, "user operator"));
    h->log = &op->log();
    h->op = std::move(op);
    *out = h.release();
    return VARFLOW_OK;
  });
}

varflow_status varflow_obs_operator_create_identity(int64_t n, varflow_obs_operator** out) {
  return guarded(nullptr, [&] {
    const char* f = "varflow_obs_operator_create_identity";
    require_pointer(out, f, "out");
    *out = nullptr;
    require_size(n, f, "n");
    auto h = std::make_unique<varflow_obs_operator>();
    h->op = std::make_shared<varflow::IdentityObservation>(n);
    *out = h.release();
    return VARFLOW_OK;
  });
}

varflow_status varflow_obs_operator_create_subset(int64_t n, int64_t count, const int64_t* indices,
                                                  varflow_obs_operator** out) {
  return guarded(nullptr, [&] {
    const char* f = "varflow_obs_operator_create_subset";
    require_pointer(out, f, "out");
    *out = nullptr;
    require_size(n, f, "n");
    require_size(count, f, "count");
    require_pointer(indices, f, "indices");
    auto h = std::make_unique<varflow_obs_operator>();
    h->op = std::make_shared<varflow::SubsetObservation>(n, std::vector<Index>(indices, indices + count));
    *out = h.release();
    return VARFLOW_OK;
  });
}

void varflow_obs_operator_destroy(varflow_obs_operator* op) { delete op; }
const char* varflow_obs_operator_last_error(const varflow_obs_operator* op) { return op ? op->error.c_str() : ""; }

varflow_status varflow_obs_operator_check(varflow_obs_operator* op, const double* x, uint64_t seed,
                                          varflow_check_report* report) {
  if (op == nullptr) return null_handle("varflow_obs_operator_check", "op");
  return guarded(&op->error, [&] {
    const char* f = "varflow_obs_operator_check";
    require_pointer(x, f, "x");
    require_pointer(report, f, "report");
    const Vector x0 = copy_in(x, op->op->state_size());
    varflow::check_finite(f, "x", x0);
    varflow::Rng rng(seed);
    const CallbackScope scope({op->log});
    NonFiniteAllowed allowed(op->log);
    fill_report(varflow::check_linearization(varflow::linearize(*op->op, x0), x0, rng), report);
    return VARFLOW_OK;
  });
}

// ---- windows and solves ----------------------------------------------------------------------------

varflow_status varflow_window_create(varflow_model* model, int64_t n, const double* background, int64_t steps,
                                     varflow_window** out) {
  return guarded(model ? &model->error : nullptr, [&] {
    const char* f = "varflow_window_create";
    require_pointer(out, f, "out");
    *out = nullptr;
    require_size(n, f, "n");
    require_pointer(background, f, "background");
    require(steps >= 0, f, "steps must be >= 0");
    if (steps > 0) require_pointer(model, f, "model (a window of steps > 0 needs one)");
    if (model && model->model->state_size() != n) {
      throw varflow::InvalidArgument(varflow::format_message(f, ": n = ", n, " but the model has ",
                                                             model->model->state_size(), " variables"));
    }
    auto h = std::make_unique<varflow_window>();
    h->window.background = copy_in(background, n);
    varflow::check_finite(f, "background", h->window.background);
    if (model) {
      h->window.model = model->model;
      h->logs.push_back(model->log);
    }
    h->window.steps = steps;
    *out = h.release();
    return VARFLOW_OK;
  });
}

void varflow_window_destroy(varflow_window* window) { delete window; }
const char* varflow_window_last_error(const varflow_window* window) { return window ? window->error.c_str() : ""; }

varflow_status varflow_window_set_b_diagonal(varflow_window* window, const double* variances) {
  if (window == nullptr) return null_handle("varflow_window_set_b_diagonal", "window");
  return guarded(&window->error, [&] {
    require_pointer(variances, "varflow_window_set_b_diagonal", "variances");
    window->window.b = std::make_shared<varflow::DiagonalCovariance>(copy_in(variances, window->window.state_size()));
    return VARFLOW_OK;
  });
}

varflow_status varflow_window_set_b_periodic_gaussian(varflow_window* window, double variance,
                                                      double length_scale, double nugget) {
  if (window == nullptr) return null_handle("varflow_window_set_b_periodic_gaussian", "window");
  return guarded(&window->error, [&] {
    window->window.b = std::make_shared<varflow::PeriodicGaussianCovariance>(window->window.state_size(), variance,
                                                                             length_scale, 1.0, nugget);
    return VARFLOW_OK;
  });
}

varflow_status varflow_window_add_observations(varflow_window* window, int64_t step, varflow_obs_operator* op,
                                               int64_t m, const double* values, const int* mask,
                                               const double* error_variances) {
  if (window == nullptr) return null_handle("varflow_window_add_observations", "window");
  return guarded(&window->error, [&] {
    const char* f = "varflow_window_add_observations";
    require_pointer(op, f, "op");
    require_pointer(values, f, "values");
    require_pointer(error_variances, f, "error_variances");
    require_size(m, f, "m");
    if (op->op->obs_size() != m || op->op->state_size() != window->window.state_size()) {
      throw varflow::InvalidArgument(varflow::format_message(
          f, ": the operator maps ", op->op->state_size(), " to ", op->op->obs_size(), " values, but the window has ",
          window->window.state_size(), " variables and m = ", m));
    }
    varflow::Observations o;
    o.step = step;
    o.values = copy_in(values, m);
    o.mask = mask_in(mask, m);
    o.op = op->op;
    o.r = std::make_shared<varflow::DiagonalCovariance>(copy_in(error_variances, m));
    varflow::with_context(f, [&] { o.validate(window->window.state_size()); });
    if (step < 0 || step > window->window.steps) {
      throw varflow::InvalidArgument(varflow::format_message(f, ": step = ", step, " is outside the window [0, ",
                                                             window->window.steps, "]"));
    }
    window->window.observations.push_back(std::move(o));
    window->logs.push_back(op->log);
    return VARFLOW_OK;
  });
}

varflow_status varflow_solve(varflow_window* window, varflow_method method, varflow_result** out) {
  if (window == nullptr) return null_handle("varflow_solve", "window");
  return guarded(&window->error, [&] {
    const char* f = "varflow_solve";
    require_pointer(out, f, "out");
    *out = nullptr;
    varflow::AssimilationWindow& w = window->window;
    require(w.b != nullptr, f, "the window has no B (call varflow_window_set_b_diagonal or _periodic_gaussian)");
    require(!w.observations.empty(), f, "the window has no observations");
    if (method == VARFLOW_3DVAR && w.steps != 0) {
      throw varflow::InvalidArgument(varflow::format_message(f, ": 3D-Var needs a window of 0 steps, not ", w.steps));
    }
    varflow::with_context(f, [&] { w.validate(); });
    const CallbackScope scope(window->logs);
    auto r = std::make_unique<varflow_result>();
    switch (method) {
      case VARFLOW_STRONG_4DVAR:
        r->result = varflow::StrongFourDVar().solve(w, &r->summary);
        break;
      case VARFLOW_INCREMENTAL_4DVAR: {
        varflow::GaussNewtonOptions o;
        o.posterior_lanczos_vectors = w.state_size();
        r->result = varflow::IncrementalFourDVar(o).solve(w, &r->summary);
        break;
      }
      case VARFLOW_3DVAR: {
        varflow::GaussNewtonOptions o;
        o.posterior_lanczos_vectors = w.state_size();
        r->result = varflow::ThreeDVar(o).solve(w, &r->summary);
        break;
      }
      default:
        throw varflow::InvalidArgument(varflow::format_message(f, ": method = ", static_cast<int>(method),
                                                               " is not one of 0 (strong), 1 (incremental), 2 (3D-Var)"));
    }
    const std::string failure = scope.failure();
    if (!failure.empty()) throw CallbackFailure(failure);
    r->observation_size = w.observation_size();
    const bool converged = r->summary.converged();
    if (!converged) {
      const std::string message = varflow::format_message(f, ": ", r->summary.BriefReport());
      last_error = message;
      window->error = message;
      r->error = message;
    }
    *out = r.release();
    return converged ? VARFLOW_OK : VARFLOW_NUMERICAL_FAILURE;
  });
}

void varflow_result_destroy(varflow_result* result) { delete result; }
const char* varflow_result_last_error(const varflow_result* result) { return result ? result->error.c_str() : ""; }
int64_t varflow_result_state_size(const varflow_result* result) { return result ? result->result.analysis.size() : 0; }
int64_t varflow_result_observation_size(const varflow_result* result) { return result ? result->observation_size : 0; }

varflow_status varflow_result_analysis(const varflow_result* result, double* out) {
  if (result == nullptr) return null_handle("varflow_result_analysis", "result");
  return guarded(nullptr, [&] {
    require_pointer(out, "varflow_result_analysis", "out");
    copy_out(result->result.analysis, out);
    return VARFLOW_OK;
  });
}

varflow_status varflow_result_posterior_std(const varflow_result* result, double* out) {
  if (result == nullptr) return null_handle("varflow_result_posterior_std", "result");
  return guarded(nullptr, [&] {
    require_pointer(out, "varflow_result_posterior_std", "out");
    if (!result->result.posterior) {
      throw varflow::NumericalError("varflow_result_posterior_std: the solver gave no posterior: " +
                                    result->summary.posterior_message);
    }
    copy_out(result->result.posterior->marginal_std(), out);
    return VARFLOW_OK;
  });
}

varflow_status varflow_result_summary(const varflow_result* result, varflow_summary* out) {
  if (result == nullptr) return null_handle("varflow_result_summary", "result");
  return guarded(nullptr, [&] {
    require_pointer(out, "varflow_result_summary", "out");
    const varflow::SolverSummary& s = result->summary;
    out->converged = s.converged();
    out->termination = static_cast<int>(s.termination_type);
    out->iterations = s.iterations;
    out->outer_iterations = s.outer_iterations;
    out->initial_cost = s.initial_cost;
    out->final_cost = s.final_cost;
    out->final_gradient_norm = s.final_gradient_norm;
    out->wall_time_seconds = s.wall_time_seconds;
    out->tl_sweeps = s.num_tl_sweeps;
    out->ad_sweeps = s.num_ad_sweeps;
    out->forward_runs = s.num_forward_runs;
    out->posterior_rank = s.posterior_rank;
    return VARFLOW_OK;
  });
}

namespace {
varflow::ObservationSensitivity& sensitivity_of(varflow_result& r, const char* f) {
  if (!r.sensitivity) {
    if (!r.result.map || !r.result.posterior) {
      throw varflow::NumericalError(varflow::format_message(f, ": the solve gave no linearisation or posterior at the MAP"));
    }
    // P_a, owned by the posterior (aliasing shared_ptr).
    std::shared_ptr<const varflow::Covariance> p(r.result.posterior, r.result.posterior->covariance());
    r.sensitivity = std::make_unique<varflow::ObservationSensitivity>(*r.result.map, std::move(p));
  }
  return *r.sensitivity;
}
}  // namespace

varflow_status varflow_result_sensitivity_apply(varflow_result* result, const double* v, double* out) {
  if (result == nullptr) return null_handle("varflow_result_sensitivity_apply", "result");
  return guarded(&result->error, [&] {
    const char* f = "varflow_result_sensitivity_apply";
    require_pointer(v, f, "v");
    require_pointer(out, f, "out");
    varflow::ObservationSensitivity& j = sensitivity_of(*result, f);
    copy_out(j.apply(copy_in(v, j.observation_size())), out);
    return VARFLOW_OK;
  });
}

varflow_status varflow_result_sensitivity_apply_transpose(varflow_result* result, const double* w, double* out) {
  if (result == nullptr) return null_handle("varflow_result_sensitivity_apply_transpose", "result");
  return guarded(&result->error, [&] {
    const char* f = "varflow_result_sensitivity_apply_transpose";
    require_pointer(w, f, "w");
    require_pointer(out, f, "out");
    varflow::ObservationSensitivity& j = sensitivity_of(*result, f);
    copy_out(j.apply_transpose(copy_in(w, j.control_size())), out);
    return VARFLOW_OK;
  });
}

// ---- amortized posteriors --------------------------------------------------------------------------

varflow_status varflow_amortized_load(const char* path, varflow_amortized** out) {
  return guarded(nullptr, [&] {
    const char* f = "varflow_amortized_load";
    require_pointer(out, f, "out");
    *out = nullptr;
    require_pointer(path, f, "path");
    auto h = std::make_unique<varflow_amortized>();
    h->q = std::make_unique<varflow::amortized::AmortizedPosterior>(varflow::amortized::AmortizedPosterior::load(path));
    if (!h->q->trained()) {
      throw varflow::InvalidArgument(varflow::format_message(f, ": model ", path, " was never trained (trained = 0)"));
    }
    *out = h.release();
    return VARFLOW_OK;
  });
}

void varflow_amortized_destroy(varflow_amortized* model) { delete model; }
const char* varflow_amortized_last_error(const varflow_amortized* model) { return model ? model->error.c_str() : ""; }
int64_t varflow_amortized_state_size(const varflow_amortized* model) { return model ? model->q->shape().state_size : 0; }
int64_t varflow_amortized_observation_size(const varflow_amortized* model) { return model ? model->q->shape().obs_size : 0; }

namespace {
// The observations, checked: finite where present.
Vector observations_in(const varflow_amortized& h, const double* y, const varflow::Mask& mask, const char* f) {
  require_pointer(y, f, "y");
  const Vector v = copy_in(y, h.q->shape().obs_size);
  for (Index i = 0; i < v.size(); ++i) {
    if ((mask.size() == 0 || mask[i]) && !std::isfinite(v[i])) {
      throw varflow::InvalidArgument(varflow::format_message(f, ": y[", i, "] = ", v[i], " is not finite (mask it)"));
    }
  }
  return v;
}
void check_output(const Matrix& m, const char* f) {
  if (!m.allFinite()) throw varflow::NumericalError(varflow::format_message(f, ": the model gave a non-finite value"));
}
}  // namespace

varflow_status varflow_amortized_mean(varflow_amortized* model, const double* y, const int* mask, double* out) {
  if (model == nullptr) return null_handle("varflow_amortized_mean", "model");
  return guarded(&model->error, [&] {
    const char* f = "varflow_amortized_mean";
    require_pointer(out, f, "out");
    const varflow::Mask m = mask_in(mask, model->q->shape().obs_size);
    const Vector mean = model->q->mean(observations_in(*model, y, m, f), m);
    check_output(mean, f);
    copy_out(mean, out);
    return VARFLOW_OK;
  });
}

varflow_status varflow_amortized_sample(varflow_amortized* model, const double* y, const int* mask, int64_t count,
                                        uint64_t seed, double* out) {
  if (model == nullptr) return null_handle("varflow_amortized_sample", "model");
  return guarded(&model->error, [&] {
    const char* f = "varflow_amortized_sample";
    require_pointer(out, f, "out");
    require_size(count, f, "count");
    const varflow::Mask m = mask_in(mask, model->q->shape().obs_size);
    varflow::Rng rng(seed);
    const Matrix draws = model->q->sample(observations_in(*model, y, m, f), count, rng, m);
    check_output(draws, f);
    Eigen::Map<Matrix>(out, draws.rows(), draws.cols()) = draws;
    return VARFLOW_OK;
  });
}

varflow_status varflow_amortized_log_prob(varflow_amortized* model, const double* y, const int* mask,
                                          int64_t count, const double* x, double* out) {
  if (model == nullptr) return null_handle("varflow_amortized_log_prob", "model");
  return guarded(&model->error, [&] {
    const char* f = "varflow_amortized_log_prob";
    require_pointer(x, f, "x");
    require_pointer(out, f, "out");
    require_size(count, f, "count");
    const varflow::Mask m = mask_in(mask, model->q->shape().obs_size);
    const Matrix states = Eigen::Map<const Matrix>(x, model->q->shape().state_size, count);
    const Vector lp = model->q->log_prob(states, observations_in(*model, y, m, f), m);
    copy_out(lp, out);
    return VARFLOW_OK;
  });
}

// ---- the gates against a user's oracle ---------------------------------------------------------------

}  // extern "C"

namespace {

// The user's oracle (varflow_oracle) as a report::Oracle with its simulator. Every call-back result
// is checked: a nonzero return or a non-finite value (NaN is allowed in simulated y where the model's
// observations are gridded) ends the run through the CallbackLog.
class CallbackOracle final : public varflow::report::Oracle, public varflow::amortized::Simulator {
 public:
  CallbackOracle(const varflow_oracle& o, const varflow::amortized::ProblemShape& shape)
      : o_(o), shape_(shape), description_(o.description ? o.description : "a user oracle (C call-backs)") {}
  CallbackLog& log() const { return log_; }

  // Simulator
  std::string name() const override { return "user"; }
  std::string describe() const override { return description_; }
  varflow::amortized::ProblemShape shape() const override { return shape_; }
  varflow::amortized::Dataset simulate(Index count, varflow::Rng& rng) const override {
    varflow::amortized::Dataset d;
    d.x.resize(shape_.state_size, count);
    d.y.resize(shape_.obs_size, count);
    for (Index j = 0; j < count; ++j) {
      const std::uint64_t seed = rng.engine()();
      std::lock_guard<std::mutex> lock(log_.mutex);
      Vector x(shape_.state_size), y(shape_.obs_size);
      check_returned(log_, o_.simulate(o_.user, seed, x.size(), x.data(), y.size(), y.data()), kWho, "simulate");
      check_written(log_, x, kWho, "simulate (x)");
      for (Index i = 0; i < y.size(); ++i) {
        if (std::isinf(y[i]) || (std::isnan(y[i]) && !shape_.gridded())) {
          log_.fail(varflow::format_message(kWho, ": the simulate call-back wrote y[", i, "] = ", y[i],
                                            shape_.gridded() ? "" : " (the model's observations have no missing values)"));
        }
      }
      d.x.col(j) = x;
      d.y.col(j) = y;
    }
    return d;
  }

  // Oracle
  const varflow::amortized::Simulator& simulator() const override { return *this; }
  std::vector<std::string> notes() const override {
    return {"the oracle is the caller's (C call-backs): its posterior is taken as Gaussian with the given marginal "
            "standard deviations"};
  }
  std::shared_ptr<const varflow::Posterior> posterior(const Vector& y) override {
    std::lock_guard<std::mutex> lock(log_.mutex);
    Vector mean(shape_.state_size), sd(shape_.state_size);
    check_returned(log_, o_.posterior(o_.user, y.size(), y.data(), mean.size(), mean.data(), sd.data()), kWho,
                   "posterior");
    check_written(log_, mean, kWho, "posterior (mean)");
    check_written(log_, sd, kWho, "posterior (std)");
    for (Index i = 0; i < sd.size(); ++i) {
      if (!(sd[i] > 0.0)) log_.fail(varflow::format_message(kWho, ": the posterior call-back wrote std[", i, "] = ", sd[i], ", not positive"));
    }
    return std::make_shared<varflow::GaussianPosterior>(
        mean, std::make_shared<varflow::DiagonalCovariance>(sd.array().square().matrix()));
  }
  varflow::JacobianOperator jacobian(const Vector& y) override {
    const Index n = shape_.state_size, m = shape_.obs_size;
    return {[this, y, n](const Vector& v) {
              std::lock_guard<std::mutex> lock(log_.mutex);
              Vector out(n);
              check_returned(log_, o_.jvp(o_.user, y.size(), y.data(), v.data(), n, out.data()), kWho, "jvp");
              check_written(log_, out, kWho, "jvp");
              return out;
            },
            [this, y, m](const Vector& w) {
              std::lock_guard<std::mutex> lock(log_.mutex);
              Vector out(m);
              check_returned(log_, o_.vjp(o_.user, m, y.data(), w.size(), w.data(), out.data()), kWho, "vjp");
              check_written(log_, out, kWho, "vjp");
              return out;
            },
            m, n};
  }

 private:
  static constexpr const char* kWho = "user oracle";
  varflow_oracle o_;
  varflow::amortized::ProblemShape shape_;
  std::string description_;
  mutable CallbackLog log_;
};

// Largest |d| over the agreement's standardised differences (infinite when one is not finite, as the
// gate counts it).
double max_abs_difference(const varflow::AgreementResult& a) {
  if (a.standardized_difference.size() == 0) return 0.0;
  if (!a.standardized_difference.allFinite()) return INFINITY;
  return a.standardized_difference.cwiseAbs().maxCoeff();
}

// varflow_amortized_validate over `comm` (the serial communicator for the one-process call).
varflow_status validate_against_user_oracle(const char* f, varflow_amortized* model, const varflow_oracle* oracle,
                                            const varflow_gate_options* options, varflow_gate_report* out,
                                            const std::function<std::unique_ptr<varflow::Communicator>()>& make_comm) {
  if (model == nullptr) return null_handle(f, "model");
  return guarded(&model->error, [&] {
    require_pointer(oracle, f, "oracle");
    require_pointer(out, f, "out");
    *out = varflow_gate_report{};  // zeros unless the gates run
    require(oracle->simulate && oracle->posterior && oracle->jvp && oracle->vjp, f,
            "oracle: every call-back (simulate, posterior, jvp, vjp) is required");
    varflow::report::ValidationOptions v;
    std::uint64_t seed = 1;
    const char* report_dir = nullptr;
    if (options) {
      require(options->events >= 0 && options->sbc_simulations >= 0, f,
              "options: events and sbc_simulations must be >= 0 (0: the default)");
      if (options->events > 0) v.events = options->events;
      if (options->sbc_simulations > 0) v.gates.sbc.simulations = options->sbc_simulations;
      seed = options->seed;
      report_dir = options->report_dir;
    }
    v.jacobian_cases = std::min(v.jacobian_cases, v.events);
    const std::unique_ptr<varflow::Communicator> comm = make_comm();
    CallbackOracle user(*oracle, model->q->shape());
    varflow::Rng rng(seed);
    varflow::report::ValidationReport r;
    try {
      r = varflow::report::validate_model(*model->q, user, v, rng, {}, *comm);
    } catch (const std::exception& e) {
      // The gates' item runner carries failures by kind (invalid, numerical); a call-back's failure
      // stays a call-back error, on every rank: the ranks failed together (the item runner's
      // agreement), so they can agree on whether a call-back failed on any of them.
      const bool here = !user.log().failure.empty();
      double anywhere = here ? 1.0 : 0.0;
      if (comm->size() > 1 && varflow::is_agreed_failure(e)) comm->allreduce_sum(&anywhere, 1);
      if (anywhere > 0.0) throw CallbackFailure(comm->size() > 1 ? std::string(e.what()) : user.log().failure);
      throw;
    }
    r.model_path = "(loaded through the C ABI)";
    if (report_dir) varflow::run_on_root(*comm, [&] { varflow::report::write_report(r, report_dir); });
    const auto& d = r.decision;
    out->promoted = r.passed() ? 1 : 0;
    out->agreement_passed = d.agreement.passed() ? 1 : 0;
    out->adjoint_passed = d.adjoint_calibration.passed() ? 1 : 0;
    out->sbc_passed = d.sbc.passed() ? 1 : 0;
    out->max_abs_standardized_difference = max_abs_difference(d.agreement);
    out->spread_ratio_median = d.agreement.spread_ratio_median;
    for (const auto& j : d.adjoint_calibration.jacobians) {
      out->max_probe_error = std::max(out->max_probe_error, j.max_probe_error);
    }
    out->sbc_min_p_value = d.sbc.min_p_value;
    return VARFLOW_OK;
  });
}

}  // namespace

extern "C" {

varflow_status varflow_amortized_validate(varflow_amortized* model, const varflow_oracle* oracle,
                                          const varflow_gate_options* options, varflow_gate_report* out) {
  return validate_against_user_oracle("varflow_amortized_validate", model, oracle, options, out,
                                      [] { return varflow::serial_communicator().split(0, 0); });
}

varflow_status varflow_amortized_validate_mpi(varflow_amortized* model, const varflow_oracle* oracle,
                                              const varflow_gate_options* options, int fortran_comm,
                                              varflow_gate_report* out) {
  return validate_against_user_oracle("varflow_amortized_validate_mpi", model, oracle, options, out, [fortran_comm] {
    return varflow::communicator_from_fortran_handle(fortran_comm);
  });
}

}  // extern "C"
