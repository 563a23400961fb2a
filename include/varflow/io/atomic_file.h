#pragma once
// Writing an output file so that it is never left half-written: write to a temporary file beside
// the target, then rename it into place (atomic on POSIX within one file system). If the writer
// throws or commit() is never called, the temporary is removed and the target is untouched.
//
//   AtomicOutput out("analysis.nc");
//   write_netcdf(out.temporary_path(), ...);   // any writer that takes a path
//   out.commit();                             // rename over analysis.nc
#include <filesystem>
#include <string>
#include <string_view>

namespace varflow {

class AtomicOutput {
 public:
  // Throws InvalidArgument when the target's directory does not exist or the target is a directory.
  explicit AtomicOutput(std::filesystem::path target);
  ~AtomicOutput();
  AtomicOutput(const AtomicOutput&) = delete;
  AtomicOutput& operator=(const AtomicOutput&) = delete;

  const std::filesystem::path& target() const { return target_; }
  const std::filesystem::path& temporary_path() const { return temporary_; }
  // Moves the temporary file onto the target. Throws Error when the rename fails.
  void commit();

 private:
  std::filesystem::path target_, temporary_;
  bool committed_ = false;
};

// Writes `text` to `target` through an AtomicOutput (binary, no newline translation). Throws
// InvalidArgument as AtomicOutput does, Error when writing fails.
void write_text_atomically(const std::filesystem::path& target, std::string_view text);

}  // namespace varflow
