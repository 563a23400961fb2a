// The six-step pipeline at tiny sizes: artifacts, gate-failure handling (stop and fallback), strict
// config reading, and step 6: a run in the same directory recomputes exactly the steps downstream
// of a change.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>

#include "varflow/core/error.h"
#include "varflow/cycle/six_step.h"
#include "varflow/emulator/stencil_emulator.h"
#include "varflow/io/netcdf_file.h"
#include "../test_messages.h"

namespace varflow {
namespace {

// Too little training for the emulator to pass its gate: exercises the failure paths. `changes`
// replace keys of the tiny configuration.
cycle::SixStepConfig tiny(const std::string& on_failure, const std::map<std::string, std::string>& changes = {}) {
  // Dotted keys: "section.key" goes into `section:`.
  std::map<std::string, std::string> keys = {{"model.n", "20"},        {"emulator.train_pairs", "200"},
                                             {"emulator.held_out", "10"}, {"emulator.epochs", "2"},
                                             {"emulator.hidden", "6"},    {"oracle.windows", "2"},
                                             {"on_gate_failure", on_failure}};
  for (const auto& [k, v] : changes) {
    if (v.empty()) {
      keys.erase(k);  // "" removes a key of the tiny configuration
    } else {
      keys[k] = v;
    }
  }
  std::map<std::string, std::string> sections;
  std::string yaml;
  for (const auto& [k, v] : keys) {
    const auto dot = k.find('.');
    if (dot == std::string::npos) {
      yaml += k + ": " + v + "\n";
    } else {
      sections[k.substr(0, dot)] += "  " + k.substr(dot + 1) + ": " + v + "\n";
    }
  }
  for (const auto& [section, body] : sections) yaml += section + ":\n" + body;
  // A small predictor (step 5): a few hundred pairs, small networks, few validation events.
  yaml += "predictor:\n  pairs: 600\n  training: {epochs: 3, learning_rate: 0.003}\n"
          "  encoder: {width: 16, context: 8, channels: 4}\n  gaussian: {width: 16}\n"
          "  validation: {events: 3, posterior_draws: 400, jacobian_cases: 1}\n";
  return cycle::SixStepConfig::from_yaml(yaml, "tiny");
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

// An empty directory for one test, named after the process too, so that two test runs on one
// machine do not share it.
std::filesystem::path fresh_dir(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / (name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  return dir;
}

TEST(SixStep, StopsAfterAFailedEmulatorGateAndWritesEveryArtifact) {
  const auto dir = fresh_dir("varflow_six_step_stop");
  std::ostringstream log;
  const auto r = cycle::run_six_step(tiny("stop"), 5, dir, log);
  std::printf("%s", r.table().c_str());
  EXPECT_EQ(step(r, 2).status, cycle::StepStatus::kPassed) << step(r, 2).gate;
  EXPECT_EQ(step(r, 3).status, cycle::StepStatus::kFailed);
  EXPECT_EQ(step(r, 4).status, cycle::StepStatus::kSkipped);
  EXPECT_FALSE(r.all_gates_passed());
  for (const char* f : {"physics.nc", "oracle.nc", "emulator.nc", "manifest.json", "report.html"}) {
    EXPECT_TRUE(std::filesystem::exists(dir / f)) << f;
  }
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
  const auto dir = fresh_dir("varflow_six_step_fallback");
  std::ostringstream log;
  const auto r = cycle::run_six_step(tiny("fallback"), 5, dir, log);
  EXPECT_EQ(step(r, 3).status, cycle::StepStatus::kFailed);
  EXPECT_EQ(step(r, 2).status, cycle::StepStatus::kPassed);
  EXPECT_EQ(step(r, 4).status, cycle::StepStatus::kPassed) << step(r, 4).detail;
  EXPECT_NE(step(r, 4).gate.find("fallback"), std::string::npos);
  // Step 5 trains on physics pairs and its three gates run (the tiny predictor's verdict is not
  // the point here; design/cycle.md has the default's).
  const auto& s5 = step(r, 5);
  EXPECT_TRUE(s5.status == cycle::StepStatus::kPassed || s5.status == cycle::StepStatus::kFailed);
  EXPECT_NE(s5.gate.find("fallback: step 3 not promoted"), std::string::npos) << s5.gate;
  for (const char* gate : {"agreement", "adjoint", "SBC"}) EXPECT_NE(s5.gate.find(gate), std::string::npos) << s5.gate;
  EXPECT_EQ(s5.artifact, "predictor.nc");
  EXPECT_TRUE(std::filesystem::exists(dir / "predictor.nc"));
  EXPECT_TRUE(std::filesystem::exists(dir / "predictor_validation" / "report.html"));
  // report.html: pictures of steps 1-4 with labelled axes, step 5's gate summary and a link to its
  // full report, the manifest with reused / recomputed marks.
  const std::string html = slurp(dir / "report.html");
  for (const char* fragment :
       {"<title>physics trajectory (training states)</title>", "<title>window 0: x_0 against the truth</title>",
        ">oracle analysis +-1 sigma</text>", "<title>emulator loss per epoch</title>",
        "<title>forecast error against lead</title>", ">lead time (model time units)</text>",
        "<title>emulator analyses against the oracle</title>", "posterior agreement", "min p-value above",
        "<a href=\"predictor_validation/report.html\">", "recomputed"}) {
    EXPECT_NE(html.find(fragment), std::string::npos) << fragment;
  }
  EXPECT_EQ(html.find("http"), std::string::npos);  // self-contained
  // The curves survive reuse: a second run reuses every step and draws the same pictures.
  const auto again = cycle::run_six_step(tiny("fallback"), 5, dir, log);
  EXPECT_EQ(again.steps_run(), std::vector<int>{});
  EXPECT_EQ(step(again, 3).figures, step(r, 3).figures);
  const std::string html2 = slurp(dir / "report.html");
  EXPECT_NE(html2.find("<title>emulator loss per epoch</title>"), std::string::npos);
  EXPECT_NE(html2.find("reused"), std::string::npos);
  std::filesystem::remove_all(dir);
}

// A manifest written before steps kept their figures: the reused steps draw a sentence in their place.
TEST(SixStep, AManifestWithoutFiguresDrawsASentenceInstead) {
  const auto dir = fresh_dir("varflow_six_step_no_figures");
  std::ostringstream log;
  cycle::run_six_step(tiny("stop"), 5, dir, log);
  EXPECT_NE(slurp(dir / "report.html").find("<title>emulator loss per epoch</title>"), std::string::npos);
  const std::string manifest = std::regex_replace(slurp(dir / "manifest.json"),
                                                  std::regex(R"(,\s*"figures": \{[^{}]*\})"), "");
  ASSERT_EQ(manifest.find("figures"), std::string::npos);
  { std::ofstream(dir / "manifest.json") << manifest; }
  const auto again = cycle::run_six_step(tiny("stop"), 5, dir, log);
  EXPECT_EQ(again.steps_run(), std::vector<int>{}) << log.str();
  const std::string html = slurp(dir / "report.html");
  EXPECT_EQ(html.find("<title>emulator loss per epoch</title>"), std::string::npos);
  EXPECT_NE(html.find("No emulator curves were recorded"), std::string::npos);
  EXPECT_NE(html.find("<title>physics trajectory (training states)</title>"), std::string::npos);  // from physics.nc
  std::filesystem::remove_all(dir);
}

// An oracle.nc of format 1 (covariances flattened column-major in a covariance_entry dimension) is
// still read: rewritten in that layout, it is reused by the next run (same content checksum).
TEST(SixStep, ReadsAnOracleFileOfFormatOne) {
  const auto dir = fresh_dir("varflow_six_step_oracle_v1");
  std::ostringstream log;
  const auto first = cycle::run_six_step(tiny("stop"), 5, dir, log);
  const auto file = dir / "oracle.nc";
  {
    const NetcdfReader in(file);
    EXPECT_EQ(in.require_int("format_version"), 2);
    std::vector<Index> shape;
    const std::vector<double> cov = in.read_array("covariance", &shape);
    ASSERT_EQ(shape.size(), 3u);
    const Index count = shape[0], n = shape[1];
    EXPECT_EQ(shape[2], n);
    Matrix flat(n * n, count);  // window j's matrix column-major in column j
    for (Index j = 0; j < count; ++j)
      for (Index r = 0; r < n; ++r)
        for (Index c = 0; c < n; ++c) flat(c * n + r, j) = cov[static_cast<std::size_t>((j * n + r) * n + c)];
    const Matrix truth = in.read_matrix("truth"), background = in.read_matrix("background"),
                 observations = in.read_matrix("observations"), analysis = in.read_matrix("analysis");
    const std::vector<long long> converged = in.read_int("converged");
    NetcdfWriter out(dir / "oracle_v1.nc");
    out.attribute("varflow_file_type", std::string("varflow_six_step_oracle"));
    out.attribute("format_version", 1LL);
    for (const char* a : {"steps", "obs_every", "obs_stride", "step_multiple", "resolved"}) {
      out.attribute(a, in.require_int(a));
    }
    for (const char* a : {"background_sd", "obs_sd", "fast_background_sd", "solve_seconds", "mean_rmse"}) {
      out.attribute(a, in.require_double(a));
    }
    out.attribute("checksum", in.require_string("checksum"));
    out.add_dimension("state", n);
    out.add_dimension("window", count);
    out.add_dimension("observation", observations.rows());
    out.add_dimension("covariance_entry", n * n);
    out.write("truth", "window", "state", truth, "truth");
    out.write("background", "window", "state", background, "background");
    out.write("observations", "window", "observation", observations, "observations");
    out.write("analysis", "window", "state", analysis, "analysis");
    out.write("covariance", "window", "covariance_entry", flat, "covariance, column-major");
    out.write_int("converged", "window", converged, "converged");
    out.commit();
  }
  std::filesystem::rename(dir / "oracle_v1.nc", file);
  const auto again = cycle::run_six_step(tiny("stop"), 5, dir, log);
  EXPECT_EQ(again.steps_run(), std::vector<int>{}) << log.str();
  EXPECT_EQ(step(again, 2).checksum, step(first, 2).checksum);
  std::filesystem::remove_all(dir);
}

// The cycle on two-scale Lorenz-96 (tiny): the oracle controls slow and fast variables, the emulator
// (a closure of the 8 slow variables at 5 physics steps) is gated against the slow variables, and
// with `evaluate` step 4 measures it although step 3 refused the under-trained network; step 5 has
// no amortized problem for this physics and says so.
TEST(SixStep, RunsTheTwoScaleModelThroughStepFour) {
  const auto dir = fresh_dir("varflow_six_step_two_scale");
  std::ostringstream log;
  const auto c = tiny("evaluate", {{"model.n", ""}, {"model.name", "lorenz96_two_scale"}, {"model.k", "8"}, {"model.j", "4"},
                                   {"emulator.step_multiple", "5"}, {"emulator.stride", "5"},
                                   {"emulator.radius", "2"}, {"emulator.held_out", "10"}});
  const auto r = cycle::run_six_step(c, 5, dir, log);
  std::printf("%s", r.table().c_str());
  EXPECT_EQ(step(r, 2).status, cycle::StepStatus::kPassed) << step(r, 2).gate;
  EXPECT_NE(step(r, 2).detail.find("x 5 physics steps"), std::string::npos) << step(r, 2).detail;
  EXPECT_EQ(step(r, 3).status, cycle::StepStatus::kFailed) << step(r, 3).gate;
  EXPECT_NE(step(r, 3).gate.find("vs truncated"), std::string::npos) << step(r, 3).gate;
  const auto& s4 = step(r, 4);
  EXPECT_NE(s4.gate.find("evaluated, not promoted (step 3 not promoted)"), std::string::npos) << s4.gate;
  EXPECT_NE(s4.gate.find("speed-up"), std::string::npos) << s4.gate;
  EXPECT_NE(s4.gate.find("20 steps of 40 variables; model"), std::string::npos) << s4.gate;
  EXPECT_NE(s4.gate.find("4 steps of 8)"), std::string::npos) << s4.gate;
  EXPECT_EQ(step(r, 5).status, cycle::StepStatus::kSkipped);
  EXPECT_NE(step(r, 5).gate.find("stopped: step 3 not promoted"), std::string::npos) << step(r, 5).gate;
  EXPECT_FALSE(r.all_gates_passed());
  // A re-run computes nothing.
  std::ostringstream again;
  EXPECT_TRUE(cycle::run_six_step(c, 5, dir, again).steps_run().empty()) << again.str();
  std::filesystem::remove_all(dir);
}

// Step 6. Each case changes one thing against the first run and counts the steps computed.
TEST(SixStep, ReRunsExactlyTheStepsDownstreamOfAChange) {
  const auto dir = fresh_dir("varflow_six_step_rerun");
  std::ostringstream log;
  const auto first = cycle::run_six_step(tiny("fallback"), 5, dir, log);
  EXPECT_EQ(first.steps_run(), (std::vector<int>{1, 2, 3, 4, 5}));

  const auto again = cycle::run_six_step(tiny("fallback"), 5, dir, log);
  EXPECT_EQ(again.steps_run(), std::vector<int>{}) << log.str();
  for (int s = 1; s <= 5; ++s) {
    EXPECT_EQ(step(again, s).status, step(first, s).status) << "step " << s;
    EXPECT_EQ(step(again, s).gate, step(first, s).gate) << "step " << s;
    EXPECT_TRUE(step(again, s).reused);
  }

  // A new observation network re-validates steps 2, 4 and 5.
  const auto obs = cycle::run_six_step(tiny("fallback", {{"observations.error_variance", "0.25"}}), 5, dir, log);
  EXPECT_EQ(obs.steps_run(), (std::vector<int>{2, 4, 5})) << log.str();
  EXPECT_NE(step(obs, 2).checksum, step(first, 2).checksum);

  // A new emulator: steps 3, 4 and 5 (against the manifest of the previous run, error variance 0.25).
  const auto emu = cycle::run_six_step(tiny("fallback", {{"observations.error_variance", "0.25"}, {"emulator.hidden", "5"}}), 5, dir, log);
  EXPECT_EQ(emu.steps_run(), (std::vector<int>{3, 4, 5})) << log.str();

  // New predictor settings: step 5 alone.
  auto predictor = tiny("fallback", {{"observations.error_variance", "0.25"}, {"emulator.hidden", "5"}});
  predictor.predictor["training.epochs"] = "2";
  const auto pred = cycle::run_six_step(predictor, 5, dir, log);
  EXPECT_EQ(pred.steps_run(), (std::vector<int>{5})) << log.str();

  // A changed physics or seed invalidates everything.
  const auto physics = cycle::run_six_step(tiny("fallback", {{"observations.error_variance", "0.25"}, {"emulator.hidden", "5"}, {"model.forcing", "8.5"}}), 5, dir, log);
  EXPECT_EQ(physics.steps_run(), (std::vector<int>{1, 2, 3, 4, 5}));
  const auto seed = cycle::run_six_step(tiny("fallback", {{"observations.error_variance", "0.25"}, {"emulator.hidden", "5"}, {"model.forcing", "8.5"}}), 6, dir, log);
  EXPECT_EQ(seed.steps_run(), (std::vector<int>{1, 2, 3, 4, 5}));

  // --fresh ignores the manifest.
  cycle::SixStepRunOptions fresh;
  fresh.fresh = true;
  const auto forced =
      cycle::run_six_step(tiny("fallback", {{"observations.error_variance", "0.25"}, {"emulator.hidden", "5"}, {"model.forcing", "8.5"}}), 6, dir, log, fresh);
  EXPECT_EQ(forced.steps_run(), (std::vector<int>{1, 2, 3, 4, 5}));
  std::filesystem::remove_all(dir);
}

// Each step is recorded in the manifest as soon as it finishes: a run stopped after step 2 (as a
// kill would stop it) leaves a manifest of steps 1 and 2 (complete: false), and the next run
// recomputes only steps 3-5, giving what an uninterrupted run gives.
TEST(SixStep, AStoppedRunKeepsItsFinishedStepsAndTheReRunComputesTheRest) {
  const auto dir = fresh_dir("varflow_six_step_stopped");
  std::ostringstream log;
  cycle::SixStepRunOptions stop;
  stop.stop_after_step = 2;
  EXPECT_THROW(cycle::run_six_step(tiny("fallback"), 9, dir, log, stop), Error);
  const std::string partial = slurp(dir / "manifest.json");
  EXPECT_NE(partial.find("\"complete\": false"), std::string::npos) << partial;
  EXPECT_NE(partial.find("\"all_gates_passed\": false"), std::string::npos) << partial;
  EXPECT_NE(partial.find("\"step\": 2"), std::string::npos);
  EXPECT_EQ(partial.find("\"step\": 3"), std::string::npos);
  std::ostringstream log2;
  const auto resumed = cycle::run_six_step(tiny("fallback"), 9, dir, log2);
  EXPECT_EQ(resumed.steps_run(), (std::vector<int>{3, 4, 5})) << log2.str();
  EXPECT_NE(slurp(dir / "manifest.json").find("\"complete\": true"), std::string::npos);
  const auto whole_dir = fresh_dir("varflow_six_step_whole");
  const auto whole = cycle::run_six_step(tiny("fallback"), 9, whole_dir, log);
  for (int s = 1; s <= 5; ++s) {
    EXPECT_EQ(step(resumed, s).checksum, step(whole, s).checksum) << "step " << s;
    EXPECT_EQ(step(resumed, s).status, step(whole, s).status) << "step " << s;
  }
  // Stopped after step 4: the re-run computes step 5 alone.
  stop.stop_after_step = 4;
  stop.fresh = true;
  EXPECT_THROW(cycle::run_six_step(tiny("fallback"), 9, dir, log, stop), Error);
  EXPECT_EQ(cycle::run_six_step(tiny("fallback"), 9, dir, log2).steps_run(), std::vector<int>{5}) << log2.str();
  std::filesystem::remove_all(dir);
  std::filesystem::remove_all(whole_dir);
}

// A damaged artifact is not trusted: the step runs again. Recomputed with the same inputs and
// stream it gives the same output, so the steps downstream stay valid and are reused.
TEST(SixStep, RecomputesADamagedArtifactAndKeepsWhatDependsOnlyOnItsContent) {
  const auto dir = fresh_dir("varflow_six_step_damaged");
  std::ostringstream log;
  const auto first = cycle::run_six_step(tiny("fallback"), 7, dir, log);
  {
    // Change one weight in place, found by its stored bytes (raw little-endian doubles).
    const Vector w = emulator::StencilEmulator::load(dir / "emulator.nc")->parameters().values();
    Index largest = 0;  // a weight whose bytes occur nowhere else (not a zero bias)
    w.cwiseAbs().maxCoeff(&largest);
    const std::string weight(reinterpret_cast<const char*>(w.data() + largest), sizeof(double));
    const std::string bytes = slurp(dir / "emulator.nc");
    const auto at = bytes.find(weight);
    ASSERT_NE(at, std::string::npos);
    std::fstream f(dir / "emulator.nc", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(at + 3));
    f.put(static_cast<char>(bytes[at + 3] ^ 0x5a));
  }
  std::ostringstream log2;
  const auto second = cycle::run_six_step(tiny("fallback"), 7, dir, log2);
  EXPECT_EQ(second.steps_run(), std::vector<int>{3}) << log2.str();
  EXPECT_EQ(step(second, 3).checksum, step(first, 3).checksum);
  std::filesystem::remove(dir / "oracle.nc");
  const auto third = cycle::run_six_step(tiny("fallback"), 7, dir, log2);
  EXPECT_EQ(third.steps_run(), std::vector<int>{2}) << log2.str();
  // An unreadable manifest: every step runs, and the log says why.
  { std::ofstream(dir / "manifest.json") << "{ not json"; }
  std::ostringstream log3;
  const auto fourth = cycle::run_six_step(tiny("fallback"), 7, dir, log3);
  EXPECT_EQ(fourth.steps_run(), (std::vector<int>{1, 2, 3, 4, 5}));
  EXPECT_NE(log3.str().find("cannot be read"), std::string::npos) << log3.str();
  std::filesystem::remove_all(dir);
}

// The planted fault of the cycle: an emulator file whose stencil weights carry 20% multiplicative
// noise (a valid file, checksum and all) is refused at step 3 and nothing downstream uses it; the
// good emulator given back is promoted again. (A 20-variable emulator that passes its gate trains in
// a few seconds.)
TEST(SixStep, RefusesAnEmulatorFileWithCorruptedWeights) {
  const auto dir = fresh_dir("varflow_six_step_planted");
  std::filesystem::create_directories(dir);
  const std::map<std::string, std::string> trained = {
      {"emulator.held_out", "40"}, {"oracle.windows", "3"}, {"emulator.train_pairs", "3000"},
      {"emulator.epochs", "100"}, {"emulator.hidden", "16"}};
  std::ostringstream log;
  const auto first = cycle::run_six_step(tiny("stop", trained), 5, dir / "run", log);
  ASSERT_EQ(step(first, 3).status, cycle::StepStatus::kPassed) << step(first, 3).gate;
  ASSERT_EQ(step(first, 4).status, cycle::StepStatus::kPassed) << step(first, 4).gate;
  std::filesystem::copy_file(dir / "run" / "emulator.nc", dir / "good.nc");
  {
    auto e = emulator::StencilEmulator::load(dir / "good.nc");
    Rng rng(99);
    const auto& block = e->parameters().blocks().front();
    auto values = e->parameters().values();
    for (Index i = 0; i < block.size(); ++i) values[block.offset + i] *= 1.0 + 0.2 * rng.normal();
    e->save(dir / "planted.nc");
  }
  auto with_file = [&](const std::string& file) {
    auto keys = trained;
    keys["emulator.file"] = (dir / file).string();
    return tiny("stop", keys);
  };
  const auto planted = cycle::run_six_step(with_file("planted.nc"), 5, dir / "run", log);
  EXPECT_EQ(step(planted, 3).status, cycle::StepStatus::kFailed) << step(planted, 3).gate;
  EXPECT_EQ(step(planted, 4).status, cycle::StepStatus::kSkipped);
  EXPECT_NE(step(planted, 4).gate.find("stopped: step 3 not promoted"), std::string::npos);
  EXPECT_EQ(planted.steps_run(), (std::vector<int>{3, 4, 5}));
  EXPECT_FALSE(planted.all_gates_passed());

  const auto good = cycle::run_six_step(with_file("good.nc"), 5, dir / "run", log);
  EXPECT_EQ(step(good, 3).status, cycle::StepStatus::kPassed) << step(good, 3).gate;
  EXPECT_EQ(step(good, 3).checksum, step(first, 3).checksum);
  EXPECT_EQ(step(good, 4).status, cycle::StepStatus::kPassed);
  EXPECT_EQ(good.steps_run(), (std::vector<int>{3, 4, 5}));

  // A file for another grid is a user error naming the key.
  auto other = with_file("good.nc");
  other.model.parameters["n"] = 24;
  const std::string message = test::message_of([&] { cycle::run_six_step(other, 5, dir / "other", log); });
  EXPECT_NE(message.find("emulator.file"), std::string::npos) << message;
  EXPECT_NE(message.find("n = 20"), std::string::npos) << message;
  std::filesystem::remove_all(dir);
}

TEST(SixStep, ConfigErrorsNameTheKey) {
  try {
    cycle::SixStepConfig::from_yaml("model: {n: 20}\nemulator: {epochz: 3}\n", "bad");
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("epochz"), std::string::npos) << e.what();
  }
  EXPECT_NE(test::message_of([] { cycle::SixStepConfig::from_yaml("on_gate_failure: retry\n", "bad"); })
                .find("stop, fallback, evaluate"),
            std::string::npos);
  try {
    cycle::SixStepConfig::from_yaml("cycling: {window_steps: 4}\nobservations: {every_steps: 5}\n", "bad");
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("observations.every_steps = 5"), std::string::npos) << e.what();
  }
  EXPECT_THROW(cycle::SixStepConfig::from_yaml("emulator: {held_out: 5}\noracle: {windows: 6}\n", "bad"), InvalidArgument);
  // The flat keys of earlier versions name their new place (and the unit change).
  EXPECT_EQ(test::message_of([] { cycle::SixStepConfig::from_yaml("obs_noise: 0.5\n", "old"); }),
            "config: key 'obs_noise' was renamed: use observations.error_variance (a variance: the square of obs_noise)");
  EXPECT_EQ(test::message_of([] { cycle::SixStepConfig::from_yaml("n: 20\n", "old"); }),
            "config: key 'n' was renamed: use model.n");
  // The physics comes from the model registry, in the section `assimilate` uses; any registered
  // model is accepted when the emulator fits it.
  EXPECT_NE(test::message_of([] { cycle::SixStepConfig::from_yaml("model: {name: lorenz63}\n", "other"); })
                .find("emulator.radius = 6 gives a stencil of 13 points, more than the 3 resolved variables of lorenz63"),
            std::string::npos);
  const auto l63 = cycle::SixStepConfig::from_yaml("model: {name: lorenz63}\nemulator: {radius: 1}\n", "l63");
  EXPECT_FALSE(l63.has_predictor_problem());
  EXPECT_EQ(l63.state_size(), 3);
  // A larger emulator step needs a multi-scale physics (a closure of its slow variables).
  EXPECT_NE(test::message_of([] { cycle::SixStepConfig::from_yaml("emulator: {step_multiple: 4}\n", "one"); })
                .find("emulator.step_multiple = 4 needs a multi-scale model.name (lorenz96"),
            std::string::npos);
  const auto two = cycle::SixStepConfig::from_yaml(
      "model: {name: lorenz96_two_scale, k: 36, j: 10, forcing: 10}\nemulator: {step_multiple: 10, radius: 3}\n", "two");
  EXPECT_EQ(two.state_size(), 36 * 11);
  EXPECT_EQ(two.resolved_size(), 36);
  EXPECT_DOUBLE_EQ(two.emulator_dt(), 0.025);
  EXPECT_EQ(cycle::SixStepConfig::from_yaml(two.to_yaml(), "two again").to_yaml(), two.to_yaml());
  const auto printed = cycle::SixStepConfig().to_yaml();
  EXPECT_EQ(cycle::SixStepConfig::from_yaml(printed, "printed").to_yaml(), printed);
  // The predictor section: keys of `varflow train` configs, its validation keys, not the problem's.
  const auto c = cycle::SixStepConfig::from_yaml("predictor:\n  pairs: 500\n  training: {epochs: 4}\n"
                                                 "  validation: {events: 5, oracle_jacobian: gauss-newton}\n", "ok");
  const auto o = c.predictor_options();
  EXPECT_EQ(o.setup.pairs, 500);
  EXPECT_EQ(o.setup.training.epochs, 4);
  EXPECT_EQ(o.validation.events, 5);
  EXPECT_EQ(o.problem.model.parameter("n"), 40);
  EXPECT_EQ(o.problem.window, 4);
  EXPECT_EQ(o.problem.prior_sd, 1.0);
  EXPECT_EQ(cycle::SixStepConfig::from_yaml(c.to_yaml(), "round trip").to_yaml(), c.to_yaml());
  for (const auto& [yaml, fragment] : std::vector<std::pair<std::string, std::string>>{
           {"predictor: {training: {epochz: 4}}\n", "training.epochz"},
           {"predictor: {validation: {evnts: 4}}\n", "predictor.validation.evnts"},
           {"predictor: {validation: {events: many}}\n", "predictor.validation.events = 'many'"},
           {"predictor: {model: {n: 8}}\n", "predictor.model.n cannot be set"},
           {"predictor: {lorenz96: {size: 8}}\n", "predictor.lorenz96.size cannot be set"},
           {"predictor: {pairs: 3}\n", "pairs = 3"}}) {
    const std::string m = test::message_of([&] { cycle::SixStepConfig::from_yaml(yaml, "bad"); });
    EXPECT_NE(m.find(fragment), std::string::npos) << yaml << " -> " << m;
  }
}

}  // namespace
}  // namespace varflow
