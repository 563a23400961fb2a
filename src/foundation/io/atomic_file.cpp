#include "varflow/io/atomic_file.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <system_error>

#include "varflow/core/error.h"

namespace varflow {

namespace fs = std::filesystem;

namespace {

fs::path directory_of(const fs::path& target) { return target.has_parent_path() ? target.parent_path() : fs::path("."); }

fs::path journal_of(const fs::path& target) {
  return directory_of(target) / format_message(".", target.filename().string(), ".commit");
}

// True when process `pid` is gone (kill(pid, 0) fails with ESRCH). A live process of another user
// (EPERM) counts as alive.
bool process_is_dead(long pid) {
  if (pid <= 0) return false;
  if (pid == static_cast<long>(::getpid())) return false;
  return ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
}

// The pid in a temporary's name `.<name>.tmp<pid>_<n>` after `prefix` (= ".<name>.tmp"); 0 if none.
long pid_in_temporary_name(const std::string& file, const std::string& prefix) {
  if (file.rfind(prefix, 0) != 0) return 0;
  const std::string rest = file.substr(prefix.size());
  const auto underscore = rest.find('_');
  if (underscore == std::string::npos || underscore == 0 || underscore > 9) return 0;
  for (std::size_t i = 0; i < rest.size(); ++i) {
    if (i != underscore && (rest[i] < '0' || rest[i] > '9')) return 0;
  }
  return std::stol(rest.substr(0, underscore));
}

// The writer's pid when `name` is a temporary (".<file>.tmp<pid>_<n>") of a file of the target `base`:
// the target itself, its journal ".<base>.commit", or one of their temporaries (a writer with an
// AtomicOutput of its own that writes into another's temporary, as NetcdfWriter does when `varflow
// train` saves the model into the temporary it commits with the loss curves); 0 otherwise. The pid
// is the innermost writer's.
long temporary_writer_pid(const std::string& name, const std::string& base) {
  const auto tmp = name.rfind(".tmp");
  if (name.empty() || name[0] != '.' || tmp == std::string::npos || tmp < 1) return 0;
  const long pid = pid_in_temporary_name(name, name.substr(0, tmp + 4));
  if (pid == 0) return 0;
  const std::string written = name.substr(1, tmp - 1);  // the file this temporary replaces
  const bool ours = written == base || written == journal_of(base).filename().string();
  return ours || temporary_writer_pid(written, base) != 0 ? pid : 0;
}

struct Journal {
  long pid = 0;
  std::vector<std::pair<fs::path, fs::path>> renames;  // temporary, target
};

// Journal text: "pid <n>\n" then "<temporary>\t<target>\n" per file (file names within the directory).
Journal read_journal(const fs::path& file) {
  Journal j;
  std::ifstream in(file);
  std::string line;
  if (!std::getline(in, line) || line.rfind("pid ", 0) != 0) return j;
  try {
    j.pid = std::stol(line.substr(4));
  } catch (const std::exception&) {
    return Journal{};
  }
  const fs::path dir = file.parent_path();
  while (std::getline(in, line)) {
    const auto tab = line.find('\t');
    if (tab == std::string::npos) return Journal{};
    j.renames.emplace_back(dir / line.substr(0, tab), dir / line.substr(tab + 1));
  }
  return j;
}

// Temporaries named by any journal in `dir` (they are kept for the roll forward).
std::vector<fs::path> journaled_temporaries(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() > 8 && name[0] == '.' && name.compare(name.size() - 7, 7, ".commit") == 0) {
      for (const auto& [temporary, target] : read_journal(entry.path()).renames) out.push_back(temporary.filename());
    }
  }
  return out;
}

// Rolls forward the journal of `target` when its writer is dead: the renames whose temporary is
// still there are done (the others were done before the kill), then the journal is removed.
void recover_journal(const fs::path& target) {
  const fs::path journal = journal_of(target);
  std::error_code ec;
  if (!fs::exists(journal, ec)) return;
  const Journal j = read_journal(journal);
  if (j.pid != 0 && !process_is_dead(j.pid)) return;  // a live writer is still committing
  for (const auto& [temporary, final_target] : j.renames) {
    if (fs::exists(temporary, ec)) fs::rename(temporary, final_target, ec);
  }
  fs::remove(journal, ec);
  try {
    sync_path(directory_of(target));
  } catch (const Error&) {
    // The renames are done; a failed directory flush only weakens durability across a power loss.
  }
}

