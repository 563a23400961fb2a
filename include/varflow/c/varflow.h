/* The C ABI of varflow (C99): plug a model and an observation operator written in C or Fortran into
 * varflow's 4D-Var and 3D-Var, check their tangent-linear and adjoint, and sample a trained amortized
 * posterior. design/c_abi.md has the rules; the Fortran module (fortran/varflow.f90) binds this file.
 *
 * Rules:
 *  - Handles are opaque. Every *_create / *_load returns a handle through its last argument and is
 *    released with the matching *_destroy (NULL is accepted). A window keeps its own references to
 *    the model, operators and covariances it was given, so those may be destroyed after use.
 *  - Every function returns a varflow_status. No C++ exception crosses this boundary.
 *  - The message of the last failure on the calling thread is varflow_last_error() (valid until the
 *    next call on that thread); a handle also keeps the message of the last failure that involved it
 *    (varflow_*_last_error). Messages name the argument and its value.
 *  - Arrays are plain double arrays of the stated length; matrices are column-major (one sample per
 *    column). Masks are int arrays, nonzero = present; NULL = all present.
 *  - Call-backs return 0 on success and any other value on failure; a failure, or a non-finite value
 *    written by a call-back, ends the varflow call with VARFLOW_CALLBACK_ERROR (or
 *    VARFLOW_NUMERICAL_FAILURE when a solver can carry on and report it), never a crash.
 *  - Threads: a handle may be used by one thread at a time. varflow calls a model's or an operator's
 *    call-backs one at a time, from the thread that called into varflow.
 */
#ifndef VARFLOW_C_VARFLOW_H
#define VARFLOW_C_VARFLOW_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum varflow_status {
  VARFLOW_OK = 0,
  VARFLOW_NUMERICAL_FAILURE = 1, /* no convergence, NaN, a non-SPD matrix: the result is reported */
  VARFLOW_INVALID_ARGUMENT = 2,  /* a wrong size, a NULL pointer, a bad value: nothing was done */
  VARFLOW_CALLBACK_ERROR = 3,    /* a call-back returned nonzero or wrote a non-finite value */
  VARFLOW_INTERNAL_ERROR = 4     /* anything else (e.g. out of memory) */
} varflow_status;

typedef enum varflow_method {
  VARFLOW_STRONG_4DVAR = 0,      /* L-BFGS on the full nonlinear cost, dense Laplace posterior */
  VARFLOW_INCREMENTAL_4DVAR = 1, /* Gauss-Newton outer loops, Lanczos-CG inner loops */
  VARFLOW_3DVAR = 2              /* a window of 0 steps; the model may be NULL */
} varflow_method;

typedef struct varflow_model varflow_model;
typedef struct varflow_obs_operator varflow_obs_operator;
typedef struct varflow_window varflow_window;
typedef struct varflow_result varflow_result;
typedef struct varflow_amortized varflow_amortized;

/* The message of the last failure on this thread ("" when none). */
const char* varflow_last_error(void);
/* The library version, e.g. "0.9.0". */
const char* varflow_version(void);

/* ---- models ------------------------------------------------------------------------------------ */

/* x <- M(x), one step. */
typedef int (*varflow_step_fn)(void* user, int64_t n, double* x);
/* dx <- M'(x) dx, linearised about the state x at the start of the step. */
typedef int (*varflow_step_tangent_fn)(void* user, int64_t n, const double* x, double* dx);
/* ax <- M'(x)^T ax. */
typedef int (*varflow_step_adjoint_fn)(void* user, int64_t n, const double* x, double* ax);

/* A model of n variables given as call-backs; `user` is passed back untouched (varflow does not own
 * it). `name` is copied (may be NULL). */
varflow_status varflow_model_create(int64_t n, varflow_step_fn step, varflow_step_tangent_fn tangent,
                                    varflow_step_adjoint_fn adjoint, void* user, const char* name,
                                    varflow_model** out);
