#include "varflow/experiment/experiment_io.h"

#include <gtest/gtest.h>
#include <netcdf.h>
#include <unistd.h>

#include <filesystem>

#include "varflow/core/error.h"
#include "varflow/io/netcdf_file.h"

namespace varflow {
namespace {

namespace fs = std::filesystem;

struct ExperimentIoTest : ::testing::Test {
  fs::path dir = fs::temp_directory_path() / ("varflow_experiment_io_" + std::to_string(::getpid()));
  ExperimentConfig config = parse_experiment_config("cycling: {cycles: 6, burn_in: 2}\nincremental: {posterior_lanczos_vectors: 0}\n", "t");
  void SetUp() override { fs::create_directories(dir); }
  void TearDown() override { fs::remove_all(dir); }
};

TEST_F(ExperimentIoTest, TwinDataRoundTripGivesTheSameRun) {
  const TwinData d = simulate_twin_data(config.experiment);
  write_twin_data(dir / "t.nc", d, config);
  const Index total = config.experiment.cycles * config.experiment.window_steps;
  const TwinData back = read_twin_data(dir / "t.nc", 40, total, NonFiniteObservations::kReject);
  EXPECT_EQ(back.obs_steps, d.obs_steps);
  EXPECT_EQ(back.observed_variables, d.observed_variables);
  EXPECT_EQ(back.obs_values, d.obs_values);
  EXPECT_EQ(back.truth.back(), d.truth.back());
  EXPECT_EQ(back.initial_background, d.initial_background);
  const auto a = run_twin_experiment(config.experiment, d), b = run_twin_experiment(config.experiment, back);
  EXPECT_EQ(a.mean_analysis_rmse, b.mean_analysis_rmse);

  write_analysis(dir / "a.nc", a, config);
  const NetcdfReader r(dir / "a.nc");
  EXPECT_EQ(r.read_vector("rmse_analysis", 6).size(), 6);
  EXPECT_DOUBLE_EQ(r.double_attribute("rmse_analysis_mean").value(), a.mean_analysis_rmse);
  EXPECT_DOUBLE_EQ(r.double_attribute("spread_mean").value(), a.mean_spread);
  EXPECT_EQ(r.string_attribute("method").value(), "incremental_4dvar");
  EXPECT_EQ(r.string_attribute("config_hash").value(), config_hash(config.text));
  EXPECT_EQ(read_background(dir / "a.nc", 40), a.final_analysis);
  EXPECT_THROW(read_background(dir / "a.nc", 41), InvalidArgument);
}

// CF coordinates: time in model time units (step x dt), the state index, the observed variable of
// each column, the cycle number; the converged flag says what its values mean.
TEST_F(ExperimentIoTest, FilesHaveCfCoordinatesAndFlags) {
  const TwinData d = simulate_twin_data(config.experiment);
  write_twin_data(dir / "t.nc", d, config);
  const NetcdfReader t(dir / "t.nc");
  const double dt = config.model.parameter("dt");
  const Vector time = t.read_vector("time");
  ASSERT_EQ(time.size(), static_cast<Index>(d.truth.size()));
  EXPECT_DOUBLE_EQ(time[3], 3 * dt);
  const Vector obs_time = t.read_vector("obs_time", static_cast<Index>(d.obs_steps.size()));
  EXPECT_DOUBLE_EQ(obs_time[1], static_cast<double>(d.obs_steps[1]) * dt);
  EXPECT_EQ(t.read_int("state").size(), 40u);
  EXPECT_EQ(t.read_int("state")[39], 39);
  EXPECT_EQ(t.read_int("obs"), t.read_int("obs_index"));
  EXPECT_EQ(t.string_attribute("Conventions").value_or(""), "CF-1.10");

  write_analysis(dir / "a.nc", run_twin_experiment(config.experiment, d), config);
  const NetcdfReader a(dir / "a.nc");
  EXPECT_EQ(a.read_int("cycle"), (std::vector<long long>{0, 1, 2, 3, 4, 5}));
  int ncid = 0, varid = 0;
  ASSERT_EQ(nc_open((dir / "a.nc").c_str(), NC_NOWRITE, &ncid), NC_NOERR);
  ASSERT_EQ(nc_inq_varid(ncid, "converged", &varid), NC_NOERR);
  long long flags[2] = {-1, -1};
  EXPECT_EQ(nc_get_att_longlong(ncid, varid, "flag_values", flags), NC_NOERR);
  EXPECT_EQ(flags[0], 0);
  EXPECT_EQ(flags[1], 1);
  char meanings[64] = {};
  EXPECT_EQ(nc_get_att_text(ncid, varid, "flag_meanings", meanings), NC_NOERR);
  EXPECT_STREQ(meanings, "not_converged converged");
  nc_close(ncid);
}

TEST_F(ExperimentIoTest, NonFiniteObservationsAreRejectedOrMaskedAsConfigured) {
  TwinData d = simulate_twin_data(config.experiment);
  d.obs_mask(5, 3) = false;  // written as NaN
  write_twin_data(dir / "t.nc", d, config);
  const Index total = config.experiment.cycles * config.experiment.window_steps;
  try {
    read_twin_data(dir / "t.nc", 40, total, NonFiniteObservations::kReject);
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("obs_time 3 (step 12), obs 5 = nan is not finite"), std::string::npos)
        << e.what();
  }
  const TwinData masked = read_twin_data(dir / "t.nc", 40, total, NonFiniteObservations::kMask);
  EXPECT_FALSE(masked.obs_mask(5, 3));
  EXPECT_EQ(masked.obs_mask.count(), masked.obs_mask.size() - 1);
  EXPECT_TRUE(std::isfinite(run_twin_experiment(config.experiment, masked).mean_analysis_rmse));
}

TEST_F(ExperimentIoTest, MisSizedFilesAreNamed) {
  const TwinData d = simulate_twin_data(config.experiment);
  write_twin_data(dir / "t.nc", d, config);
  try {
    read_twin_data(dir / "t.nc", 36, 48, NonFiniteObservations::kReject);
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("variable 'truth'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(read_twin_data(dir / "absent.nc", 40, 48, NonFiniteObservations::kReject), InvalidArgument);
}

// A truth/obs file must say what it is: without varflow_file_type (or format_version) it is refused,
// naming the file and the attribute (design/formats.md).
TEST_F(ExperimentIoTest, FilesWithoutTheirTypeAreRefused) {
  const TwinData d = simulate_twin_data(config.experiment);
  for (const char* attribute : {"varflow_file_type", "format_version"}) {
    const fs::path file = dir / (std::string("untyped_") + attribute + ".nc");
    write_twin_data(file, d, config);
    int id = 0;
    ASSERT_EQ(nc_open(file.c_str(), NC_WRITE, &id), NC_NOERR);
    ASSERT_EQ(nc_redef(id), NC_NOERR);
    ASSERT_EQ(nc_del_att(id, NC_GLOBAL, attribute), NC_NOERR);
    ASSERT_EQ(nc_close(id), NC_NOERR);
    try {
      read_twin_data(file, 40, 48, NonFiniteObservations::kReject);
      FAIL() << "read " << file;
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find(std::string(attribute) + " is missing"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(file.string()), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace varflow
