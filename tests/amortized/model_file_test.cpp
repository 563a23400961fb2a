// Model files: a saved model loads back to the same function; a file of another format version and
// a corrupted file (one weight changed) are refused with a clear message.
#include <gtest/gtest.h>
#include <netcdf>

#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "varflow/amortized/amortized_posterior.h"
#include "varflow/amortized/files.h"
#include "varflow/core/error.h"
#include "varflow/io/netcdf_file.h"
#include "varflow/testing/conformance.h"

namespace varflow::amortized {
namespace {

namespace fs = std::filesystem;

struct ModelFileTest : ::testing::Test {
  fs::path dir = fs::temp_directory_path() / ("varflow_model_file_test_" + std::to_string(::getpid()));
  void SetUp() override { fs::create_directories(dir); }
  void TearDown() override { fs::remove_all(dir); }

  // A small model trained briefly on the linear-Gaussian problem.
  static AmortizedPosterior trained(HeadType head, Rng& rng) {
    const LinearGaussian problem(3);
    AmortizedSetup s = default_setup("linear-gaussian", head);
    s.network.mean_samples = 64;
    s.network.score.steps = 10;
    s.training.epochs = 2;
    AmortizedPosterior q(s.network, problem.shape(), rng, problem.name());
    q.train(problem, 600, s.training, rng);
    return q;
  }

  static void expect_refused(const fs::path& file, const std::string& fragment) {
    try {
      AmortizedPosterior::load(file);
      FAIL() << "loaded " << file;
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(file.string()), std::string::npos) << e.what();
    }
  }
};

TEST_F(ModelFileTest, RoundTripGivesTheSameModel) {
  Rng rng = testing::seeded_rng(1101);
  for (HeadType head : {HeadType::kGaussian, HeadType::kFlow, HeadType::kScore}) {
    AmortizedPosterior q = trained(head, rng);
    const fs::path file = dir / ("model_" + to_string(head) + ".nc");
    q.save(file);
    AmortizedPosterior r = AmortizedPosterior::load(file);
    EXPECT_EQ(r.parameters().values(), q.parameters().values()) << to_string(head);
    EXPECT_EQ(r.normalization().x_std, q.normalization().x_std);
    EXPECT_EQ(r.normalization().y_mean, q.normalization().y_mean);
    EXPECT_EQ(config_text(r.config()), config_text(q.config()));
    EXPECT_EQ(r.shape(), q.shape());
    EXPECT_EQ(r.problem(), "linear-gaussian");
    EXPECT_TRUE(r.trained());
    EXPECT_EQ(r.training_summary().train_loss, q.training_summary().train_loss);
    EXPECT_EQ(r.training_summary().validation_loss, q.training_summary().validation_loss);
    EXPECT_EQ(r.training_summary().best_epoch, q.training_summary().best_epoch);
    EXPECT_EQ(r.training_summary().weights_epoch, q.training_summary().weights_epoch);
    const Vector y = Vector::Constant(3, 0.2);
    EXPECT_EQ(r.mean(y), q.mean(y)) << to_string(head);
    Rng a(5), b(5);
    EXPECT_EQ(r.sample(y, 50, a), q.sample(y, 50, b)) << to_string(head);
    if (head != HeadType::kScore) {
      EXPECT_EQ(r.log_prob(Matrix::Ones(3, 2), y), q.log_prob(Matrix::Ones(3, 2), y));
    }
  }
}

TEST_F(ModelFileTest, AnotherFormatVersionIsRefused) {
  Rng rng = testing::seeded_rng(1102);
  const fs::path file = dir / "model.nc";
  trained(HeadType::kGaussian, rng).save(file);
  {
    netCDF::NcFile f(file.string(), netCDF::NcFile::write);
    f.putAtt("format_version", netCDF::ncInt, 2);
  }
  expect_refused(file, "format_version = 2 is not supported");
}

TEST_F(ModelFileTest, AChangedWeightIsDetected) {
  Rng rng = testing::seeded_rng(1103);
  const fs::path file = dir / "model.nc";
  trained(HeadType::kFlow, rng).save(file);
  EXPECT_NO_THROW(AmortizedPosterior::load(file));
  {
    netCDF::NcFile f(file.string(), netCDF::NcFile::write);
    netCDF::NcVar w = f.getVar("weights");
    const std::vector<std::size_t> at{17};
    double v = 0.0;
    w.getVar(at, &v);
    v = std::nextafter(v, 1e300);  // the smallest possible change
    w.putVar(at, v);
  }
  expect_refused(file, "checksum mismatch");
}

// linear_gain = oracle: the stored gain is inside the checksum.
TEST_F(ModelFileTest, AChangedOracleGainIsDetected) {
  Rng rng = testing::seeded_rng(1108);
  const LinearGaussian problem(3);
  AmortizedSetup s = default_setup("linear-gaussian", HeadType::kGaussian);
  s.network.linear_gain = LinearGain::kOracle;
  s.training.epochs = 1;
  AmortizedPosterior q(s.network, problem.shape(), rng, problem.name());
  q.train(problem, 300, s.training, rng);
  const fs::path file = dir / "gain.nc";
  q.save(file);
  EXPECT_EQ(AmortizedPosterior::load(file).normalization().gain, q.normalization().gain);
  {
    netCDF::NcFile f(file.string(), netCDF::NcFile::write);
    netCDF::NcVar g = f.getVar("oracle_gain");
    const std::vector<std::size_t> at{1, 1};
    double v = 0.0;
    g.getVar(at, &v);
    v = std::nextafter(v, 1e300);
    g.putVar(at, v);
  }
  expect_refused(file, "checksum mismatch");
}

// The problem definition is stored, read back, and inside the checksum: an edited value is refused.
TEST_F(ModelFileTest, TheProblemDefinitionRoundTripsInsideTheChecksum) {
  Rng rng = testing::seeded_rng(1104);
  const fs::path file = dir / "model.nc";
  AmortizedPosterior q = trained(HeadType::kGaussian, rng);
  EXPECT_TRUE(q.problem_definition().empty()) << "linear-gaussian is defined by its name";
  WindowProblemOptions o;
  o.obs_noise = 0.5;
  q.set_problem_definition(problem_entries(o));
  q.save(file);
  const AmortizedPosterior back = AmortizedPosterior::load(file);
  ASSERT_EQ(back.problem_definition(), problem_entries(o));
  EXPECT_EQ(back.checksum(), q.checksum());
  {
    netCDF::NcFile f(file.string(), netCDF::NcFile::write);
    std::string text;
    f.getAtt("problem_definition").getValues(text);
    const auto at = text.find("observations.error_variance: 0.25");
    ASSERT_NE(at, std::string::npos) << text;
    text.replace(at, std::string("observations.error_variance: 0.25").size(), "observations.error_variance: 0.49");
    f.putAtt("problem_definition", text);
  }
  expect_refused(file, "checksum mismatch");
}

// An unknown training status is refused naming the attribute and the allowed values (it was read as
// "completed").
TEST_F(ModelFileTest, AnUnknownTrainingStatusIsRefused) {
  Rng rng = testing::seeded_rng(1105);
  const fs::path file = dir / "model.nc";
  trained(HeadType::kGaussian, rng).save(file);
  {
    netCDF::NcFile f(file.string(), netCDF::NcFile::write);
    f.putAtt("training_status", "finished");
  }
  expect_refused(file, "training_status = 'finished' is not one of: completed, early_stopped, time_limit, non_finite_loss");
}

TEST_F(ModelFileTest, OtherFilesAreRefused) {
  const fs::path text = dir / "notes.nc";
  std::ofstream(text) << "not a netCDF file";
  expect_refused(text, "model file");
  const fs::path obs = dir / "y.nc";
  write_observation_file(obs, Vector::Ones(3));
  expect_refused(obs, "not a varflow amortized posterior");
  expect_refused(dir / "missing.nc", "no such file");
  Rng rng = testing::seeded_rng(1104);
  EXPECT_THROW(trained(HeadType::kGaussian, rng).save(dir / "no_such_dir" / "m.nc"), InvalidArgument);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator{}), 2);  // nothing half-written
}

