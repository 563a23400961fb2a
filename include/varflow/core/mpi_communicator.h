#pragma once
// The MPI communicator of varflow (only when varflow was built with MPI: built_with_mpi(); link
// MPI::MPI_C). The caller passes the communicator of the ranks that share a job (PDAF's filter
// communicator; communicator.h): varflow duplicates it (MPI_Comm_dup), so its messages never mix with
// the caller's, and frees the duplicate on destruction, which must happen before MPI_Finalize.
//
//   MPI_Init(&argc, &argv);
//   {
//     auto comm = varflow::mpi_communicator(MPI_COMM_WORLD);   // or a sub-communicator
//     varflow::report::validate_model(q, options, rng, progress, *comm);
//   }
//   MPI_Finalize();
// The C API only: without these, OpenMPI's and MPICH's mpi.h pull in the deprecated C++ bindings.
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1
#endif
#ifndef MPICH_SKIP_MPICXX
#define MPICH_SKIP_MPICXX 1
#endif
#include <mpi.h>

#include <memory>

#include "varflow/core/communicator.h"

namespace varflow {

// Throws InvalidArgument when comm is MPI_COMM_NULL or MPI is not initialised, Error when varflow was
// built without MPI.
std::unique_ptr<Communicator> mpi_communicator(MPI_Comm comm);

}  // namespace varflow
