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

#include "varflow/io/netcdf_file.h"

namespace varflow {
namespace {

TEST_F(AtomicOutputTest, NetcdfRoundTripAndErrorsNameTheVariable) {
  const fs::path target = dir / "t.nc";
  Matrix m(3, 2);  // 2 items of 3 components
  m << 1, 4, 2, 5, 3, 6;
  {
    NetcdfWriter w(target);
    w.add_dimension("item", 2);
    w.add_dimension("component", 3);
    w.write("m", "item", "component", m, "test matrix", "m s-1");
    w.write("v", "component", Vector::LinSpaced(3, 0.0, 1.0), "test vector");
    w.write_int("k", "item", {7, 9}, "counts");
    w.attribute("method", std::string("strong"));
    w.attribute("final_cost", 1.5);
    EXPECT_FALSE(fs::exists(target));  // nothing before commit
    w.commit();
  }
  const NetcdfReader r(target);
  EXPECT_EQ(r.read_matrix("m", 2, 3), m);
  EXPECT_EQ(r.read_vector("v", 3), Vector::LinSpaced(3, 0.0, 1.0));
  EXPECT_EQ(r.read_int("k"), (std::vector<long long>{7, 9}));
  EXPECT_EQ(r.string_attribute("method").value(), "strong");
  EXPECT_DOUBLE_EQ(r.double_attribute("final_cost").value(), 1.5);
  EXPECT_FALSE(r.string_attribute("absent").has_value());
  try {
    r.read_vector("v", 4);
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("variable 'v'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(r.read_vector("nope"), InvalidArgument);
  EXPECT_THROW(NetcdfReader(dir / "missing.nc"), InvalidArgument);
  std::ofstream(dir / "bad.nc") << "not netcdf";
  EXPECT_THROW(NetcdfReader(dir / "bad.nc"), InvalidArgument);
}

TEST_F(AtomicOutputTest, AbandonedNetcdfWriterLeavesNoFile) {
  {
    NetcdfWriter w(dir / "abandoned.nc");
    w.add_dimension("x", 2);
  }
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator{}), 0);
}

}  // namespace
}  // namespace varflow
