#pragma once
// An exclusive lock on an output file or directory, held for the life of the RunLock object, so that
// two varflow processes never write the same output. The lock is flock(2) on a lock file beside the
// output (`.<name>.lock` for a file, `<dir>/.varflow.lock` for a directory): the kernel releases it
// when the holder exits or is killed, so a stale lock of a dead process is simply taken over. The
// holder writes its pid, host and start time into the lock file; a refused process names them.
// The lock file itself is left in place (removing it would race with a process about to lock it).
#include <filesystem>
#include <string>

namespace varflow {

class RunLock {
 public:
  enum class Kind { kFile, kDirectory };
  // Takes the lock of `output` (not created; for kDirectory the directory must exist). Throws
  // InvalidArgument naming the output and the holder (pid, host, start time) when another process
  // holds it, or when the lock file cannot be created.
  RunLock(const std::filesystem::path& output, Kind kind);
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

  const std::filesystem::path& lock_file() const { return lock_file_; }
  // The lock file of `output`.
  static std::filesystem::path lock_file_of(const std::filesystem::path& output, Kind kind);

 private:
  std::filesystem::path lock_file_;
  int fd_ = -1;
};

}  // namespace varflow
