#pragma once
// Writing an output file so that it is never left half-written: write to a temporary file beside
// the target, then rename it into place (atomic on POSIX within one file system). If the writer
// throws or commit() is never called, the temporary is removed and the target is untouched.
//
//   AtomicOutput out("analysis.nc");
//   write_netcdf(out.temporary_path(), ...);   // any writer that takes a path
//   out.commit();                             // rename over analysis.nc
//
// Durability: commit() fsyncs the temporary before the rename and the directory after it, so after
// a power loss the target holds the old or the new content, never an empty or partial file.
// Temporaries are named `.<target name>.tmp<pid>_<n>` (a journal's `..<target name>.commit.tmp<pid>_<n>`);
// those of dead processes (a kill -9 leaves them) are removed when the next AtomicOutput of the
// same target is made.
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace varflow {

class AtomicOutput {
 public:
  // Throws InvalidArgument when the target's directory does not exist or the target is a directory.
  // Completes an interrupted commit_together() of a dead process that named this target, then
  // removes this target's temporaries left by dead processes.
  explicit AtomicOutput(std::filesystem::path target);
  ~AtomicOutput();
  AtomicOutput(const AtomicOutput&) = delete;
  AtomicOutput& operator=(const AtomicOutput&) = delete;

  const std::filesystem::path& target() const { return target_; }
  const std::filesystem::path& temporary_path() const { return temporary_; }
  // Flushes the temporary to disk, moves it onto the target and flushes the directory. Throws Error
  // when a step fails (the target is then untouched).
  void commit();

  // Commits files that belong together (a model and its loss curves) so that a kill at any point
  // leaves all old or all new targets once the next AtomicOutput of any of them is made: the
  // temporaries are flushed, a journal `.<first target name>.commit` listing the renames is written
  // atomically, the renames are done, then the journal is removed. A journal of a dead process is
  // rolled forward (its remaining renames done) by the AtomicOutput constructor. All outputs must
  // be in one directory. Throws Error when a step fails before the journal exists (nothing changed).
  static void commit_together(const std::vector<AtomicOutput*>& outputs);

 private:
  std::filesystem::path target_, temporary_;
  bool committed_ = false;
};

// Writes `text` to `target` through an AtomicOutput (binary, no newline translation). Throws
// InvalidArgument as AtomicOutput does, Error when writing fails.
void write_text_atomically(const std::filesystem::path& target, std::string_view text);

// fsync of a file or directory by path; throws Error naming it when the flush fails.
void sync_path(const std::filesystem::path& path);

}  // namespace varflow
