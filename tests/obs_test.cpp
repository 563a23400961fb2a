#include <gtest/gtest.h>

#include <cmath>

#include "varflow/core/error.h"
#include "varflow/covariance/covariances.h"
#include "varflow/obs/observations.h"
#include "varflow/obs/operators.h"
#include "test_messages.h"

namespace varflow {
namespace {

using test::message_of;

TEST(SubsetObservation, PicksTheIndices) {
  const auto op = SubsetObservation::every(10, 3, 1);  // 1, 4, 7
  ASSERT_EQ(op.obs_size(), 3);
  Vector y;
  op.apply(Vector::LinSpaced(10, 0.0, 9.0), y);
  EXPECT_EQ(y, (Vector(3) << 1.0, 4.0, 7.0).finished());
  EXPECT_EQ(message_of([] { SubsetObservation(5, {0, 5}); }), "SubsetObservation: indices[1] = 5 outside [0, 5)");
}

TEST(ArctanObservation, SaturatesAndIsNearIdentityForSmallValues) {
  const ArctanObservation op(3, {0, 1, 2}, 2.0);
  Vector y;
  op.apply((Vector(3) << 1e-4, 1e6, -1e6).finished(), y);
  EXPECT_NEAR(y[0], 1e-4, 1e-12);
  EXPECT_NEAR(y[1], 2.0 * M_PI / 2, 1e-5);
  EXPECT_NEAR(y[2], -2.0 * M_PI / 2, 1e-5);
  EXPECT_THROW(ArctanObservation(3, {0}, 0.0), InvalidArgument);
}

TEST(LinearObservation, DenseAndSparseAgree) {
  Matrix h(2, 3);
  h << 1, 2, 0, 0, -1, 3;
  const LinearObservation dense(h), sparse(Eigen::SparseMatrix<double>(h.sparseView()));
  const Vector x = (Vector(3) << 0.5, -1.0, 2.0).finished();
  Vector y1, y2;
  dense.apply(x, y1);
  sparse.apply(x, y2);
  EXPECT_EQ(y1, h * x);
  EXPECT_EQ(y2, h * x);
}

struct ObservationsFixture : ::testing::Test {
  Observations obs() const {
    Observations o;
    o.step = 4;
    o.values = Vector::Constant(3, 1.0);
    o.op = std::make_shared<SubsetObservation>(10, std::vector<Index>{0, 2, 4});
    o.r = std::make_shared<DiagonalCovariance>(DiagonalCovariance::scaled_identity(3, 0.5));
    return o;
  }
};

TEST_F(ObservationsFixture, ValidInputPasses) {
  EXPECT_NO_THROW(obs().validate(10));
  EXPECT_EQ(obs().count(), 3);
}

TEST_F(ObservationsFixture, MaskedValuesMayBeMissing) {
  auto o = obs();
  o.values[1] = NAN;
  EXPECT_NE(message_of([&] { o.validate(10); }).find("values[1] = nan is not finite"), std::string::npos);
  o.mask = Mask::Constant(3, true);
  o.mask[1] = false;
  EXPECT_NO_THROW(o.validate(10));
  EXPECT_EQ(o.count(), 2);
}

TEST_F(ObservationsFixture, InconsistentFieldsAreNamed) {
  auto o = obs();
  o.values = Vector::Zero(4);
  EXPECT_NE(message_of([&] { o.validate(10); }).find("values has size 4, expected 3"), std::string::npos);
  o = obs();
  o.step = -2;
  EXPECT_NE(message_of([&] { o.validate(10); }).find("step = -2"), std::string::npos);
  o = obs();
  o.r.reset();
  EXPECT_NE(message_of([&] { o.validate(10); }).find("covariance R"), std::string::npos);
  EXPECT_NE(message_of([&] { obs().validate(11); }).find("operator state size"), std::string::npos);
  o = obs();
  o.mask = Mask::Constant(2, true);
  EXPECT_NE(message_of([&] { o.validate(10); }).find("mask has size 2"), std::string::npos);
}

}  // namespace
}  // namespace varflow
