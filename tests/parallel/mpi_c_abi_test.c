/* varflow_amortized_validate_mpi from C under `mpirun -np 2`: the gates against a user's oracle
 * (tests/c/lg_oracle.h) over MPI_COMM_WORLD give every rank the figures of the one-process call,
 * bit for bit; a call-back that fails on rank 1 only ends the call on both ranks with
 * VARFLOW_CALLBACK_ERROR naming the rank; rank 0 alone writes the report.
 * Usage: mpirun -np 2 mpi_c_abi_test MODEL.nc REPORT_DIR. Exit 0 when every check passes. */
#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "lg_oracle.h"
#include "varflow/c/varflow.h"

static int failures = 0;
static int rank = 0;
static void check(int ok, const char* what, varflow_amortized* q) {
  if (!ok) {
    ++failures;
    printf("rank %d: FAILED: %s (last error: %s)\n", rank, what, q ? varflow_amortized_last_error(q) : "");
  }
}

static int same(const varflow_gate_report* a, const varflow_gate_report* b) {
  return a->promoted == b->promoted && a->agreement_passed == b->agreement_passed &&
         a->adjoint_passed == b->adjoint_passed && a->sbc_passed == b->sbc_passed &&
         memcmp(&a->max_abs_standardized_difference, &b->max_abs_standardized_difference, sizeof(double)) == 0 &&
         memcmp(&a->spread_ratio_median, &b->spread_ratio_median, sizeof(double)) == 0 &&
         memcmp(&a->max_probe_error, &b->max_probe_error, sizeof(double)) == 0 &&
         memcmp(&a->sbc_min_p_value, &b->sbc_min_p_value, sizeof(double)) == 0;
}

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (argc < 3 || size != 2) {
    if (rank == 0) fprintf(stderr, "usage: mpirun -np 2 mpi_c_abi_test MODEL.nc REPORT_DIR\n");
    MPI_Finalize();
    return 2;
  }
  varflow_amortized* q = NULL;
  check(varflow_amortized_load(argv[1], &q) == VARFLOW_OK, "load the model file", q);
  if (q) {
    lg_oracle right = {0.0, 0, 0}, failing = {0.0, 1, 0};
    varflow_oracle oracle = {lg_simulate, lg_posterior, lg_jvp, lg_vjp, &right, "linear-Gaussian oracle in C"};
    varflow_gate_options one_process = {10, 200, 5, NULL}, over_ranks = {10, 200, 5, argv[2]};
    varflow_gate_report serial, parallel;
    const MPI_Fint world = MPI_Comm_c2f(MPI_COMM_WORLD);
    check(varflow_amortized_validate(q, &oracle, &one_process, &serial) == VARFLOW_OK, "validate in one process", q);
    check(varflow_amortized_validate_mpi(q, &oracle, &over_ranks, (int)world, &parallel) == VARFLOW_OK,
          "validate over 2 ranks", q);
    printf("rank %d: one process: promoted %d, max |d| %.17g, spread %.17g, probe %.17g, SBC p %.17g\n", rank,
           serial.promoted, serial.max_abs_standardized_difference, serial.spread_ratio_median, serial.max_probe_error,
           serial.sbc_min_p_value);
    printf("rank %d: 2 ranks:     promoted %d, max |d| %.17g, spread %.17g, probe %.17g, SBC p %.17g\n", rank,
           parallel.promoted, parallel.max_abs_standardized_difference, parallel.spread_ratio_median,
           parallel.max_probe_error, parallel.sbc_min_p_value);
    check(same(&serial, &parallel), "2 ranks give the one-process figures bit for bit", q);
    /* A planted difference is caught by the comparison. */
    varflow_gate_report planted = parallel;
    planted.max_probe_error *= 1.0 + 1e-15;
    check(!same(&serial, &planted) || serial.max_probe_error == 0.0, "the comparison catches a 1e-15 change", q);
    /* The call-back fails on rank 1 only: both ranks end with a call-back error naming rank 1. */
    oracle.user = rank == 1 ? (void*)&failing : (void*)&right;
    varflow_gate_report bad;
    const varflow_status status = varflow_amortized_validate_mpi(q, &oracle, &one_process, (int)world, &bad);
    printf("rank %d: rank 1's jvp fails: status %d, %s\n", rank, (int)status, varflow_amortized_last_error(q));
    check(status == VARFLOW_CALLBACK_ERROR && strstr(varflow_amortized_last_error(q), "rank 1") != NULL &&
              strstr(varflow_amortized_last_error(q), "jvp call-back returned 5") != NULL,
          "a call-back failing on rank 1 is a call-back error on every rank, naming rank 1", q);
    varflow_amortized_destroy(q);
  }
  int total = 0;
  MPI_Allreduce(&failures, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  MPI_Finalize();
  return total == 0 ? 0 : 1;
}