/* A registered model (lorenz96, lorenz63, advection_diffusion, ...) with `count` parameters by key
 * (e.g. {"n", "forcing", "dt"}); parameters not given keep their defaults. */
varflow_status varflow_model_create_registered(const char* name, int64_t count, const char* const* keys,
                                               const double* values, varflow_model** out);
void varflow_model_destroy(varflow_model* model);
int64_t varflow_model_state_size(const varflow_model* model);
const char* varflow_model_last_error(const varflow_model* model);
/* x <- M^steps(x) (x of length state_size). */
varflow_status varflow_model_forecast(varflow_model* model, int64_t steps, double* x);

/* The figures of the TL/AD checks of one linearisation (design/gates.md, "linearization checks"). */
typedef struct varflow_check_report {
  double dot_product_relative_error; /* |<L dx, ay> - <dx, L^T ay>| relative */
  double taylor_min_ratio;           /* min over e of ||N(x+e dx) - N(x) - e L dx|| / ||e L dx|| */
  double taylor_linear_decades;      /* decades of e over which that ratio falls linearly */
  double linearity_error;            /* relative residual of L(a dx1 + b dx2) - a L dx1 - b L dx2 */
  int dot_product_passed, taylor_passed, linearity_passed, passed;
} varflow_check_report;

/* Runs the dot-product, Taylor and linearity checks of `steps` model steps at x (random directions
 * from `seed`). VARFLOW_OK when they ran (see report->passed for the verdict). */
varflow_status varflow_model_check(varflow_model* model, const double* x, int64_t steps, uint64_t seed,
                                   varflow_check_report* report);

/* ---- observation operators --------------------------------------------------------------------- */

/* y <- H(x), x of length n, y of length m. */
typedef int (*varflow_obs_apply_fn)(void* user, int64_t n, const double* x, int64_t m, double* y);
/* dy <- H'(x) dx. */
typedef int (*varflow_obs_tangent_fn)(void* user, int64_t n, const double* x, const double* dx, int64_t m,
                                      double* dy);
/* ax <- H'(x)^T ay. */
typedef int (*varflow_obs_adjoint_fn)(void* user, int64_t n, const double* x, int64_t m, const double* ay,
                                      double* ax);

varflow_status varflow_obs_operator_create(int64_t n, int64_t m, varflow_obs_apply_fn apply,
                                           varflow_obs_tangent_fn tangent, varflow_obs_adjoint_fn adjoint,
                                           void* user, const char* name, varflow_obs_operator** out);
/* y = x (m = n). */
varflow_status varflow_obs_operator_create_identity(int64_t n, varflow_obs_operator** out);
/* y = x[indices], m = count (0-based indices). */
varflow_status varflow_obs_operator_create_subset(int64_t n, int64_t count, const int64_t* indices,
                                                  varflow_obs_operator** out);
void varflow_obs_operator_destroy(varflow_obs_operator* op);
const char* varflow_obs_operator_last_error(const varflow_obs_operator* op);
varflow_status varflow_obs_operator_check(varflow_obs_operator* op, const double* x, uint64_t seed,
                                          varflow_check_report* report);

/* ---- one assimilation window ------------------------------------------------------------------- */

/* A window of `steps` model steps from the background x_b (length n). `model` may be NULL when
 * steps = 0 (3D-Var). B is set by one of the varflow_window_set_b_* calls. */
varflow_status varflow_window_create(varflow_model* model, int64_t n, const double* background, int64_t steps,
                                     varflow_window** out);
void varflow_window_destroy(varflow_window* window);
const char* varflow_window_last_error(const varflow_window* window);
/* B = diag(variances), variances of length n, each > 0. */
varflow_status varflow_window_set_b_diagonal(varflow_window* window, const double* variances);
/* B = variance * C, C the periodic Gaussian correlation with `length_scale` grid points (plus
 * nugget * I) on a ring of n points. */