void remove_stale_temporaries(const fs::path& target) {
  const fs::path dir = directory_of(target);
  const std::string base = target.filename().string();
  const auto kept = journaled_temporaries(dir);
  std::error_code ec;
  std::vector<fs::path> stale;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    const long pid = temporary_writer_pid(name, base);
    if (pid != 0 && process_is_dead(pid) && std::find(kept.begin(), kept.end(), entry.path().filename()) == kept.end()) {
      stale.push_back(entry.path());
    }
  }
  for (const auto& p : stale) fs::remove(p, ec);
}

std::atomic<unsigned> counter{0};

fs::path temporary_for(const fs::path& target) {
  return directory_of(target) / format_message(".", target.filename().string(), ".tmp", ::getpid(), "_", counter++);
}

void rename_or_throw(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::rename(from, to, ec);
  if (ec) throw Error(format_message("could not move ", from.string(), " to ", to.string(), ": ", ec.message()));
}

}  // namespace

void sync_path(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(format_message("could not open ", path.string(), " to flush it: ", std::strerror(errno)));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  // Some file systems refuse fsync of a directory (EINVAL); that is not a write failure.
  if (rc != 0 && err != EINVAL) {
    throw Error(format_message("could not flush ", path.string(), " to disk: ", std::strerror(err)));
  }
}

AtomicOutput::AtomicOutput(fs::path target) : target_(std::move(target)) {
  if (target_.empty()) throw InvalidArgument("output path is empty");
  const fs::path dir = directory_of(target_);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    throw InvalidArgument(format_message("output ", target_.string(), ": directory ", dir.string(),
                                         " does not exist"));
  }
  if (fs::is_directory(target_, ec)) {
    throw InvalidArgument(format_message("output ", target_.string(), " is a directory"));
  }
  recover_journal(target_);
  remove_stale_temporaries(target_);
  temporary_ = temporary_for(target_);
}

AtomicOutput::~AtomicOutput() {
  if (!committed_) {
    std::error_code ec;
    fs::remove(temporary_, ec);
  }
}

void AtomicOutput::commit() {
  sync_path(temporary_);
  rename_or_throw(temporary_, target_);
  committed_ = true;
  sync_path(directory_of(target_));
}

void AtomicOutput::commit_together(const std::vector<AtomicOutput*>& outputs) {
  if (outputs.empty()) return;
  const fs::path dir = directory_of(outputs.front()->target_);
  for (AtomicOutput* o : outputs) {
    if (fs::absolute(directory_of(o->target_)) != fs::absolute(dir)) {
      throw InvalidArgument(format_message("outputs committed together must share a directory: ",
                                           outputs.front()->target_.string(), ", ", o->target_.string()));
    }
    sync_path(o->temporary_);
  }
  std::ostringstream text;
  text << "pid " << ::getpid() << "\n";
  for (AtomicOutput* o : outputs) text << o->temporary_.filename().string() << "\t" << o->target_.filename().string() << "\n";
  const fs::path journal = journal_of(outputs.front()->target_);
  {
    const fs::path journal_temporary = temporary_for(journal);
    {
      std::ofstream f(journal_temporary, std::ios::binary);
      f << text.str();
      if (!f.flush()) {
        std::error_code ec;
        fs::remove(journal_temporary, ec);
        throw Error(format_message("could not write ", journal.string()));
      }
    }
    sync_path(journal_temporary);
    rename_or_throw(journal_temporary, journal);
    sync_path(dir);
  }
  // From here a kill is completed by the next AtomicOutput of the first target.
  for (AtomicOutput* o : outputs) {
    rename_or_throw(o->temporary_, o->target_);
    o->committed_ = true;
  }
  sync_path(dir);
  std::error_code ec;
  fs::remove(journal, ec);
  sync_path(dir);
}

void write_text_atomically(const fs::path& target, std::string_view text) {
  AtomicOutput out(target);
  {
    std::ofstream f(out.temporary_path(), std::ios::binary);
    f.write(text.data(), static_cast<std::streamsize>(text.size()));
    f.flush();
    if (!f) throw Error(format_message("could not write ", target.string()));
  }
  out.commit();
}

}  // namespace varflow
