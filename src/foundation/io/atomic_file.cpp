#include "varflow/io/atomic_file.h"

#include <unistd.h>

#include <atomic>
#include <fstream>
#include <system_error>

#include "varflow/core/error.h"

namespace varflow {

AtomicOutput::AtomicOutput(std::filesystem::path target) : target_(std::move(target)) {
  namespace fs = std::filesystem;
  if (target_.empty()) throw InvalidArgument("output path is empty");
  const fs::path dir = target_.has_parent_path() ? target_.parent_path() : fs::path(".");
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    throw InvalidArgument(format_message("output ", target_.string(), ": directory ", dir.string(),
                                         " does not exist"));
  }
  if (fs::is_directory(target_, ec)) {
    throw InvalidArgument(format_message("output ", target_.string(), " is a directory"));
  }
  static std::atomic<unsigned> counter{0};
  temporary_ = dir / format_message(".", target_.filename().string(), ".tmp", ::getpid(), "_", counter++);
}

AtomicOutput::~AtomicOutput() {
  if (!committed_) {
    std::error_code ec;
    std::filesystem::remove(temporary_, ec);
  }
}

void AtomicOutput::commit() {
  std::error_code ec;
  std::filesystem::rename(temporary_, target_, ec);
  if (ec) {
    throw Error(format_message("could not move ", temporary_.string(), " to ", target_.string(), ": ",
                               ec.message()));
  }
  committed_ = true;
}

void write_text_atomically(const std::filesystem::path& target, std::string_view text) {
  AtomicOutput out(target);
  {
    std::ofstream f(out.temporary_path(), std::ios::binary);
    f.write(text.data(), static_cast<std::streamsize>(text.size()));
    if (!f) throw Error(format_message("could not write ", target.string()));
  }
  out.commit();
}

}  // namespace varflow
