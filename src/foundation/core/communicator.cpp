#include "varflow/core/communicator.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "varflow/core/error.h"

namespace varflow {

namespace {

class SerialCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string describe() const override { return "serial (1 rank)"; }
  void allreduce_sum(double*, Index) const override {}
  std::vector<std::string> allgather(const std::string& bytes) const override { return {bytes}; }
  void broadcast(std::string&, int root) const override {
    if (root != 0) throw InvalidArgument(format_message("broadcast: root = ", root, " is not a rank of 1"));
  }
  void barrier() const override {}
  std::unique_ptr<Communicator> split(int, int) const override { return std::make_unique<SerialCommunicator>(); }
  void abort(int) const override {}
};

template <typename E>
class Agreed final : public E, public AgreedFailure {
 public:
  using E::E;
};

// How an item failed, carried between ranks.
enum FailureKind : int { kNone = 0, kError = 1, kInvalidArgument = 2, kNumericalError = 3 };

[[noreturn]] void rethrow_as(int kind, const std::string& message) {
  switch (kind) {
    case kInvalidArgument: throw Agreed<InvalidArgument>(message);
    case kNumericalError: throw Agreed<NumericalError>(message);
    default: throw Agreed<Error>(message);
  }
}

std::pair<int, std::string> capture(const std::function<void()>& f) {
  const Failure failure = capture_failure(f);
  return {failure.kind, failure.message};
}

}  // namespace

Failure capture_failure(const std::function<void()>& f) {
  try {
    f();
  } catch (const InvalidArgument& e) {
    return {kInvalidArgument, e.what()};
  } catch (const NumericalError& e) {
    return {kNumericalError, e.what()};
  } catch (const std::bad_alloc&) {
    return {kError, "out of memory (an allocation failed)"};
  } catch (const std::exception& e) {
    return {kError, e.what()};
  }
  return {};
}

void rethrow_failure(const Failure& failure, const std::string& prefix) {
  rethrow_as(failure.kind == kNone ? kError : failure.kind, prefix + failure.message);
}

bool is_agreed_failure(const std::exception& e) { return dynamic_cast<const AgreedFailure*>(&e) != nullptr; }

const Communicator& serial_communicator() {
  static const SerialCommunicator serial;
  return serial;
}

ItemRange block_range(Index items, int rank, int size) {
  check_at_least("block_range", "size", size, 1);
  if (rank < 0 || rank >= size) throw InvalidArgument(format_message("block_range: rank = ", rank, " outside [0, ", size, ")"));
  const Index base = items / size, extra = items % size;
  const Index begin = rank * base + std::min<Index>(rank, extra);
  return {begin, begin + base + (rank < extra ? 1 : 0)};
}

Rng item_rng(std::uint64_t base, Index item) {
  auto mix = [](std::uint64_t z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  };
  return Rng(mix(mix(base) + static_cast<std::uint64_t>(item)));
}

void RecordWriter::put(double v) { bytes_.append(reinterpret_cast<const char*>(&v), sizeof v); }
void RecordWriter::put(const Vector& v) {
  put(static_cast<double>(v.size()));
  bytes_.append(reinterpret_cast<const char*>(v.data()), sizeof(double) * static_cast<std::size_t>(v.size()));
}
void RecordWriter::put(const Matrix& m) {
  put(static_cast<double>(m.rows()));
  put(static_cast<double>(m.cols()));
  bytes_.append(reinterpret_cast<const char*>(m.data()), sizeof(double) * static_cast<std::size_t>(m.size()));
}
void RecordWriter::put(const std::string& s) {
  put(static_cast<double>(s.size()));
  bytes_ += s;
}

void RecordReader::read(void* out, std::size_t n) {
  if (n > bytes_.size() - at_) throw Error("RecordReader: the record is shorter than its contents");
  std::memcpy(out, bytes_.data() + at_, n);
  at_ += n;
}
double RecordReader::get_double() {
  double v = 0.0;
  read(&v, sizeof v);
  return v;
}
Vector RecordReader::get_vector() {
  Vector v(static_cast<Index>(get_double()));
  read(v.data(), sizeof(double) * static_cast<std::size_t>(v.size()));
  return v;
}
Matrix RecordReader::get_matrix() {
  const auto rows = static_cast<Index>(get_double());
  const auto cols = static_cast<Index>(get_double());
  Matrix m(rows, cols);
  read(m.data(), sizeof(double) * static_cast<std::size_t>(m.size()));
  return m;
}
std::string RecordReader::get_string() {
  std::string s(static_cast<std::size_t>(get_double()), '\0');
  read(s.data(), s.size());
  return s;
}

ItemProgress log_items_every_tenth(std::ostream& log, std::string prefix, std::string what) {
  const auto start = std::chrono::steady_clock::now();
  return [&log, prefix = std::move(prefix), what = std::move(what), start](Index done, Index total) {
    const Index tenth = std::max<Index>(1, total / 10);
    if (done % tenth != 0 && done != total) return;
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double left = elapsed / static_cast<double>(done) * static_cast<double>(total - done);
    log << prefix << done << "/" << total << " " << what << ", " << static_cast<long long>(left + 0.5) << " s left\n"
        << std::flush;
  };
}

