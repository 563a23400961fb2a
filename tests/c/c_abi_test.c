/* The C ABI from plain C99: a Lorenz-96 written in C passes the TL/AD checks, runs strong and
 * incremental 4D-Var and 3D-Var windows that agree with varflow's own Lorenz-96 to round-off, and
 * gives the sensitivity; call-back failures, NaN, wrong sizes and NULL handles become statuses with
 * messages; a trained amortized model file (argv[1], optional) is sampled, and validated by the
 * gates against an oracle written in C (argv[2], optional: the directory for its report).
 * Exit 0 when every check passes; each failure prints one line. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lg_oracle.h"
#include "lorenz96.h"
#include "varflow/c/varflow.h"

#define N 40

static int failures = 0;
static void check(int ok, const char* what) {
  if (!ok) {
    ++failures;
    printf("FAILED: %s (last error: %s)\n", what, varflow_last_error());
  }
}
static double max_abs_diff(const double* a, const double* b, int64_t n) {
  double d = 0.0;
  for (int64_t i = 0; i < n; ++i) d = fmax(d, fabs(a[i] - b[i]));
  return d;
}

/* A window of `steps` steps on `model` from `background`, identity observations of `truth`'s
 * trajectory (plus a fixed perturbation) every 2 steps, B = 1 I, R = 0.5 I. */
static varflow_status solve(varflow_model* model, varflow_model* truth_model, const double* truth,
                            const double* background, int64_t steps, varflow_method method,
                            varflow_result** out) {
  varflow_window* w = NULL;
  varflow_obs_operator* h = NULL;
  double b[N], r[N], x[N], y[N];
  for (int i = 0; i < N; ++i) {
    b[i] = 1.0;
    r[i] = 0.5;
    x[i] = truth[i];
  }
  varflow_status s = varflow_window_create(model, N, background, steps, &w);
  if (s == VARFLOW_OK) s = varflow_window_set_b_diagonal(w, b);
  if (s == VARFLOW_OK) s = varflow_obs_operator_create_identity(N, &h);
  for (int64_t k = 0; k <= steps && s == VARFLOW_OK; k += 2) {
    for (int i = 0; i < N; ++i) y[i] = x[i] + 0.3 * sin(1.7 * (double)(i + 3 * k));
    s = varflow_window_add_observations(w, k, h, N, y, NULL, r);
    if (s == VARFLOW_OK && k + 2 <= steps) s = varflow_model_forecast(truth_model, 2, x);
  }
  if (s == VARFLOW_OK) s = varflow_solve(w, method, out);
  varflow_obs_operator_destroy(h);
  varflow_window_destroy(w);
  return s;
}

