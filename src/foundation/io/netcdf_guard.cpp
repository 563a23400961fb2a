#include "varflow/io/netcdf_guard.h"

#include <fcntl.h>
#include <netcdf.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <vector>

#include "varflow/core/error.h"
#include "varflow/core/hash.h"

namespace varflow {

namespace fs = std::filesystem;

namespace {

constexpr const char* kTrailerMagic = "varflow-sum1 fnv1a64=";

// FNV-1a 64 of the first `bytes` bytes of `in` (read in 1 MiB blocks); throws Error when short.
std::string trailer_text(std::uint64_t hash, std::uintmax_t size) {
  char text[kChecksumTrailerBytes + 1];
  std::snprintf(text, sizeof text, "%s%s size=%020llu\n", kTrailerMagic, hex64(hash).c_str(),
                static_cast<unsigned long long>(size));
  return std::string(text, kChecksumTrailerBytes);
}

// Parses a trailer; false when `text` is not one (an unsealed file).
bool parse_trailer(const std::string& text, std::uint64_t* hash, std::uintmax_t* size) {
  const std::size_t magic = std::strlen(kTrailerMagic);
  if (text.size() != kChecksumTrailerBytes || text.compare(0, magic, kTrailerMagic) != 0 ||
      text.compare(magic + 16, 6, " size=") != 0 || text.back() != '\n') {
    return false;
  }
  std::uint64_t h = 0;
  for (std::size_t i = magic; i < magic + 16; ++i) {
    const char c = text[i];
    const int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (digit < 0) return false;
    h = h << 4 | static_cast<std::uint64_t>(digit);
  }
  std::uintmax_t s = 0;
  for (std::size_t i = magic + 22; i < kChecksumTrailerBytes - 1; ++i) {
    if (text[i] < '0' || text[i] > '9') return false;
    s = s * 10 + static_cast<std::uintmax_t>(text[i] - '0');
  }
  *hash = h;
  *size = s;
  return true;
}

// ---- the probe (runs in the child) --------------------------------------------------------------
// Everything is read through the netCDF C API in bounded pieces, so that a hostile size cannot
// exhaust the child's memory; errors of the library are ignored (the parent meets them again).

constexpr std::size_t kProbeBlockElements = std::size_t{1} << 20;
constexpr std::size_t kProbeMaxElements = std::size_t{1} << 30;   // read per variable at most
constexpr std::size_t kProbeMaxAttributeBytes = std::size_t{64} << 20;

bool atomic_type(nc_type type) { return type >= NC_BYTE && type <= NC_STRING; }

void probe_attributes(int ncid, int varid, int count) {
  for (int a = 0; a < count; ++a) {
    char name[NC_MAX_NAME + 1] = {};
    nc_type type = 0;
    std::size_t length = 0, size = 0;
    if (nc_inq_attname(ncid, varid, a, name) != NC_NOERR) continue;
    if (nc_inq_att(ncid, varid, name, &type, &length) != NC_NOERR || !atomic_type(type)) continue;
    if (nc_inq_type(ncid, type, nullptr, &size) != NC_NOERR || size == 0) continue;
    if (length == 0 || length > kProbeMaxAttributeBytes / size) continue;
    if (type == NC_STRING) {
      std::vector<char*> strings(length, nullptr);
      if (nc_get_att_string(ncid, varid, name, strings.data()) == NC_NOERR) nc_free_string(length, strings.data());
    } else {
      std::vector<unsigned char> buffer(length * size);
      nc_get_att(ncid, varid, name, buffer.data());
    }
  }
}

void probe_variable_data(int ncid, int varid, nc_type type, std::size_t size, const std::vector<std::size_t>& shape) {
  for (const std::size_t n : shape) {
    if (n == 0) return;
  }
  const int rank = static_cast<int>(shape.size());
  // Dimensions split+1.. are read whole; dimension `split` in steps of `step`; those before it one
  // index at a time.
  std::size_t inner = 1;
  int split = rank - 1;
  while (split >= 0 && shape[static_cast<std::size_t>(split)] <= kProbeBlockElements / inner) {
    inner *= shape[static_cast<std::size_t>(split)];
    --split;
  }
  std::vector<std::size_t> start(shape.size(), 0), count(shape);
  std::size_t step = 1;
  if (split >= 0) {
    step = std::max<std::size_t>(1, kProbeBlockElements / inner);
    for (int d = 0; d < split; ++d) count[static_cast<std::size_t>(d)] = 1;
  }
  std::vector<unsigned char> buffer(std::max<std::size_t>(1, step * inner) * size);
  std::vector<char*> strings(type == NC_STRING ? std::max<std::size_t>(1, step * inner) : 0);
  std::size_t elements = 0;
  while (elements < kProbeMaxElements) {
    if (split >= 0) {
      const std::size_t k = static_cast<std::size_t>(split);
      count[k] = std::min(step, shape[k] - start[k]);
    }
    std::size_t piece = 1;
    for (const std::size_t c : count) piece *= c;
    if (type == NC_STRING) {
      if (nc_get_vara_string(ncid, varid, start.data(), count.data(), strings.data()) == NC_NOERR) {
        nc_free_string(piece, strings.data());
      }
    } else if (nc_get_vara(ncid, varid, start.data(), count.data(), buffer.data()) != NC_NOERR) {
      return;  // the parent meets the same error
    }
    elements += piece;
    if (split < 0) return;
    // Next piece: advance dimension `split` by its step, carrying into the dimensions before it.
    int d = split;
    start[static_cast<std::size_t>(d)] += count[static_cast<std::size_t>(d)];
    while (d >= 0 && start[static_cast<std::size_t>(d)] >= shape[static_cast<std::size_t>(d)]) {
      start[static_cast<std::size_t>(d)] = 0;
      if (--d >= 0) start[static_cast<std::size_t>(d)] += 1;
    }
    if (d < 0) return;
  }
}

void probe_group(int ncid, int depth) {
  if (depth > 32) return;
  int dims = 0, vars = 0, atts = 0, unlimited = 0;
  if (nc_inq(ncid, &dims, &vars, &atts, &unlimited) != NC_NOERR) return;
  {
    std::vector<int> ids(static_cast<std::size_t>(std::max(dims, 0)) + 1);
    int n = 0;
    if (nc_inq_dimids(ncid, &n, ids.data(), 0) == NC_NOERR && n <= dims) {
      for (int i = 0; i < n; ++i) {
        char name[NC_MAX_NAME + 1] = {};
        std::size_t length = 0;
        nc_inq_dim(ncid, ids[static_cast<std::size_t>(i)], name, &length);
      }
    }
  }
  probe_attributes(ncid, NC_GLOBAL, atts);
  std::vector<int> varids(static_cast<std::size_t>(std::max(vars, 0)) + 1);
  int nvars = 0;
  if (nc_inq_varids(ncid, &nvars, varids.data()) == NC_NOERR && nvars <= vars) {
    for (int i = 0; i < nvars; ++i) {
      const int varid = varids[static_cast<std::size_t>(i)];
      int rank = 0, natts = 0;
      nc_type type = 0;
      if (nc_inq_varndims(ncid, varid, &rank) != NC_NOERR || rank < 0 || rank > NC_MAX_VAR_DIMS) continue;
      std::vector<int> dimids(static_cast<std::size_t>(rank) + 1);
      char name[NC_MAX_NAME + 1] = {};
      if (nc_inq_var(ncid, varid, name, &type, &rank, dimids.data(), &natts) != NC_NOERR) continue;
      probe_attributes(ncid, varid, natts);
      std::size_t size = 0;
      if (!atomic_type(type) || nc_inq_type(ncid, type, nullptr, &size) != NC_NOERR || size == 0) continue;
      std::vector<std::size_t> shape(static_cast<std::size_t>(rank));
      bool ok = true;
      for (int d = 0; d < rank && ok; ++d) {
        ok = nc_inq_dimlen(ncid, dimids[static_cast<std::size_t>(d)], &shape[static_cast<std::size_t>(d)]) == NC_NOERR;
      }
      if (ok) probe_variable_data(ncid, varid, type, size, shape);
    }
  }
  int groups = 0;
  if (nc_inq_grps(ncid, &groups, nullptr) == NC_NOERR && groups > 0) {
    std::vector<int> ids(static_cast<std::size_t>(groups));
    if (nc_inq_grps(ncid, &groups, ids.data()) == NC_NOERR) {
      for (const int id : ids) probe_group(id, depth + 1);
    }
  }
}

[[noreturn]] void run_probe_child(const char* path) {
  // A crash ends the child by its signal, not in a handler inherited from the parent (a fuzzer's
  // or a sanitizer's would report it as the parent's own).
  for (const int sig : {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL, SIGTRAP, SIGALRM}) ::signal(sig, SIG_DFL);
  const int devnull = ::open("/dev/null", O_WRONLY);
  if (devnull >= 0) {
    ::dup2(devnull, STDOUT_FILENO);
    ::dup2(devnull, STDERR_FILENO);
  }
  int ncid = 0;
  if (nc_open(path, NC_NOWRITE, &ncid) == NC_NOERR) {
    probe_group(ncid, 0);
    nc_close(ncid);
  }
  ::_exit(0);
}

}  // namespace

void append_checksum_trailer(const fs::path& file) {
  std::error_code ec;
  const std::uintmax_t size = fs::file_size(file, ec);
  if (ec) throw Error(format_message("cannot read ", file.string(), " to seal it: ", ec.message()));
  const std::uint64_t hash = fnv1a_file(file, size);
  std::ofstream out(file, std::ios::binary | std::ios::app);
  const std::string trailer = trailer_text(hash, size);
  if (!out.write(trailer.data(), static_cast<std::streamsize>(trailer.size())) || !out.flush()) {
    throw Error(format_message("cannot write the checksum of ", file.string()));
  }
}

ChecksumSeal verify_checksum_trailer(const fs::path& file, const std::string& where) {
  std::error_code ec;
  const std::uintmax_t size = fs::file_size(file, ec);
  if (ec) throw InvalidArgument(format_message(where, ": cannot read it: ", ec.message()));
  if (size < kChecksumTrailerBytes) return ChecksumSeal::kAbsent;
  std::ifstream in(file, std::ios::binary);
  if (!in) throw InvalidArgument(format_message(where, ": cannot open it for reading"));
  std::string text(kChecksumTrailerBytes, '\0');
  in.seekg(static_cast<std::streamoff>(size - kChecksumTrailerBytes));
  if (!in.read(text.data(), static_cast<std::streamsize>(text.size()))) {
    throw InvalidArgument(format_message(where, ": cannot read it"));
  }
  std::uint64_t stored_hash = 0;
  std::uintmax_t stored_size = 0;
  if (!parse_trailer(text, &stored_hash, &stored_size)) return ChecksumSeal::kAbsent;
  const std::uintmax_t content = size - kChecksumTrailerBytes;
  const std::string advice =
      " (it was damaged, or changed by another program after varflow wrote it; to read a changed file "
      "anyway, remove its last 64 bytes, the checksum: truncate -s -64 FILE)";
  if (stored_size != content) {
    throw InvalidArgument(format_message(where, ": the file is damaged: its checksum trailer records ", stored_size,
                                         " bytes of content, the file has ", content, advice));
  }
  const std::uint64_t hash = fnv1a_file(file, content);
  if (hash != stored_hash) {
    throw InvalidArgument(format_message(where, ": the file is damaged: its content has checksum ", hex64(hash),
                                         ", its trailer records ", hex64(stored_hash), advice));
  }
  return ChecksumSeal::kIntact;
}

double untrusted_read_timeout_seconds(const fs::path& file) {
  if (const char* text = std::getenv("VARFLOW_UNTRUSTED_READ_TIMEOUT")) {
    char* end = nullptr;
    const double seconds = std::strtod(text, &end);
    if (end != text && seconds > 0.0) return seconds;
  }
  std::error_code ec;
  const std::uintmax_t size = fs::file_size(file, ec);
  return 30.0 + (ec ? 0.0 : static_cast<double>(size) / 1e7);
}

void probe_netcdf_in_child(const fs::path& file, const std::string& where) {
  const std::string path = file.string();
  const double timeout = untrusted_read_timeout_seconds(file);
  std::fflush(nullptr);  // nothing buffered is written twice
  const pid_t pid = ::fork();
  if (pid < 0) throw Error(format_message(where, ": cannot start the process that checks it: ", std::strerror(errno)));
  if (pid == 0) run_probe_child(path.c_str());

  const auto start = std::chrono::steady_clock::now();
  long pause_ns = 200'000;  // 0.2 ms, growing to 50 ms
  int status = 0;
  for (;;) {
    // The limit is checked before the child's state, so a child not seen finished by then is refused.
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (elapsed > timeout) {
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      throw InvalidArgument(format_message(where, ": the netCDF library did not finish reading the file in ",
                                           timeout, " s (it hangs on it): the file is damaged or not netCDF (the limit ",
                                           "is VARFLOW_UNTRUSTED_READ_TIMEOUT seconds when set)"));
    }
    const pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid) break;
    if (done < 0 && errno != EINTR) throw Error(format_message(where, ": lost the process that checks it"));
    const timespec pause{0, pause_ns};
    ::nanosleep(&pause, nullptr);
    pause_ns = std::min(pause_ns * 2, 50'000'000L);
  }
  if (WIFSIGNALED(status)) {
    throw InvalidArgument(format_message(where, ": the netCDF library crashed reading the file (signal ", WTERMSIG(status),
                                         ", ", strsignal(WTERMSIG(status)), "): the file is damaged or not netCDF"));
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw InvalidArgument(format_message(where, ": the netCDF library failed reading the file (the checking process ",
                                         "exited with status ", WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                                         "): the file is damaged or not netCDF"));
  }
}

void check_netcdf_before_open(const fs::path& file, const std::string& where) {
  if (verify_checksum_trailer(file, where) == ChecksumSeal::kIntact) return;
  probe_netcdf_in_child(file, where);
}

}  // namespace varflow