std::vector<std::string> distributed_map(const Communicator& comm, Index items, const std::string& what,
                                         const std::function<std::string(Index)>& name,
                                         const std::function<std::string(Index)>& item, ItemThreads threads,
                                         const ItemProgress& progress) {
  const int ranks = comm.size(), me = comm.rank();
  // This rank's payload: a failure kind and message, then the records of its items (cyclic: items
  // me, me + ranks, ...).
  RecordWriter out;
  const Index mine = items > me ? (items - me + ranks - 1) / ranks : 0;
  std::vector<std::string> records(static_cast<std::size_t>(mine));
  std::vector<std::pair<int, std::string>> failures(static_cast<std::size_t>(mine), {kNone, {}});
  Index done = 0;
  const auto run = [&](Index k) {
    const auto at = static_cast<std::size_t>(k);
    failures[at] = capture([&] { records[at] = item(me + k * ranks); });
    if (progress) {
#pragma omp critical(varflow_distributed_map_progress)
      progress(++done, mine);
    }
  };
  if (threads == ItemThreads::kOpenMp) {
#pragma omp parallel for schedule(dynamic, 1)
    for (Index k = 0; k < mine; ++k) run(k);
  } else {
    for (Index k = 0; k < mine && (k == 0 || failures[static_cast<std::size_t>(k - 1)].first == kNone); ++k) run(k);
  }
  std::pair<int, std::string> failure{kNone, {}};
  for (Index k = 0; k < mine; ++k) {
    if (failures[static_cast<std::size_t>(k)].first == kNone) continue;
    failure = failures[static_cast<std::size_t>(k)];
    // With one rank the message stays the item's own (as without a communicator).
    if (ranks > 1) failure.second = format_message(what, ": rank ", me, ", ", name(me + k * ranks), ": ", failure.second);
    records.resize(static_cast<std::size_t>(k));
    break;
  }
  out.put(static_cast<double>(failure.first));
  out.put(failure.second);
  for (const auto& r : records) out.put(r);
  const std::vector<std::string> all = comm.allgather(out.bytes());
  std::vector<RecordReader> in;
  for (int r = 0; r < ranks; ++r) {
    in.emplace_back(all[static_cast<std::size_t>(r)]);
    const int kind = static_cast<int>(in.back().get_double());
    std::string message = in.back().get_string();
    if (kind != kNone) rethrow_as(kind, message);
  }
  std::vector<std::string> result;
  result.reserve(static_cast<std::size_t>(items));
  for (Index i = 0; i < items; ++i) result.push_back(in[static_cast<std::size_t>(i % ranks)].get_string());
  return result;
}

Vector blocked_sum(const Communicator& comm, Index blocks, Index size, const std::string& what,
                   const std::function<Matrix(Index first, Index last)>& terms) {
  check_at_least(what, "blocks", blocks, 1);
  check_at_least(what, "size", size, 1);
  const int ranks = comm.size(), me = comm.rank();
  const ItemRange mine = block_range(blocks, me, ranks);
  Matrix local;
  std::pair<int, std::string> failure{kNone, {}};
  if (mine.end > mine.begin) {
    failure = capture([&] {
      local = terms(mine.begin, mine.end);
      if (local.rows() != size || local.cols() != mine.end - mine.begin) {
        throw Error(format_message("the terms of blocks ", mine.begin, "..", mine.end - 1, " are ", local.rows(),
                                   " x ", local.cols(), ", expected ", size, " x ", mine.end - mine.begin));
      }
    });
    if (failure.first != kNone && ranks > 1) {
      failure.second = format_message(what, ": rank ", me, ", blocks ", mine.begin, "..", mine.end - 1, ": ",
                                      failure.second);
    }
  }
  Vector sum = Vector::Zero(size);
  if (ranks == 1) {
    if (failure.first != kNone) rethrow_as(failure.first, failure.second);
    for (Index b = 0; b < blocks; ++b) sum += local.col(b);
    return sum;
  }
  RecordWriter out;
  out.put(static_cast<double>(failure.first));
  out.put(failure.second);
  if (failure.first == kNone && mine.end > mine.begin) out.put(local);
  const std::vector<std::string> all = comm.allgather(out.bytes());
  std::vector<Matrix> parts(static_cast<std::size_t>(ranks));
  for (int r = 0; r < ranks; ++r) {
    RecordReader in(all[static_cast<std::size_t>(r)]);
    const int kind = static_cast<int>(in.get_double());
    std::string message = in.get_string();
    if (kind != kNone) rethrow_as(kind, message);
    if (!in.done()) parts[static_cast<std::size_t>(r)] = in.get_matrix();
  }
  // Block order: rank 0's blocks, then rank 1's, ... (block_range is contiguous and ordered by rank).
  for (const Matrix& p : parts) {
    for (Index k = 0; k < p.cols(); ++k) sum += p.col(k);
  }
  return sum;
}

void run_on_root(const Communicator& comm, const std::function<void()>& f) {
  std::pair<int, std::string> failure{kNone, {}};
  if (comm.is_root()) failure = capture(f);
  if (comm.size() == 1) {
    if (failure.first != kNone) rethrow_as(failure.first, failure.second);
    return;
  }
  RecordWriter w;
  w.put(static_cast<double>(failure.first));
  w.put(failure.second);
  std::string bytes = w.bytes();
  comm.broadcast(bytes, 0);
  RecordReader in(bytes);
  const int kind = static_cast<int>(in.get_double());
  if (kind != kNone) rethrow_as(kind, in.get_string());
}

}  // namespace varflow