TEST_F(ModelFileTest, ObservationAndSamplesFiles) {
  Vector y(4);
  y << 1.0, std::nan(""), -2.0, 0.5;
  const fs::path obs = dir / "y.nc";
  write_observation_file(obs, y);
  const Vector back = read_observation_file(obs);
  ASSERT_EQ(back.size(), 4);
  EXPECT_EQ(back[0], 1.0);
  EXPECT_TRUE(std::isnan(back[1]));
  Matrix draws(2, 3);
  draws << 1, 2, 3, 4, 5, 6;
  const fs::path out = dir / "s.nc";
  write_samples_file(out, draws, y, Vector::Constant(2, 0.5), SamplesFileInfo{"m.nc", "two-moons", "flow", 42});
  const SamplesFile s = read_samples_file(out);
  EXPECT_EQ(s.draws, draws);
  EXPECT_EQ(s.info.seed, 42u);
  EXPECT_EQ(s.info.head, "flow");
  EXPECT_TRUE(std::isnan(s.observation[1]));
  {
    netCDF::NcFile f(out.string(), netCDF::NcFile::read);
    EXPECT_EQ(f.getVar("samples").getDim(0).getName(), "sample");
    EXPECT_EQ(f.getVar("samples").getDim(1).getName(), "state");
    double v = 0.0;
    f.getVar("samples").getVar(std::vector<std::size_t>{2, 1}, &v);  // draw 2, component 1
    EXPECT_EQ(v, draws(1, 2));
  }
}

// --obs-file reads the observations(obs_time, obs) of a `varflow simulate` file time after time, and
// a file with neither observations nor observation is refused naming both.
TEST_F(ModelFileTest, ObservationFilesOfSimulateAndWithoutTheVariable) {
  const fs::path simulated = dir / "truth_obs.nc";
  {
    NetcdfWriter w(simulated);
    w.add_dimension("obs_time", 2);
    w.add_dimension("obs", 3);
    Matrix values(3, 2);  // one observation time per column
    values << 1, 4, 2, std::nan(""), 3, 6;
    w.write("observations", "obs_time", "obs", values, "observed values (NaN = missing)");
    w.commit();
  }
  const Vector y = read_observation_file(simulated);
  ASSERT_EQ(y.size(), 6);
  EXPECT_EQ(y[0], 1.0);
  EXPECT_EQ(y[2], 3.0);  // time 0 first
  EXPECT_EQ(y[3], 4.0);
  EXPECT_TRUE(std::isnan(y[4]));
  const fs::path other = dir / "other.nc";
  {
    NetcdfWriter w(other);
    w.add_dimension("obs", 2);
    w.write("y", "obs", Vector::Ones(2), "not the name");
    w.commit();
  }
  try {
    read_observation_file(other);
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("no variable 'observations' (or 'observation')"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("other.nc"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace varflow::amortized
