#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "varflow/core/error.h"
#include "varflow/io/atomic_file.h"

namespace varflow {
namespace {

namespace fs = std::filesystem;

struct AtomicOutputTest : ::testing::Test {
  fs::path dir = fs::temp_directory_path() / ("varflow_io_test_" + std::to_string(::getpid()));
  void SetUp() override { fs::create_directories(dir); }
  void TearDown() override { fs::remove_all(dir); }
};

TEST_F(AtomicOutputTest, CommitReplacesTargetAndFailureLeavesItUntouched) {
  const fs::path target = dir / "out.txt";
  std::ofstream(target) << "old";
  {
    AtomicOutput out(target);
    std::ofstream(out.temporary_path()) << "half-written";
    // no commit: as if the writer threw
  }
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator{}), 1);
  std::string content;
  std::ifstream(target) >> content;
  EXPECT_EQ(content, "old");
  {
    AtomicOutput out(target);
    std::ofstream(out.temporary_path()) << "new";
    out.commit();
  }
  std::ifstream(target) >> content;
  EXPECT_EQ(content, "new");
}

TEST_F(AtomicOutputTest, MissingDirectoryIsAClearError) {
  EXPECT_THROW(AtomicOutput{dir / "nope" / "x.nc"}, InvalidArgument);
  EXPECT_THROW(AtomicOutput{dir}, InvalidArgument);
}

}  // namespace
}  // namespace varflow
