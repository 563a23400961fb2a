/* Lorenz-96 (single scale, RK4) written in plain C with its exact discrete tangent-linear and
 * adjoint, as a user of the C ABI would plug in a model of their own (call-back signatures of
 * include/varflow/c/varflow.h). `user` points to a struct lorenz96. */
#ifndef VARFLOW_TESTS_C_LORENZ96_H
#define VARFLOW_TESTS_C_LORENZ96_H
#include <stdint.h>

struct lorenz96 {
  double forcing, dt;
  int fail_after;     /* > 0: the step call-back returns 7 from that call on (a user error) */
  int nan_after;      /* > 0: the step call-back writes NaN from that call on */
  int calls;
};

int lorenz96_step(void* user, int64_t n, double* x);
int lorenz96_tangent(void* user, int64_t n, const double* x, double* dx);
int lorenz96_adjoint(void* user, int64_t n, const double* x, double* ax);

#endif
