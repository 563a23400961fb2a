// libFuzzer target over the YAML configuration readers: the experiment config (simulate,
// assimilate) and the six-step config. Any input must end in a parsed config or an
// InvalidArgument; anything else (another exception, a crash, a sanitizer report) is a bug.
#include <cstddef>
#include <cstdint>
#include <string>

#include "varflow/core/error.h"
#include "varflow/cycle/six_step.h"
#include "varflow/experiment/experiment_config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    (void)varflow::parse_experiment_config(text, "fuzz.yaml");
  } catch (const varflow::InvalidArgument&) {
  }
  try {
    (void)varflow::cycle::SixStepConfig::from_yaml(text, "fuzz.yaml");
  } catch (const varflow::InvalidArgument&) {
  }
  return 0;
}