varflow_status varflow_window_set_b_periodic_gaussian(varflow_window* window, double variance,
                                                      double length_scale, double nugget);
/* Observations at model step `step` (0 <= step <= steps) through `op`: m values, mask (NULL = all
 * present), R = diag(error_variances). */
varflow_status varflow_window_add_observations(varflow_window* window, int64_t step, varflow_obs_operator* op,
                                               int64_t m, const double* values, const int* mask,
                                               const double* error_variances);

/* The solver's summary. */
typedef struct varflow_summary {
  int converged;         /* 1 when a convergence tolerance was met */
  int termination;       /* 0 converged, 1 no convergence, 2 numerical failure */
  int iterations;        /* L-BFGS or inner CG iterations */
  int outer_iterations;  /* Gauss-Newton outer loops (0 for L-BFGS) */
  double initial_cost, final_cost, final_gradient_norm, wall_time_seconds;
  int64_t tl_sweeps, ad_sweeps, forward_runs;
  int64_t posterior_rank; /* 0 without a posterior */
} varflow_summary;

/* Solves the window. VARFLOW_OK when the solver converged, VARFLOW_NUMERICAL_FAILURE when it did not
 * (the result still holds the last good iterate and the summary says why), other statuses when
 * nothing could be solved (*out is then NULL). */
varflow_status varflow_solve(varflow_window* window, varflow_method method, varflow_result** out);
void varflow_result_destroy(varflow_result* result);
const char* varflow_result_last_error(const varflow_result* result);
int64_t varflow_result_state_size(const varflow_result* result);
int64_t varflow_result_observation_size(const varflow_result* result);
/* The analysis x_a (the MAP of x_0), length n. */
varflow_status varflow_result_analysis(const varflow_result* result, double* out);
/* Posterior standard deviations of x_0 (Laplace), length n. VARFLOW_NUMERICAL_FAILURE when the
 * solver gave no posterior. */
varflow_status varflow_result_posterior_std(const varflow_result* result, double* out);
varflow_status varflow_result_summary(const varflow_result* result, varflow_summary* out);
/* The Gauss-Newton observation sensitivity J = d x_a / d y at the analysis: out = J v (v of the
 * stacked observation length, out of length n) and out = J^T w (w of length n, out of the stacked
 * observation length; 0 at masked entries). Slots are stacked in the order they were added. */
varflow_status varflow_result_sensitivity_apply(varflow_result* result, const double* v, double* out);
varflow_status varflow_result_sensitivity_apply_transpose(varflow_result* result, const double* w, double* out);

/* ---- amortized posteriors ---------------------------------------------------------------------- */

/* Loads a model file written by `varflow train` (checksum verified). */
varflow_status varflow_amortized_load(const char* path, varflow_amortized** out);
void varflow_amortized_destroy(varflow_amortized* model);
const char* varflow_amortized_last_error(const varflow_amortized* model);
int64_t varflow_amortized_state_size(const varflow_amortized* model);
int64_t varflow_amortized_observation_size(const varflow_amortized* model);
/* The posterior mean for observations y (length obs_size, mask may be NULL), out of length n. */
varflow_status varflow_amortized_mean(varflow_amortized* model, const double* y, const int* mask, double* out);
/* `count` draws for y into out (n x count, column-major), from `seed`. */
varflow_status varflow_amortized_sample(varflow_amortized* model, const double* y, const int* mask, int64_t count,
                                        uint64_t seed, double* out);
/* log q(x_j | y) for `count` states x (n x count, column-major) into out (length count). */
varflow_status varflow_amortized_log_prob(varflow_amortized* model, const double* y, const int* mask,
                                          int64_t count, const double* x, double* out);

/* ---- the gates against a user's oracle ---------------------------------------------------------- */

