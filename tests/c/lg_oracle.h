/* The linear-Gaussian problem as a user's oracle for the gates of the C ABI (varflow_oracle), shared
 * by the C ABI tests: x ~ N(0, 0.1 I), y = x + N(0, 0.1 I), exact posterior N(y/2 + shift, 0.05 I),
 * J = I/2. A shift != 0 is a wrong oracle; fail_jvp makes jvp return 5; nan_posterior writes NaN. */
#ifndef VARFLOW_TESTS_C_LG_ORACLE_H
#define VARFLOW_TESTS_C_LG_ORACLE_H

#include <math.h>
#include <stdint.h>

typedef struct {
  double shift;
  int fail_jvp, nan_posterior;
} lg_oracle;
static uint64_t splitmix64(uint64_t* s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}
static double normal01(uint64_t* s) { /* Box-Muller */
  const double u1 = ((double)(splitmix64(s) >> 11) + 0.5) * 0x1p-53, u2 = (double)(splitmix64(s) >> 11) * 0x1p-53;
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}
static int lg_simulate(void* user, uint64_t seed, int64_t n, double* x, int64_t m, double* y) {
  (void)user;
  uint64_t s = seed;
  for (int64_t i = 0; i < n && i < m; ++i) {
    x[i] = sqrt(0.1) * normal01(&s);
    y[i] = x[i] + sqrt(0.1) * normal01(&s);
  }
  return 0;
}
static int lg_posterior(void* user, int64_t m, const double* y, int64_t n, double* mean, double* sd) {
  const lg_oracle* o = (const lg_oracle*)user;
  for (int64_t i = 0; i < n && i < m; ++i) {
    mean[i] = 0.5 * y[i] + o->shift;
    sd[i] = sqrt(0.05);
  }
  if (o->nan_posterior) mean[0] = NAN;
  return 0;
}
static int lg_jvp(void* user, int64_t m, const double* y, const double* v, int64_t n, double* out) {
  (void)y;
  if (((const lg_oracle*)user)->fail_jvp) return 5;
  for (int64_t i = 0; i < n && i < m; ++i) out[i] = 0.5 * v[i];
  return 0;
}
static int lg_vjp(void* user, int64_t m, const double* y, int64_t n, const double* w, double* out) {
  (void)user;
  (void)y;
  for (int64_t i = 0; i < n && i < m; ++i) out[i] = 0.5 * w[i];
  return 0;
}

#endif /* VARFLOW_TESTS_C_LG_ORACLE_H */
