// Reliability of outputs across processes and kills: the run lock (a second process is refused
// naming the holder; a dead holder's lock is taken over), files committed together (a kill -9 at a
// random point leaves both old or both new), temporaries of dead processes cleaned up, and the
// checks that keep damaged netCDF files away from the netCDF library (io/netcdf_guard.h).
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>

#include "varflow/core/error.h"
#include "varflow/core/limits.h"
#include "varflow/io/atomic_file.h"
#include "varflow/io/netcdf_file.h"
#include "varflow/io/netcdf_guard.h"
#include "varflow/io/run_lock.h"

namespace varflow {
namespace {

namespace fs = std::filesystem;

struct ReliabilityTest : ::testing::Test {
  fs::path dir = fs::temp_directory_path() / ("varflow_reliability_test_" + std::to_string(::getpid()));
  void SetUp() override {
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  void TearDown() override { fs::remove_all(dir); }
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> names_in(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

// A pid that certainly belongs to no process now: a child that has exited and been reaped.
pid_t dead_pid() {
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  int status = 0;
  ::waitpid(child, &status, 0);
  return child;
}

TEST_F(ReliabilityTest, ASecondProcessIsRefusedNamingTheHolderAndADeadHoldersLockIsTakenOver) {
  const fs::path output = dir / "analysis.nc";
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t holder = ::fork();
  ASSERT_GE(holder, 0);
  if (holder == 0) {
    ::close(ready[0]);
    try {
      const RunLock lock(output, RunLock::Kind::kFile);
      char one = '1';
      if (::write(ready[1], &one, 1) != 1) ::_exit(3);
      for (;;) ::pause();  // held until killed
    } catch (...) {
      ::_exit(4);
    }
  }
  ::close(ready[1]);
  char got = 0;
  ASSERT_EQ(::read(ready[0], &got, 1), 1);
  ::close(ready[0]);

  std::string message;
  try {
    const RunLock second(output, RunLock::Kind::kFile);
  } catch (const InvalidArgument& e) {
    message = e.what();
  }
  EXPECT_NE(message.find("analysis.nc is in use by another varflow run"), std::string::npos) << message;
  EXPECT_NE(message.find("pid " + std::to_string(holder) + " on host "), std::string::npos) << message;
  EXPECT_NE(message.find(" since 20"), std::string::npos) << message;  // the start time, UTC

  // The holder dies without releasing anything: the kernel drops the flock, the lock is taken over.
  ::kill(holder, SIGKILL);
  int status = 0;
  ::waitpid(holder, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));
  {
    const RunLock taken(output, RunLock::Kind::kFile);
    EXPECT_NE(slurp(taken.lock_file()).find("pid " + std::to_string(::getpid()) + " "), std::string::npos);
  }
  // Released on destruction: it can be taken again.
  EXPECT_NO_THROW(RunLock(output, RunLock::Kind::kFile));
  // A directory's lock lives inside it.
  EXPECT_EQ(RunLock::lock_file_of(dir, RunLock::Kind::kDirectory), dir / ".varflow.lock");
  EXPECT_THROW(RunLock(dir / "missing" / "x.nc", RunLock::Kind::kFile), InvalidArgument);
}

TEST_F(ReliabilityTest, TemporariesOfDeadProcessesAreRemovedAndLiveOnesKept) {
  const fs::path target = dir / "model.nc";
  const pid_t dead = dead_pid();
  const std::string stale = ".model.nc.tmp" + std::to_string(dead) + "_0";
  const std::string stale_journal = "..model.nc.commit.tmp" + std::to_string(dead) + "_3";
  const std::string live = ".model.nc.tmp" + std::to_string(::getppid()) + "_0";  // a live process
  const std::string other = ".other.nc.tmp" + std::to_string(dead) + "_0";      // another target's
  // A temporary of a temporary (a NetcdfWriter saving into `varflow train`'s model temporary), killed
  // before its rename: stale when its writer is dead, kept while it lives.
  const std::string nested = "." + stale + ".tmp" + std::to_string(dead) + "_2";
  const std::string live_nested = "." + live + ".tmp" + std::to_string(::getppid()) + "_1";
  for (const auto& name : {stale, stale_journal, live, other, nested, live_nested}) std::ofstream(dir / name) << "x";
  { AtomicOutput out(target); }
  std::vector<std::string> expected{live, other, live_nested};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(names_in(dir), expected);
}

TEST_F(ReliabilityTest, CommitFlushesAndReplacesTheTarget) {
  const fs::path target = dir / "a.txt";
  write_text_atomically(target, "one");
  write_text_atomically(target, "two");
  EXPECT_EQ(slurp(target), "two");
  EXPECT_EQ(names_in(dir), std::vector<std::string>{"a.txt"});
  EXPECT_THROW(sync_path(dir / "absent"), Error);
}

// A journal left by a writer killed between its two renames is rolled forward by the next
// AtomicOutput of the first target: the pair ends up new and new.
TEST_F(ReliabilityTest, AnInterruptedPairCommitIsCompleted) {
  const fs::path model = dir / "m.nc", csv = dir / "m.nc.loss.csv";
  std::ofstream(model) << "new";  // first rename done before the kill
  std::ofstream(csv) << "old";
  const pid_t dead = dead_pid();
  const std::string csv_temporary = ".m.nc.loss.csv.tmp" + std::to_string(dead) + "_1";
  std::ofstream(dir / csv_temporary) << "new";
  std::ofstream(dir / ".m.nc.commit") << "pid " << dead << "\n.m.nc.tmp" << dead << "_0\tm.nc\n"
                                      << csv_temporary << "\tm.nc.loss.csv\n";
  // The loss CSV's own cleanup keeps a temporary that a journal still needs.
  { AtomicOutput probe(csv); }
  EXPECT_TRUE(fs::exists(dir / csv_temporary));
  { AtomicOutput probe(model); }
  EXPECT_EQ(slurp(csv), "new");
  EXPECT_EQ(names_in(dir), (std::vector<std::string>{"m.nc", "m.nc.loss.csv"}));
}

// kill -9 at random points of a process that keeps committing a pair: after each kill (and the
// recovery done by the next AtomicOutput), the two files hold the same generation and no
// temporary or journal is left.
TEST_F(ReliabilityTest, PairsCommittedTogetherSurviveRandomKills) {
  const fs::path model = dir / "m.nc", csv = dir / "m.nc.loss.csv";
  std::mt19937 random(20261202);
  std::uniform_int_distribution<int> delay_us(0, 30000);
  int generations_seen = 0;
  for (int kill = 0; kill < 25; ++kill) {
    const pid_t writer = ::fork();
    ASSERT_GE(writer, 0);
    if (writer == 0) {
      for (int generation = 1;; ++generation) {
        AtomicOutput a(model), b(csv);
        const std::string text = std::to_string(kill) + ":" + std::to_string(generation);
        std::ofstream(a.temporary_path()) << text;
        std::ofstream(b.temporary_path()) << text;
        AtomicOutput::commit_together({&a, &b});
      }
    }
    std::this_thread::sleep_for(std::chrono::microseconds(delay_us(random)));
    ::kill(writer, SIGKILL);
    int status = 0;
    ::waitpid(writer, &status, 0);
    { AtomicOutput recover_model(model); }
    { AtomicOutput recover_csv(csv); }
    if (fs::exists(model) || fs::exists(csv)) {
      ASSERT_EQ(slurp(model), slurp(csv)) << "after kill " << kill;
      ++generations_seen;
    }
    for (const auto& name : names_in(dir)) {
      EXPECT_TRUE(name == "m.nc" || name == "m.nc.loss.csv") << "left behind: " << name;
    }
  }
  EXPECT_GT(generations_seen, 0);
}

// ---- damaged and hostile netCDF files (io/netcdf_guard.h) ------------------------------------------

void write_small_netcdf(const fs::path& file) {
  NetcdfWriter w(file);
  w.add_dimension("x", 5);
  w.write("v", "x", Vector::LinSpaced(5, 1.0, 5.0), "values");
  w.attribute("varflow_file_type", std::string("test"));
  w.commit();
}

void write_bytes(const fs::path& file, const std::string& bytes) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out << bytes;
}

TEST_F(ReliabilityTest, WrittenNetcdfFilesAreSealedAndADamagedOneIsRefusedBeforeTheLibrarySeesIt) {
  const fs::path file = dir / "sealed.nc";
  write_small_netcdf(file);
  const std::string bytes = slurp(file);
  ASSERT_GT(bytes.size(), kChecksumTrailerBytes);
  EXPECT_EQ(bytes.substr(bytes.size() - kChecksumTrailerBytes, 21), "varflow-sum1 fnv1a64=");
  EXPECT_EQ(verify_checksum_trailer(file, "sealed.nc"), ChecksumSeal::kIntact);
  EXPECT_EQ(NetcdfReader(file).read_vector("v", 5)[4], 5.0);

  // One byte changed anywhere in the content: refused, naming the file.
  std::string damaged = bytes;
  damaged[damaged.size() / 3] = static_cast<char>(damaged[damaged.size() / 3] ^ 0x10);
  write_bytes(dir / "damaged.nc", damaged);
  try {
    NetcdfReader r(dir / "damaged.nc", "obs file damaged.nc");
    FAIL() << "read a damaged file";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("obs file damaged.nc: the file is damaged"), std::string::npos) << e.what();
  }
  // Content cut short in front of an intact trailer: refused by the recorded size.
  write_bytes(dir / "short.nc", bytes.substr(0, 100) + bytes.substr(bytes.size() - kChecksumTrailerBytes));
  EXPECT_THROW(verify_checksum_trailer(dir / "short.nc", "short.nc"), InvalidArgument);
  // Without the trailer a file is unsealed, and read after the probe.
  write_bytes(dir / "unsealed.nc", bytes.substr(0, bytes.size() - kChecksumTrailerBytes));
  EXPECT_EQ(verify_checksum_trailer(dir / "unsealed.nc", "unsealed.nc"), ChecksumSeal::kAbsent);
  EXPECT_EQ(NetcdfReader(dir / "unsealed.nc").read_vector("v", 5)[0], 1.0);
  // Not netCDF at all: the probe passes (the library reports an error, no crash), the open fails.
  write_bytes(dir / "text.nc", "model:\n  n: 40\n");
  try {
    NetcdfReader r(dir / "text.nc");
    FAIL() << "read a text file as netCDF";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("is not a readable netCDF file"), std::string::npos) << e.what();
  }
}

TEST_F(ReliabilityTest, AProbeThatRunsOutOfTimeIsKilledAndTheFileRefused) {
  const fs::path file = dir / "unsealed.nc";
  write_small_netcdf(file);
  const std::string bytes = slurp(file);
  write_bytes(file, bytes.substr(0, bytes.size() - kChecksumTrailerBytes));
  ::setenv("VARFLOW_UNTRUSTED_READ_TIMEOUT", "1e-9", 1);
  EXPECT_EQ(untrusted_read_timeout_seconds(file), 1e-9);
  try {
    probe_netcdf_in_child(file, "model file unsealed.nc");
    ADD_FAILURE() << "a probe past its time limit passed";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("model file unsealed.nc: the netCDF library did not finish reading the file"),
              std::string::npos)
        << e.what();
  }
  ::unsetenv("VARFLOW_UNTRUSTED_READ_TIMEOUT");
  EXPECT_GE(untrusted_read_timeout_seconds(file), 30.0);
  EXPECT_NO_THROW(probe_netcdf_in_child(file, "model file unsealed.nc"));
}

TEST(LimitsTest, SizesAboveTheirLimitsAndPlansAboveTheMemoryAreRefusedNamingThem) {
  try {
    limits::check_at_most("config", "model.n", 1'000'000'000'000LL, limits::kMaxStateSize, "one state would take 8 TB");
    FAIL() << "no error";
  } catch (const InvalidArgument& e) {
    EXPECT_STREQ(e.what(), "config: model.n = 1000000000000 is above the limit 100000000 (one state would take 8 TB)");
  }
  EXPECT_NO_THROW(limits::check_at_most("config", "model.n", limits::kMaxStateSize, limits::kMaxStateSize));
  EXPECT_GE(limits::memory_limit_bytes(), 1024.0 * 1024.0 * 1024.0);
  EXPECT_NO_THROW(limits::check_memory("run", "the states", 1e6));
  EXPECT_THROW(limits::check_memory("run", "the states", 1e30), InvalidArgument);
  EXPECT_EQ(limits::bytes_text(8e12), "8 TB");
  EXPECT_EQ(limits::bytes_text(640.0), "640 bytes");
}

}  // namespace
}  // namespace varflow