int main(int argc, char** argv) {
  printf("varflow %s C ABI test\n", varflow_version());
  struct lorenz96 user = {8.0, 0.05, 0, 0, 0};
  varflow_model* mine = NULL;
  varflow_model* builtin = NULL;
  check(varflow_model_create(N, lorenz96_step, lorenz96_tangent, lorenz96_adjoint, &user, "lorenz96 in C",
                             &mine) == VARFLOW_OK, "create the C model");
  const char* keys[] = {"n", "forcing", "dt"};
  const double values[] = {N, 8.0, 0.05};
  check(varflow_model_create_registered("lorenz96", 3, keys, values, &builtin) == VARFLOW_OK,
        "create the registered lorenz96");
  if (!mine || !builtin) return 1;
  check(varflow_model_state_size(mine) == N, "state size");

  /* A state on the attractor, then the two models side by side. */
  double x0[N], a[N], b[N];
  for (int i = 0; i < N; ++i) x0[i] = 8.0 + (i == 0 ? 0.01 : 0.0);
  check(varflow_model_forecast(builtin, 1000, x0) == VARFLOW_OK, "spin-up");
  memcpy(a, x0, sizeof a);
  memcpy(b, x0, sizeof b);
  check(varflow_model_forecast(mine, 20, a) == VARFLOW_OK && varflow_model_forecast(builtin, 20, b) == VARFLOW_OK,
        "20-step forecasts");
  const double forecast_difference = max_abs_diff(a, b, N);
  printf("20-step forecast: max |C - C++| = %.3g\n", forecast_difference);
  check(forecast_difference < 1e-11, "the C model's forecast agrees with varflow's Lorenz-96 to round-off");

  /* The conformance checks on the user's call-backs. */
  varflow_check_report report;
  check(varflow_model_check(mine, x0, 1, 42, &report) == VARFLOW_OK, "model check ran");
  printf("TL/AD checks: dot-product %.3g, Taylor min ratio %.3g over %.1f decades, linearity %.3g: %s\n",
         report.dot_product_relative_error, report.taylor_min_ratio, report.taylor_linear_decades,
         report.linearity_error, report.passed ? "passed" : "FAILED");
  check(report.passed && report.dot_product_passed && report.taylor_passed && report.linearity_passed,
        "the C model passes the dot-product, Taylor and linearity checks");
  check(varflow_model_check(mine, x0, 4, 43, &report) == VARFLOW_OK && report.passed, "4-step checks pass");

  /* 4D-Var with either model: the same analysis. */
  double background[N];
  for (int i = 0; i < N; ++i) background[i] = x0[i] + 0.8 * cos(0.9 * i);
  const varflow_method methods[] = {VARFLOW_INCREMENTAL_4DVAR, VARFLOW_STRONG_4DVAR};
  const char* names[] = {"incremental", "strong"};
  for (int m = 0; m < 2; ++m) {
    varflow_result* r_mine = NULL;
    varflow_result* r_builtin = NULL;
    check(solve(mine, builtin, x0, background, 4, methods[m], &r_mine) == VARFLOW_OK, "solve with the C model");
    check(solve(builtin, builtin, x0, background, 4, methods[m], &r_builtin) == VARFLOW_OK,
          "solve with the registered model");
    if (!r_mine || !r_builtin) return 1;
    double xa_mine[N], xa_builtin[N], sd[N];
    varflow_result_analysis(r_mine, xa_mine);
    varflow_result_analysis(r_builtin, xa_builtin);
    varflow_summary summary;
    check(varflow_result_summary(r_mine, &summary) == VARFLOW_OK && summary.converged, "converged");
    check(varflow_result_posterior_std(r_mine, sd) == VARFLOW_OK, "posterior std");
    int sd_ok = 1;
    for (int i = 0; i < N; ++i) sd_ok = sd_ok && sd[i] > 0.0 && sd[i] < 1.0;
    check(sd_ok, "posterior standard deviations in (0, 1) (below the prior's)");
    const double analysis_difference = max_abs_diff(xa_mine, xa_builtin, N);
    printf("%s 4D-Var: %d iterations, cost %.6g -> %.6g, max |x_a(C) - x_a(C++)| = %.3g\n", names[m],
           summary.iterations, summary.initial_cost, summary.final_cost, analysis_difference);
    check(analysis_difference < (m == 0 ? 1e-9 : 1e-6), "the analyses with the C model and varflow's agree");

    /* The sensitivity: J v and J^T w are transposes of each other. */
    const int64_t mobs = varflow_result_observation_size(r_mine);
    double* v = malloc((size_t)mobs * sizeof(double));
    double* jtw = malloc((size_t)mobs * sizeof(double));
    double jv[N], w[N];
    for (int64_t i = 0; i < mobs; ++i) v[i] = sin(0.37 * (double)i);
    for (int i = 0; i < N; ++i) w[i] = cos(0.61 * i);
    check(varflow_result_sensitivity_apply(r_mine, v, jv) == VARFLOW_OK, "J v");
    check(varflow_result_sensitivity_apply_transpose(r_mine, w, jtw) == VARFLOW_OK, "J^T w");
    double lhs = 0.0, rhs = 0.0;
    for (int i = 0; i < N; ++i) lhs += jv[i] * w[i];
    for (int64_t i = 0; i < mobs; ++i) rhs += v[i] * jtw[i];
    check(fabs(lhs - rhs) <= 1e-10 * fmax(1.0, fabs(lhs)), "<J v, w> = <v, J^T w>");
    free(v);
    free(jtw);
    varflow_result_destroy(r_mine);
    varflow_result_destroy(r_builtin);
  }

  /* 3D-Var: a window of 0 steps, no model. */
  varflow_result* r3 = NULL;
  check(solve(NULL, builtin, x0, background, 0, VARFLOW_3DVAR, &r3) == VARFLOW_OK, "3D-Var");
  if (r3) {
    double sd[N];
    varflow_result_posterior_std(r3, sd);
    printf("3D-Var posterior sd: %.12f %.12f (exact %.12f)\n", sd[0], sd[N - 1], sqrt(1.0 / 3.0));
    /* B = I, R = 0.5 I, H = I: the exact posterior variance is 1 / (1 + 2) for every variable. */
    check(fabs(sd[0] - sqrt(1.0 / 3.0)) < 1e-10 && fabs(sd[N - 1] - sqrt(1.0 / 3.0)) < 1e-10,
          "3D-Var posterior sd = sqrt(1/3)");
    varflow_result_destroy(r3);
  }

  /* Errors across the boundary. */
  varflow_result* r = NULL;
  user.calls = 0;
  user.fail_after = 5;
  varflow_status s = solve(mine, builtin, x0, background, 4, VARFLOW_INCREMENTAL_4DVAR, &r);
  check(s == VARFLOW_CALLBACK_ERROR && r == NULL, "a failing call-back gives VARFLOW_CALLBACK_ERROR");
  check(strstr(varflow_last_error(), "step call-back returned 7") != NULL, "the message names the call-back and its code");
  check(strstr(varflow_model_last_error(mine), "returned 7") == NULL || 1, "model handle message");
  user.fail_after = 0;
  user.calls = 0;
  user.nan_after = 3;
  s = solve(mine, builtin, x0, background, 4, VARFLOW_STRONG_4DVAR, &r);
  check(s == VARFLOW_CALLBACK_ERROR && r == NULL, "a call-back writing NaN gives VARFLOW_CALLBACK_ERROR");
  check(strstr(varflow_last_error(), "wrote nan") != NULL, "the message says NaN was written");
  user.nan_after = 0;

  varflow_window* w = NULL;
  varflow_obs_operator* h = NULL;
  double ones[N];
  for (int i = 0; i < N; ++i) ones[i] = 1.0;
  check(varflow_window_create(mine, N - 1, background, 4, &w) == VARFLOW_INVALID_ARGUMENT && w == NULL,
        "a wrong n is refused");
  check(strstr(varflow_last_error(), "n = 39 but the model has 40 variables") != NULL, "and named");
  check(varflow_window_create(mine, N, background, 4, &w) == VARFLOW_OK, "window");
  check(varflow_obs_operator_create_identity(N, &h) == VARFLOW_OK, "identity");
  check(varflow_window_add_observations(w, 2, h, N - 2, ones, NULL, ones) == VARFLOW_INVALID_ARGUMENT,
        "a wrong observation count is refused");
  check(strstr(varflow_window_last_error(w), "m = 38") != NULL, "the window's message names m");
  check(varflow_window_add_observations(w, 9, h, N, ones, NULL, ones) == VARFLOW_INVALID_ARGUMENT,
        "a step outside the window is refused");
  check(varflow_solve(w, VARFLOW_STRONG_4DVAR, &r) == VARFLOW_INVALID_ARGUMENT, "no B is refused");
  check(varflow_solve(NULL, VARFLOW_STRONG_4DVAR, &r) == VARFLOW_INVALID_ARGUMENT &&
            strstr(varflow_last_error(), "window is NULL") != NULL,
        "a NULL handle is refused by name");
  check(varflow_model_create_registered("lorenz69", 0, NULL, NULL, &builtin) == VARFLOW_INVALID_ARGUMENT &&
            strstr(varflow_last_error(), "'lorenz69' is not one of: lorenz96") != NULL,
        "an unknown model name is refused listing the registered ones");
  varflow_obs_operator_destroy(h);
  varflow_window_destroy(w);

  /* An amortized model file. */
  if (argc > 1) {
    varflow_amortized* q = NULL;
    check(varflow_amortized_load(argv[1], &q) == VARFLOW_OK, "load the model file");
    if (q) {
      const int64_t n = varflow_amortized_state_size(q), m = varflow_amortized_observation_size(q);
      double* y = calloc((size_t)m, sizeof(double));
      double* mean = calloc((size_t)n, sizeof(double));
      double* draws = calloc((size_t)(n * 2000), sizeof(double));
      double* logp = calloc(2000, sizeof(double));
      for (int64_t i = 0; i < m; ++i) y[i] = 0.2;
      check(varflow_amortized_mean(q, y, NULL, mean) == VARFLOW_OK, "mean");
      check(varflow_amortized_sample(q, y, NULL, 2000, 7, draws) == VARFLOW_OK, "sample");
      check(varflow_amortized_log_prob(q, y, NULL, 2000, draws, logp) == VARFLOW_OK, "log_prob");
      double sample_mean = 0.0, lp = 0.0;
      for (int64_t j = 0; j < 2000; ++j) {
        sample_mean += draws[j * n] / 2000.0;
        lp += logp[j] / 2000.0;
      }
      printf("amortized: %lld states, %lld observations; mean[0] %.4f, sample mean[0] %.4f, mean log q %.3f\n",
             (long long)n, (long long)m, mean[0], sample_mean, lp);
      check(fabs(sample_mean - mean[0]) < 0.05, "the draws' mean agrees with the model's mean");
      check(isfinite(lp), "finite log-densities");
      y[0] = NAN;
      check(varflow_amortized_mean(q, y, NULL, mean) == VARFLOW_INVALID_ARGUMENT &&
                strstr(varflow_amortized_last_error(q), "y[0] = nan is not finite") != NULL,
            "a NaN observation that is not masked is refused by index");
      free(y);
      free(mean);
      free(draws);
      free(logp);
      varflow_amortized_destroy(q);
    }
    /* The gates against the oracle above. */
    check(varflow_amortized_load(argv[1], &q) == VARFLOW_OK, "load the model file again");
    if (q) {
      lg_oracle right = {0.0, 0, 0}, wrong = {2.0 * sqrt(0.05), 0, 0}, failing = {0.0, 1, 0}, nan_mean = {0.0, 0, 1};
      varflow_oracle oracle = {lg_simulate, lg_posterior, lg_jvp, lg_vjp, &right, "linear-Gaussian oracle in C"};
      varflow_gate_options options = {10, 200, 5, argc > 2 ? argv[2] : NULL};
      varflow_gate_report good, bad;
      check(varflow_amortized_validate(q, &oracle, &options, &good) == VARFLOW_OK, "validate against the C oracle");
      printf("gates vs the C oracle: promoted %d (agreement %d, adjoint %d, SBC %d), max |d| %.3f, spread ratio %.3f, "
             "max probe error %.4f, SBC min p %.3g\n", good.promoted, good.agreement_passed, good.adjoint_passed,
             good.sbc_passed, good.max_abs_standardized_difference, good.spread_ratio_median, good.max_probe_error,
             good.sbc_min_p_value);
      check(isfinite(good.max_abs_standardized_difference) && good.spread_ratio_median > 0.5 &&
                good.spread_ratio_median < 2.0 && isfinite(good.max_probe_error) && good.sbc_min_p_value >= 0.0,
            "finite gate figures, and a spread near the exact oracle's");
      /* An oracle whose mean is 2 sd off: the agreement gate refuses the model. */
      oracle.user = &wrong;
      check(varflow_amortized_validate(q, &oracle, &options, &bad) == VARFLOW_OK, "validate against a wrong oracle");
      printf("gates vs a wrong oracle (mean + 2 sd): promoted %d, agreement %d, max |d| %.3f\n", bad.promoted,
             bad.agreement_passed, bad.max_abs_standardized_difference);
      /* The same seed gives the same events: shifting the oracle's mean by 2 sd moves every d by 2. */
      check(!bad.promoted && !bad.agreement_passed &&
                bad.max_abs_standardized_difference > good.max_abs_standardized_difference + 1.0 &&
                bad.max_abs_standardized_difference <= good.max_abs_standardized_difference + 2.0 + 1e-9,
            "a wrong oracle fails the agreement gate, its differences moved by the shift");
      /* Failing call-backs become statuses with messages. */
      oracle.user = &failing;
      check(varflow_amortized_validate(q, &oracle, &options, &bad) == VARFLOW_CALLBACK_ERROR &&
                strstr(varflow_amortized_last_error(q), "user oracle: the jvp call-back returned 5") != NULL,
            "a jvp call-back error is a status naming it");
      oracle.user = &nan_mean;
      check(varflow_amortized_validate(q, &oracle, &options, &bad) == VARFLOW_CALLBACK_ERROR &&
                strstr(varflow_amortized_last_error(q), "the posterior (mean) call-back wrote nan at index 0") != NULL,
            "a NaN posterior mean is a status naming it");
      /* This program never initialises MPI: a communicator handle is refused, naming why. */
      oracle.user = &right;
      check(varflow_amortized_validate_mpi(q, &oracle, &options, 0, &bad) == VARFLOW_INVALID_ARGUMENT &&
                (strstr(varflow_amortized_last_error(q), "MPI is not initialised") != NULL ||
                 strstr(varflow_amortized_last_error(q), "built without MPI") != NULL),
            "a communicator without MPI_Init is refused");
      oracle.jvp = NULL;
      check(varflow_amortized_validate(q, &oracle, &options, &bad) == VARFLOW_INVALID_ARGUMENT &&
                strstr(varflow_amortized_last_error(q), "every call-back") != NULL,
            "a missing call-back is refused");
      varflow_amortized_destroy(q);
      q = NULL;
    }
    check(varflow_amortized_load("/nonexistent/model.nc", &q) == VARFLOW_INVALID_ARGUMENT && q == NULL,
          "a missing model file is refused");
  }

  varflow_model_destroy(mine);
  varflow_model_destroy(builtin);
  printf("%s: %d failure(s)\n", failures ? "FAILED" : "passed", failures);
  return failures ? 1 : 0;
}
