#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>

#include "varflow/core/error.h"
#include "varflow/core/random.h"

namespace varflow {
namespace {

TEST(Errors, MessagesNameTheQuantityAndValue) {
  try {
    check_size("f", "x", 3, 4);
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_STREQ(e.what(), "f: x has size 3, expected 4");
  }
  Vector v = Vector::Zero(5);
  v[2] = std::nan("");
  try {
    check_finite("g", "state", v);
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_STREQ(e.what(), "g: state[2] = nan is not finite");
  }
  EXPECT_THROW(check_positive("h", "variance", -1.0), InvalidArgument);
  EXPECT_THROW(check_positive("h", "variance", 0.0), InvalidArgument);
  EXPECT_THROW(check_positive("h", "variance", INFINITY), InvalidArgument);
  EXPECT_NO_THROW(check_positive("h", "variance", 1e-300));
  EXPECT_THROW(check_nonnegative("h", "kappa", -1e-12), InvalidArgument);
  EXPECT_NO_THROW(check_nonnegative("h", "kappa", 0.0));
}

TEST(Rng, SameSeedSameStream) {
  Rng a(42), b(42), c(43);
  const Vector va = a.normal_vector(100), vb = b.normal_vector(100), vc = c.normal_vector(100);
  EXPECT_EQ(va, vb);
  EXPECT_NE(va, vc);
  Rng s1 = Rng(7).split(), s2 = Rng(7).split();
  EXPECT_EQ(s1.normal_vector(10), s2.normal_vector(10));
}

TEST(Rng, SeedFromEnvironment) {
  ::setenv("VARFLOW_CORE_TEST_SEED", "12345", 1);
  EXPECT_EQ(seed_from_env(1, "VARFLOW_CORE_TEST_SEED"), 12345u);
  ::setenv("VARFLOW_CORE_TEST_SEED", "12x", 1);
  EXPECT_THROW(seed_from_env(1, "VARFLOW_CORE_TEST_SEED"), InvalidArgument);
  ::unsetenv("VARFLOW_CORE_TEST_SEED");
  EXPECT_EQ(seed_from_env(9, "VARFLOW_CORE_TEST_SEED"), 9u);
}

}  // namespace
}  // namespace varflow
