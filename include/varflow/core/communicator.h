#pragma once
// The communicator varflow computes with: the ranks of one job and the few collectives the library
// needs (sum, gather, broadcast). The caller owns it and passes it down; the library never reaches for
// a global one (no MPI_COMM_WORLD behind the caller's back). Without MPI, or outside `mpirun`, the
// serial communicator (one rank) stands in, so code above the foundation layer never asks whether MPI
// is there. design/parallel.md.
//
// The split follows PDAF (Nerger & Hiller 2013, "Software for ensemble-based data assimilation
// systems", Comput. Geosci. 55): the program owns the world; the library receives the communicator of
// the ranks that share one job (PDAF's filter communicator) and, with split(), can carve per-task
// communicators from it (PDAF's model communicators: the ranks that run one model integration).
// Today every varflow item (an oracle solve, an SBC simulation, a training shard) runs on one rank, so
// the job communicator is the only one the library uses.
//
// Determinism: distributed_map() callers give every item its own random stream (item_rng) and returns
// the results in item order on every rank, so a run gives the same numbers for any number of ranks.
// All collectives are blocking; every rank of the communicator must call them in the same order.
// Thread-safety: a Communicator is used from one thread at a time.
#include <cstdint>
#include <exception>
#include <functional>
#include <ostream>
#include <memory>
#include <string>
#include <vector>

#include "varflow/core/random.h"
#include "varflow/core/types.h"

namespace varflow {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;  // 0 .. size() - 1
  virtual int size() const = 0;  // >= 1
  bool is_root() const { return rank() == 0; }
  // "serial (1 rank)" or "MPI, 4 ranks".
  virtual std::string describe() const = 0;

  // data[0..n) <- the element-wise sum over the ranks, on every rank (n equal on all ranks). The
  // order of the additions is the MPI library's: the result may differ from a serial sum in the last
  // bits, and is the same on every rank.
  virtual void allreduce_sum(double* data, Index n) const = 0;
  // Every rank's bytes, in rank order, on every rank (sizes may differ between ranks).
  virtual std::vector<std::string> allgather(const std::string& bytes) const = 0;
  // bytes <- root's bytes on every rank.
  virtual void broadcast(std::string& bytes, int root) const = 0;
  virtual void barrier() const = 0;
  // The ranks of the same color, ordered by key then by rank (MPI_Comm_split); a serial
  // communicator splits into itself.
  virtual std::unique_ptr<Communicator> split(int color, int key) const = 0;
  // Ends every rank of the job with exit status `code` (MPI_Abort): for a failure the other ranks do
  // not know of, which would otherwise leave them waiting in a collective. Serial: returns.
  virtual void abort(int code) const = 0;
};

// Marks an exception that every rank of the communicator threw together (distributed_map,
// run_on_root, fit): the ranks end normally, no abort() is needed.
class AgreedFailure {
 public:
  virtual ~AgreedFailure() = default;
};
// True when e was thrown on every rank together (it derives from AgreedFailure).
bool is_agreed_failure(const std::exception& e);

// The one-rank communicator (no MPI calls). A process-wide immutable object.
const Communicator& serial_communicator();

// True when varflow was built with MPI (the CMake option VARFLOW_WITH_MPI).
bool built_with_mpi();

// The communicator of an MPI communicator given as its Fortran handle (MPI_Comm_c2f in C; the
// integer of a Fortran communicator), for the C and Fortran ABI, whose headers do not include mpi.h.
// Duplicated as mpi_communicator() does (mpi_communicator.h). Throws InvalidArgument when varflow was
// built without MPI, MPI is not initialised, or the handle is MPI_COMM_NULL's.
std::unique_ptr<Communicator> communicator_from_fortran_handle(int handle);

// The communicator of a program's job, for main() only (a library never calls it): when the process
// was started by an MPI launcher (mpirun / srun set OMPI_COMM_WORLD_SIZE, PMI_SIZE or PMIX_RANK) and
// varflow was built with MPI, it initialises MPI and holds the world communicator, finalising MPI on
// destruction; otherwise it holds the serial communicator. One per process.
class ProgramCommunicator {
 public:
  ProgramCommunicator(int& argc, char**& argv);
  ~ProgramCommunicator();
  ProgramCommunicator(const ProgramCommunicator&) = delete;
  ProgramCommunicator& operator=(const ProgramCommunicator&) = delete;
  const Communicator& get() const { return *comm_; }

 private:
  std::unique_ptr<Communicator> comm_;
  bool finalize_ = false;
};

// Items [begin, end) of rank `rank` among `size` ranks: contiguous blocks, sizes differing by at most
// one, lower ranks first.
struct ItemRange {
  Index begin = 0, end = 0;
};
ItemRange block_range(Index items, int rank, int size);