/* The oracle of a problem, given as call-backs: the gates of `varflow validate` (design/gates.md:
 * posterior agreement on held-out events, adjoint calibration of J, simulation-based calibration)
 * compare an amortized model with it. n is the state size, m the observation size.
 *   simulate:  one pair from the joint p(x) p(y | x) into x (length n) and y (length m; NaN = missing),
 *              drawn deterministically from `seed` (varflow passes a different seed for each pair).
 *   posterior: the reference posterior at y: its mean and marginal standard deviations (length n),
 *              taken as a Gaussian with that diagonal covariance.
 *   jvp:       out = J v with J = d(posterior mean)/dy at y (v of length m, out of length n).
 *   vjp:       out = J^T w (w of length n, out of length m); it must be the transpose of jvp. */
typedef int (*varflow_oracle_simulate_fn)(void* user, uint64_t seed, int64_t n, double* x, int64_t m, double* y);
typedef int (*varflow_oracle_posterior_fn)(void* user, int64_t m, const double* y, int64_t n, double* mean,
                                           double* std);
typedef int (*varflow_oracle_jvp_fn)(void* user, int64_t m, const double* y, const double* v, int64_t n,
                                     double* out);
typedef int (*varflow_oracle_vjp_fn)(void* user, int64_t m, const double* y, int64_t n, const double* w,
                                     double* out);
typedef struct varflow_oracle {
  varflow_oracle_simulate_fn simulate;
  varflow_oracle_posterior_fn posterior;
  varflow_oracle_jvp_fn jvp;
  varflow_oracle_vjp_fn vjp;
  void* user;
  const char* description; /* one line for the report; may be NULL */
} varflow_oracle;

typedef struct varflow_gate_options {
  int64_t events;          /* held-out events for posterior agreement; 0: 20 */
  int64_t sbc_simulations; /* SBC simulations; 0: 200 */
  uint64_t seed;           /* of the held-out events, draws and probes */
  const char* report_dir;  /* NULL: no files; else report.json and report.html are written there */
} varflow_gate_options;

typedef struct varflow_gate_report {
  int promoted;                            /* 1 when every gate passed */
  int agreement_passed, adjoint_passed, sbc_passed;
  double max_abs_standardized_difference;  /* agreement: largest |mean difference| / oracle sd */
  double spread_ratio_median;              /* agreement: median of model sd / oracle sd */
  double max_probe_error;                  /* adjoint calibration: largest relative error of J v */
  double sbc_min_p_value;                  /* SBC: smallest chi-square p-value over the components */
} varflow_gate_report;

/* Runs the three gates for `model` against `oracle` (options may be NULL: the defaults, seed 1).
 * VARFLOW_OK when the gates ran, whatever their decision (out->promoted says it); a call-back that
 * fails or writes a non-finite value ends the run with VARFLOW_CALLBACK_ERROR naming it. */
varflow_status varflow_amortized_validate(varflow_amortized* model, const varflow_oracle* oracle,
                                          const varflow_gate_options* options, varflow_gate_report* out);

/* The same over the ranks of an MPI communicator, given as its Fortran handle so that this header
 * needs no mpi.h: MPI_Comm_c2f(comm) in C, the integer of a Fortran communicator (comm % MPI_VAL of
 * type(MPI_Comm)). Every rank of comm calls it with the same arguments after MPI_Init; the held-out
 * events, Jacobian probes and SBC simulations are split over the ranks (each rank calls the oracle's
 * call-backs for its own items), every rank gets the same *out as one rank would, and report_dir is
 * written by rank 0 only (design/parallel.md). A call-back that fails on one rank ends the call on
 * every rank with VARFLOW_CALLBACK_ERROR, the message naming the rank and the item.
 * VARFLOW_INVALID_ARGUMENT when varflow was built without MPI or MPI is not initialised. */
varflow_status varflow_amortized_validate_mpi(varflow_amortized* model, const varflow_oracle* oracle,
                                              const varflow_gate_options* options, int fortran_comm,
                                              varflow_gate_report* out);

#ifdef __cplusplus
}
#endif

#endif /* VARFLOW_C_VARFLOW_H */
