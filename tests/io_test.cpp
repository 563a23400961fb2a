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

#include <cmath>
#include <netcdf>

#include "varflow/io/netcdf_file.h"
#include "varflow/io/provenance.h"

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

// Every file carries CF provenance, and NaN-missing data say so with _FillValue / missing_value.
TEST_F(AtomicOutputTest, NetcdfFilesCarryCfProvenanceAndFillValues) {
  const fs::path target = dir / "cf.nc";
  {
    NetcdfWriter w(target);
    w.add_dimension("component", 3);
    w.write("complete", "component", Vector::LinSpaced(3, 0.0, 1.0), "no missing values");
    Vector gappy = Vector::LinSpaced(3, 0.0, 1.0);
    gappy[1] = std::nan("");
    w.write("gappy", "component", gappy, "one missing value");
    w.attribute("source", std::string("a test"));  // a writer's own value is kept
    w.commit();
  }
  const NetcdfReader r(target);
  EXPECT_EQ(r.string_attribute("Conventions").value_or(""), "CF-1.10");
  EXPECT_EQ(r.string_attribute("source").value_or(""), "a test");
  const std::string created = r.string_attribute("date_created").value_or("");
  EXPECT_EQ(created.size(), 20u) << created;  // 2026-12-02T04:53:35Z
  EXPECT_EQ(created.back(), 'Z') << created;
  EXPECT_NE(r.string_attribute("history").value_or("").find(created + " written by varflow"), std::string::npos);
  netCDF::NcFile f(target.string(), netCDF::NcFile::read);
  EXPECT_TRUE(f.getVar("complete").getAtts().count("_FillValue") == 0);
  const auto atts = f.getVar("gappy").getAtts();
  ASSERT_EQ(atts.count("_FillValue"), 1u);
  ASSERT_EQ(atts.count("missing_value"), 1u);
  double fill = 0.0;
  atts.find("_FillValue")->second.getValues(&fill);
  EXPECT_TRUE(std::isnan(fill));
  EXPECT_TRUE(std::isnan(r.read_vector("gappy", 3)[1]));
}

// commit() adds an index coordinate for every dimension without one (not for string lengths), the
// run's provenance, and the run's config as run_config when the writer's own `config` differs.
TEST_F(AtomicOutputTest, NetcdfCommitAddsIndexCoordinatesAndTheRunProvenance) {
  const char* argv[] = {"varflow", "simulate", "--out", "x.nc"};
  set_run_command_line(4, argv);
  set_run_config("model:\n  n: 3\n", 17);
  const fs::path target = dir / "coordinates.nc";
  {
    NetcdfWriter w(target);
    w.add_dimension("component", 3);
    w.add_dimension("sample", 2);
    w.add_dimension("name_length", 4);
    w.add_dimension("block", 1);
    w.write("x", "sample", "component", Matrix::Zero(3, 2), "zeros");
    w.write_int("component", "component", {10, 20, 30}, "the writer's own coordinate", "1");
    w.write_text("block_name", "block", "name_length", {"ab"}, "a name");
    w.attribute("config", std::string("architecture: small\n"));
    w.commit();
  }
  const NetcdfReader r(target);
  EXPECT_EQ(r.read_int("component"), (std::vector<long long>{10, 20, 30}));  // the writer's own kept
  EXPECT_EQ(r.read_int("sample"), (std::vector<long long>{0, 1}));
  EXPECT_EQ(r.read_int("block"), (std::vector<long long>{0}));
  EXPECT_FALSE(r.has_variable("name_length"));  // a string length is not a coordinate
  EXPECT_EQ(r.string_attribute("config").value_or(""), "architecture: small\n");
  EXPECT_EQ(r.string_attribute("run_config").value_or(""), "model:\n  n: 3\n");
  EXPECT_EQ(r.string_attribute("config_hash").value_or(""), provenance_config_hash("model:\n  n: 3\n"));
  EXPECT_EQ(r.unsigned_attribute("seed").value_or(0), 17u);
  EXPECT_NE(r.string_attribute("history").value_or("").find(": varflow simulate --out x.nc"), std::string::npos);
  netCDF::NcFile f(target.string(), netCDF::NcFile::read);
  std::string units;
  f.getVar("sample").getAtt("units").getValues(units);
  EXPECT_EQ(units, "1");
  clear_run_provenance();
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