// The random stream of item `item` of a job seeded by `base` (SplitMix64 of the base, then of the
// item index added to it): the same on every rank, so a distributed loop gives each item the draws it
// gets on one rank.
Rng item_rng(std::uint64_t base, Index item);

// Flat records of doubles and text, for results that travel between ranks. Doubles travel as their
// bytes (bit-exact, NaN included).
class RecordWriter {
 public:
  void put(double v);
  void put(const Vector& v);  // size, then the values
  void put(const Matrix& m);  // rows, cols, then the values (column-major)
  void put(const std::string& s);
  const std::string& bytes() const { return bytes_; }

 private:
  std::string bytes_;
};

class RecordReader {
 public:
  explicit RecordReader(const std::string& bytes) : bytes_(bytes) {}
  double get_double();
  Vector get_vector();
  Matrix get_matrix();
  std::string get_string();
  bool done() const { return at_ == bytes_.size(); }

 private:
  void read(void* out, std::size_t n);
  const std::string& bytes_;
  std::size_t at_ = 0;
};

// How one rank runs its items in distributed_map: one after another on the calling thread, or spread
// over the rank's OpenMP threads (item() must then be safe to call concurrently for different items).
enum class ItemThreads { kOne, kOpenMp };

// Runs item(i) for i = 0 .. items - 1, rank r the items r, r + size, r + 2 size, ... (cyclic, so
// that costly first items, e.g. the events probed for their Jacobian, spread over the ranks), and
// returns every item's record in item order on every rank. `name(i)` names item i in messages (e.g. "event_7").
// Failure: when item(i) throws on some rank, that rank stops its block and, at the gather, every
// rank throws the same exception, naming the failing rank and item:
//   "<what>: rank 1, event_7: <message>"
// (InvalidArgument when the item threw InvalidArgument, otherwise Error; with failures on several
// ranks, the lowest failing rank's). No rank blocks forever on a failed peer, and nothing has been
// written: callers write their output after distributed_map returns. With ItemThreads::kOpenMp a rank
// runs all its items and reports the failure of its lowest failing item.
// `progress(done, total)`, when given, is called on this rank after each of its items completes (one
// call at a time, from whichever thread finished it): done of this rank's total items.
using ItemProgress = std::function<void(Index done, Index total)>;
// An ItemProgress writing "<prefix>k/N <what>, s s left" to `log` at every tenth of the items and at
// the last one (the estimate from the mean time per item so far). `log` must outlive the map.
ItemProgress log_items_every_tenth(std::ostream& log, std::string prefix, std::string what);
std::vector<std::string> distributed_map(const Communicator& comm, Index items, const std::string& what,
                                         const std::function<std::string(Index)>& name,
                                         const std::function<std::string(Index)>& item,
                                         ItemThreads threads = ItemThreads::kOne, const ItemProgress& progress = {});

// The sum of `blocks` terms, vectors of `size` values, split over the ranks: rank r computes the terms
// of its contiguous blocks block_range(blocks, r, P) as the columns of a size x (last - first) matrix,
// terms(first, last), and every rank adds all the terms in block order, starting from zero:
//   ((0 + t_0) + t_1) + ... + t_{blocks-1}
// Each term is computed by one call on one rank whatever the number of ranks, so the result is the
// same bits on every rank and for any number of ranks (the serial communicator included), provided
// the terms themselves do not depend on which range they were computed in (e.g. fixed blocks of
// base draws, each block one product: AmortizedPosterior::mean_jvp). Unlike allreduce_sum, whose
// order is the MPI library's. Ranks beyond `blocks` compute nothing. Collective: every rank calls it
// with the same blocks and size. Failure: when terms throws (or returns a wrong shape) on some rank,
// every rank throws the lowest failing rank's exception, as distributed_map does:
//   "<what>: rank 1, blocks 10..19: <message>"
// (the message alone on one rank).
Vector blocked_sum(const Communicator& comm, Index blocks, Index size, const std::string& what,
                   const std::function<Matrix(Index first, Index last)>& terms);

// What a rank caught, to carry to the others: the kind (InvalidArgument, NumericalError, other) and
// the message. capture_failure runs f and returns what it threw (failed() false when nothing);
// rethrow_failure throws it again with its kind, the message prefixed by `prefix`.
struct Failure {
  int kind = 0;  // 0: none
  std::string message;
  bool failed() const { return kind != 0; }
};
Failure capture_failure(const std::function<void()>& f);
[[noreturn]] void rethrow_failure(const Failure& failure, const std::string& prefix = {});

// Runs f on the root only; when it throws, every rank throws the same exception (InvalidArgument
// stays InvalidArgument) with the root's message. For the one-writer steps of a job (taking the run
// lock, writing an output) whose failure the other ranks must share.
void run_on_root(const Communicator& comm, const std::function<void()>& f);

}  // namespace varflow
