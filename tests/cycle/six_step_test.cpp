// Smoke test of the six-step pipeline at tiny sizes: artifacts, gate-failure handling (stop and
// fallback), strict config reading.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "varflow/core/error.h"
#include "varflow/cycle/six_step.h"

namespace varflow {
namespace {

cycle::SixStepConfig tiny(const std::string& on_failure) {
  // Too little training for the emulator to pass its gate: exercises the failure paths.
  return cycle::SixStepConfig::from_yaml("n: 20\ntrain_pairs: 200\nheld_out: 10\nepochs: 2\nhidden: 6\n"
                                         "windows: 2\non_gate_failure: " + on_failure + "\n",
                                         "tiny");
}

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

const cycle::StepRecord& step(const cycle::SixStepReport& r, int number) {
  for (const auto& s : r.steps) {
    if (s.number == number) return s;
  }
  throw std::runtime_error("no such step");
}

TEST(SixStep, StopsAfterAFailedEmulatorGateAndWritesEveryArtifact) {
  const auto dir = std::filesystem::temp_directory_path() / "varflow_six_step_stop";
  std::filesystem::remove_all(dir);
  std::ostringstream log;
  const auto r = cycle::run_six_step(tiny("stop"), 5, dir, log);
  std::printf("%s", r.table().c_str());
  EXPECT_EQ(step(r, 3).status, cycle::StepStatus::kFailed);
  EXPECT_EQ(step(r, 4).status, cycle::StepStatus::kSkipped);
  EXPECT_EQ(step(r, 5).status, cycle::StepStatus::kNotImplemented);
  EXPECT_FALSE(r.all_gates_passed());
  EXPECT_TRUE(std::filesystem::exists(dir / "emulator.nc"));
  const std::string manifest = slurp(dir / "manifest.json");
  EXPECT_NE(manifest.find(r.config_hash), std::string::npos);
  EXPECT_NE(manifest.find(step(r, 3).checksum), std::string::npos);
  EXPECT_NE(manifest.find("\"all_gates_passed\": false"), std::string::npos);
  const std::string html = slurp(dir / "report.html");
  EXPECT_NE(html.find("<table>"), std::string::npos);
  EXPECT_NE(html.find("stopped: step 3 not promoted"), std::string::npos);
  EXPECT_EQ(html.find("http"), std::string::npos);  // self-contained
  std::filesystem::remove_all(dir);
}

TEST(SixStep, FallsBackToThePhysicsModel) {
  const auto dir = std::filesystem::temp_directory_path() / "varflow_six_step_fallback";
  std::filesystem::remove_all(dir);
  std::ostringstream log;
  const auto r = cycle::run_six_step(tiny("fallback"), 5, dir, log);
  EXPECT_EQ(step(r, 3).status, cycle::StepStatus::kFailed);
  EXPECT_EQ(step(r, 2).status, cycle::StepStatus::kRan);
  EXPECT_EQ(step(r, 4).status, cycle::StepStatus::kPassed) << step(r, 4).detail;
  EXPECT_NE(step(r, 4).gate.find("fallback"), std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST(SixStep, ConfigErrorsNameTheKey) {
  try {
    cycle::SixStepConfig::from_yaml("n: 20\nepochz: 3\n", "bad");
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("epochz"), std::string::npos) << e.what();
  }
  EXPECT_THROW(cycle::SixStepConfig::from_yaml("on_gate_failure: retry\n", "bad"), InvalidArgument);
}

}  // namespace
}  // namespace varflow
