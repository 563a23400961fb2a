#include "varflow/io/run_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <string>

#include "varflow/core/error.h"

namespace varflow {

namespace {

std::string holder_details() {
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) != 0) std::strcpy(host, "unknown");
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  ::gmtime_r(&now, &utc);
  char when[64] = {};
  std::strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return format_message("pid ", ::getpid(), " on host ", host, " since ", when);
}

std::string read_all(int fd) {
  std::string text;
  char buffer[512];
  off_t offset = 0;
  for (;;) {
    const ssize_t got = ::pread(fd, buffer, sizeof(buffer), offset);
    if (got <= 0) break;
    text.append(buffer, static_cast<std::size_t>(got));
    offset += got;
    if (text.size() > 4096) break;
  }
  while (!text.empty() && (text.back() == '\n' || text.back() == '\0')) text.pop_back();
  return text;
}

}  // namespace

std::filesystem::path RunLock::lock_file_of(const std::filesystem::path& output, Kind kind) {
  if (kind == Kind::kDirectory) return output / ".varflow.lock";
  const std::filesystem::path dir = output.has_parent_path() ? output.parent_path() : std::filesystem::path(".");
  return dir / format_message(".", output.filename().string(), ".lock");
}

RunLock::RunLock(const std::filesystem::path& output, Kind kind) : lock_file_(lock_file_of(output, kind)) {
  fd_ = ::open(lock_file_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    throw InvalidArgument(format_message("output ", output.string(), ": cannot create the lock file ",
                                         lock_file_.string(), ": ", std::strerror(errno)));
  }
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    std::string holder = err == EWOULDBLOCK ? read_all(fd_) : std::string();
    ::close(fd_);
    fd_ = -1;
    if (err != EWOULDBLOCK) {
      throw InvalidArgument(format_message("output ", output.string(), ": cannot lock ", lock_file_.string(), ": ",
                                           std::strerror(err)));
    }
    if (holder.empty()) holder = "a process that has not yet written its details";
    throw InvalidArgument(format_message("output ", output.string(), " is in use by another varflow run (",
                                         holder, "; lock file ", lock_file_.string(),
                                         "); wait for it to finish or choose another output"));
  }
  // Ours now (a dead holder's lock was released by the kernel): record who holds it.
  const std::string details = holder_details() + "\n";
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, details.data(), details.size(), 0) < 0) {
    // The lock is held; only the details for a refused process's message are missing.
  }
}

RunLock::~RunLock() {
  if (fd_ >= 0) {
    if (::ftruncate(fd_, 0) != 0) {
      // Only the holder's details stay behind; the lock is released by close either way.
    }
    ::close(fd_);  // releases the flock
  }
}

}  // namespace varflow
