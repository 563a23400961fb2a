// libFuzzer target over the netCDF readers: each input is written to a file and read as a
// truth/obs file, as a first background and as an amortized posterior model. A file must be read
// or refused with InvalidArgument; a crash, a hang or a sanitizer report in this process is a bug
// (a crash of the netCDF library inside the checking child process is the refusal working).
// Seed it with files varflow wrote (with and without their checksum trailer).
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "varflow/amortized/amortized_posterior.h"
#include "varflow/core/error.h"
#include "varflow/experiment/experiment_io.h"

namespace {

const std::filesystem::path& input_file() {
  static const std::filesystem::path file =
      std::filesystem::temp_directory_path() / ("varflow_netcdf_fuzz_" + std::to_string(::getpid()) + ".nc");
  return file;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  ::setenv("VARFLOW_UNTRUSTED_READ_TIMEOUT", "5", 0);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  {
    std::ofstream out(input_file(), std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  try {
    (void)varflow::read_twin_data(input_file(), 40, 48, varflow::NonFiniteObservations::kMask);
  } catch (const varflow::Error&) {
  }
  try {
    (void)varflow::read_background(input_file(), 40);
  } catch (const varflow::Error&) {
  }
  try {
    (void)varflow::amortized::AmortizedPosterior::load(input_file());
  } catch (const varflow::Error&) {
  }
  return 0;
}
