// The MPI communicator (VARFLOW_WITH_MPI) and the program's communicator (MPI or serial).
#include <cstdlib>
#include <limits>

#include "varflow/core/communicator.h"
#include "varflow/core/error.h"

#ifdef VARFLOW_WITH_MPI
#include "varflow/core/mpi_communicator.h"
#endif

namespace varflow {

namespace {

// Whether an MPI launcher started this process (OpenMPI's mpirun, PMI/PMIx launchers such as srun).
bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"}) {
    const char* value = std::getenv(v);
    if (value != nullptr && *value != '\0') return true;
  }
  return false;
}

#ifdef VARFLOW_WITH_MPI

void check_mpi(int code, const char* call) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  throw Error(format_message(call, " failed: ", std::string(text, static_cast<std::size_t>(length))));
}

int as_count(std::size_t n, const char* what) {
  if (n > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
    throw InvalidArgument(format_message(what, ": ", n, " elements exceed the MPI count limit of 2^31 - 1"));
  }
  return static_cast<int>(n);
}

class MpiCommunicator final : public Communicator {
 public:
  // Takes ownership of `comm` (a duplicate made for varflow).
  explicit MpiCommunicator(MPI_Comm comm) : comm_(comm) {
    check_mpi(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
    check_mpi(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
  }
  ~MpiCommunicator() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Comm_free(&comm_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string describe() const override { return format_message("MPI, ", size_, size_ == 1 ? " rank" : " ranks"); }
  void allreduce_sum(double* data, Index n) const override {
    check_mpi(MPI_Allreduce(MPI_IN_PLACE, data, as_count(static_cast<std::size_t>(n), "allreduce_sum"), MPI_DOUBLE,
                            MPI_SUM, comm_),
              "MPI_Allreduce");
  }
  std::vector<std::string> allgather(const std::string& bytes) const override {
    const int mine = as_count(bytes.size(), "allgather");
    std::vector<int> counts(static_cast<std::size_t>(size_)), offsets(static_cast<std::size_t>(size_));
    check_mpi(MPI_Allgather(&mine, 1, MPI_INT, counts.data(), 1, MPI_INT, comm_), "MPI_Allgather");
    std::size_t total = 0;
    for (int r = 0; r < size_; ++r) {
      offsets[static_cast<std::size_t>(r)] = as_count(total, "allgather");
      total += static_cast<std::size_t>(counts[static_cast<std::size_t>(r)]);
    }
    as_count(total, "allgather");
    std::string all(total, '\0');
    check_mpi(MPI_Allgatherv(bytes.data(), mine, MPI_BYTE, all.data(), counts.data(), offsets.data(), MPI_BYTE, comm_),
              "MPI_Allgatherv");
    std::vector<std::string> out;
    for (int r = 0; r < size_; ++r) {
      out.emplace_back(all, static_cast<std::size_t>(offsets[static_cast<std::size_t>(r)]),
                       static_cast<std::size_t>(counts[static_cast<std::size_t>(r)]));
    }
    return out;
  }
  void broadcast(std::string& bytes, int root) const override {
    if (root < 0 || root >= size_) {
      throw InvalidArgument(format_message("broadcast: root = ", root, " is not a rank of ", size_));
    }
    int n = rank_ == root ? as_count(bytes.size(), "broadcast") : 0;
    check_mpi(MPI_Bcast(&n, 1, MPI_INT, root, comm_), "MPI_Bcast");
    if (rank_ != root) bytes.assign(static_cast<std::size_t>(n), '\0');
    check_mpi(MPI_Bcast(bytes.data(), n, MPI_BYTE, root, comm_), "MPI_Bcast");
  }
  void barrier() const override { check_mpi(MPI_Barrier(comm_), "MPI_Barrier"); }
  std::unique_ptr<Communicator> split(int color, int key) const override {
    MPI_Comm part = MPI_COMM_NULL;
    check_mpi(MPI_Comm_split(comm_, color, key, &part), "MPI_Comm_split");
    return std::make_unique<MpiCommunicator>(part);
  }
  void abort(int code) const override { MPI_Abort(comm_, code); }

 private:
  MPI_Comm comm_;
  int rank_ = 0, size_ = 1;
};

#endif  // VARFLOW_WITH_MPI

}  // namespace

#ifdef VARFLOW_WITH_MPI

bool built_with_mpi() { return true; }

std::unique_ptr<Communicator> mpi_communicator(MPI_Comm comm) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) throw InvalidArgument("mpi_communicator: MPI is not initialised (call MPI_Init first)");
  if (comm == MPI_COMM_NULL) throw InvalidArgument("mpi_communicator: comm = MPI_COMM_NULL");
  MPI_Comm mine = MPI_COMM_NULL;
  check_mpi(MPI_Comm_dup(comm, &mine), "MPI_Comm_dup");
  return std::make_unique<MpiCommunicator>(mine);
}

std::unique_ptr<Communicator> communicator_from_fortran_handle(int handle) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    throw InvalidArgument("communicator: MPI is not initialised (call MPI_Init before passing a communicator)");
  }
  const MPI_Comm comm = MPI_Comm_f2c(static_cast<MPI_Fint>(handle));
  if (comm == MPI_COMM_NULL) {
    throw InvalidArgument(format_message("communicator: the Fortran handle ", handle, " is MPI_COMM_NULL"));
  }
  return mpi_communicator(comm);
}

ProgramCommunicator::ProgramCommunicator(int& argc, char**& argv) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (launched_by_mpi() && !initialized) {
    check_mpi(MPI_Init(&argc, &argv), "MPI_Init");
    finalize_ = true;
    comm_ = mpi_communicator(MPI_COMM_WORLD);  // the program's world, handed down from main
  } else {
    comm_ = serial_communicator().split(0, 0);
  }
}

ProgramCommunicator::~ProgramCommunicator() {
  comm_.reset();
  if (finalize_) MPI_Finalize();
}

#else

bool built_with_mpi() { return false; }

std::unique_ptr<Communicator> communicator_from_fortran_handle(int handle) {
  throw InvalidArgument(format_message("communicator: the Fortran handle ", handle,
                                       " is an MPI communicator, but varflow was built without MPI (VARFLOW_WITH_MPI=OFF)"));
}

ProgramCommunicator::ProgramCommunicator(int&, char**&) {
  if (launched_by_mpi()) {
    const char* size = std::getenv("OMPI_COMM_WORLD_SIZE");
    if (size != nullptr && std::atoi(size) > 1) {
      throw Error("started by an MPI launcher, but varflow was built without MPI (VARFLOW_WITH_MPI=OFF): every "
                  "rank would run the whole job alone; install OpenMPI (scripts/setup.sh) and rebuild");
    }
  }
  comm_ = serial_communicator().split(0, 0);
}

ProgramCommunicator::~ProgramCommunicator() = default;

#endif

}  // namespace varflow
