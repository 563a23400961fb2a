// Pairs files (`varflow train --pairs FILE.nc`): a round trip, the mask and _FillValue conventions,
// and the errors that name the file, the dimension or the pair.
#include <gtest/gtest.h>

#include <netcdf>

#include <cmath>
#include <filesystem>
#include <string>
#include <unistd.h>

#include "../test_messages.h"
#include "varflow/amortized/pairs_file.h"
#include "varflow/core/error.h"
#include "varflow/core/hash.h"
#include "varflow/testing/conformance.h"

namespace varflow::amortized {
namespace {

using test::message_of;

std::filesystem::path temp_file(const std::string& stem) {
  return std::filesystem::temp_directory_path() / (stem + "_" + std::to_string(::getpid()) + ".nc");
}

// A file as another program would write it: no varflow attributes, no checksum trailer.
void write_plain(const std::filesystem::path& path, const Matrix& x, const Matrix& y, const std::vector<int>* mask,
                 const double* fill) {
  netCDF::NcFile f(path.string(), netCDF::NcFile::replace);
  const auto pair = f.addDim("pair", static_cast<std::size_t>(x.cols()));
  const auto state = f.addDim("state", static_cast<std::size_t>(x.rows()));
  const auto obs = f.addDim("observation", static_cast<std::size_t>(y.rows()));
  auto vx = f.addVar("x", netCDF::ncDouble, {pair, state});
  auto vy = f.addVar("y", netCDF::ncDouble, {pair, obs});
  if (fill) vy.setFill(true, *fill);
  vx.putVar(x.data());  // column-major (state fastest) = C order of (pair, state)
  vy.putVar(y.data());
  if (mask) f.addVar("mask", netCDF::ncInt, {pair, obs}).putVar(mask->data());
}

TEST(PairsFile, RoundTripKeepsEveryValueAndMissingObservations) {
  const LinearGaussian problem(4);
  Rng rng = testing::seeded_rng(3101);
  Dataset d = problem.simulate(25, rng);
  const auto path = temp_file("pairs_round_trip");
  write_pairs_file(path, d);
  const Dataset back = read_pairs_file(path, problem.shape(), problem.name());
  EXPECT_EQ(back.x, d.x);
  EXPECT_EQ(back.y, d.y);
  // The provenance checksum of a pairs file: the hash of its bytes, changed by a rewrite with other pairs.
  const std::uint64_t hash = fnv1a_file(path);
  d.x(0, 0) += 1.0;
  write_pairs_file(path, d);
  EXPECT_NE(fnv1a_file(path), hash);
  std::filesystem::remove(path);
}

TEST(PairsFile, MaskAndFillValueMarkMissingObservationsOfGriddedProblems) {
  const ProblemShape gridded{2, 4, 2, 2};
  Matrix x(2, 3), y(4, 3);
  x << 1, 2, 3, 4, 5, 6;
  y << 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12;
  std::vector<int> mask(12, 1);
  mask[1 * 4 + 2] = 0;  // pair 1, observation 2
  const double fill = -999.0;
  y(3, 2) = fill;       // pair 2, observation 3
  const auto path = temp_file("pairs_mask");
  write_plain(path, x, y, &mask, &fill);
  const Dataset d = read_pairs_file(path, gridded, "grid");
  EXPECT_TRUE(std::isnan(d.y(2, 1)));
  EXPECT_TRUE(std::isnan(d.y(3, 2)));
  EXPECT_EQ(d.y(0, 0), 1.0);
  EXPECT_EQ(d.x(1, 2), 6.0);
  EXPECT_EQ(d.y.array().isNaN().count(), 2);
  // The same file for a problem without missing observations names the pair.
  const std::string ungridded = message_of([&] { read_pairs_file(path, {2, 4, 1, 0}, "dense"); });
  EXPECT_NE(ungridded.find("--pairs " + path.string() + ": y(pair 1, observation 2) is missing, but problem dense "
                           "has no missing observations"),
            std::string::npos)
      << ungridded;
  // A mask value other than 0 or 1.
  mask[5] = 3;
  write_plain(path, x, y, &mask, &fill);
  const std::string bad_mask = message_of([&] { read_pairs_file(path, gridded, "grid"); });
  EXPECT_NE(bad_mask.find("mask(pair 1, observation 1) = 3 is not 0 or 1"), std::string::npos) << bad_mask;
  std::filesystem::remove(path);
}

TEST(PairsFile, WrongShapesAndBadValuesAreNamed) {
  const ProblemShape shape{3, 2, 1, 0};
  const auto path = temp_file("pairs_bad");
  Matrix x = Matrix::Ones(3, 4), y = Matrix::Ones(2, 4);
  write_plain(path, x, y, nullptr, nullptr);
  EXPECT_NO_THROW(read_pairs_file(path, shape, "p"));
  const std::string state = message_of([&] { read_pairs_file(path, {5, 2, 1, 0}, "lorenz96"); });
  EXPECT_NE(state.find(": state = 3, but problem lorenz96 has 5 state variables"), std::string::npos) << state;
  const std::string obs = message_of([&] { read_pairs_file(path, {3, 7, 1, 0}, "p"); });
  EXPECT_NE(obs.find(": observation = 2, but problem p has 7 observations"), std::string::npos) << obs;
  x(1, 3) = std::nan("");
  write_plain(path, x, y, nullptr, nullptr);
  const std::string nan_state = message_of([&] { read_pairs_file(path, shape, "p"); });
  EXPECT_NE(nan_state.find(": x(pair 3, state 1) = nan is not finite"), std::string::npos) << nan_state;
  x(1, 3) = 1.0;
  y(0, 2) = INFINITY;
  write_plain(path, x, y, nullptr, nullptr);
  const std::string inf_obs = message_of([&] { read_pairs_file(path, shape, "p"); });
  EXPECT_NE(inf_obs.find(": y(pair 2, observation 0) = inf is infinite"), std::string::npos) << inf_obs;
  // One pair is not a training set; a file without y is not a pairs file.
  write_plain(path, Matrix::Ones(3, 1), Matrix::Ones(2, 1), nullptr, nullptr);
  EXPECT_NE(message_of([&] { read_pairs_file(path, shape, "p"); }).find("pair = 1, but training needs at least 2"),
            std::string::npos);
  {
    netCDF::NcFile f(path.string(), netCDF::NcFile::replace);
    f.addDim("pair", 2);
  }
  const std::string no_y = message_of([&] { read_pairs_file(path, shape, "p"); });
  EXPECT_NE(no_y.find("no variable 'x'"), std::string::npos) << no_y;
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace varflow::amortized
