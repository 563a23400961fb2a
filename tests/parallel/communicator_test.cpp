// The communicator on one rank (core/communicator.h): blocks, records, per-item streams, the
// failure path of distributed_map and run_on_root. The same code on two ranks: mpi_test.cpp.
#include <gtest/gtest.h>

#include <set>
#include <sstream>
#include <vector>

#include "varflow/core/communicator.h"
#include "varflow/core/error.h"

namespace varflow {
namespace {

TEST(BlockRange, CoversTheItemsOnceInOrderWithBlocksDifferingByAtMostOne) {
  for (const Index items : {0, 1, 7, 100}) {
    for (const int size : {1, 2, 3, 8}) {
      Index next = 0, smallest = items, largest = 0;
      for (int r = 0; r < size; ++r) {
        const ItemRange b = block_range(items, r, size);
        EXPECT_EQ(b.begin, next) << items << " items, rank " << r << " of " << size;
        next = b.end;
        smallest = std::min(smallest, b.end - b.begin);
        largest = std::max(largest, b.end - b.begin);
      }
      EXPECT_EQ(next, items);
      EXPECT_LE(largest - smallest, 1);
    }
  }
  EXPECT_THROW(block_range(5, 2, 2), InvalidArgument);
}

TEST(Records, RoundTripDoublesVectorsMatricesAndTextBitForBit) {
  RecordWriter w;
  const Vector v = (Vector(3) << 1.0, std::nan(""), -0.0).finished();
  const Matrix m = (Matrix(2, 2) << 1, 2, 3, 4).finished();
  w.put(2.5);
  w.put(v);
  w.put(m);
  w.put(std::string("event_7"));
  RecordReader r(w.bytes());
  EXPECT_EQ(r.get_double(), 2.5);
  const Vector v2 = r.get_vector();
  ASSERT_EQ(v2.size(), 3);
  EXPECT_EQ(v2[0], 1.0);
  EXPECT_TRUE(std::isnan(v2[1]));
  EXPECT_TRUE(std::signbit(v2[2]));
  EXPECT_EQ(r.get_matrix(), m);
  EXPECT_EQ(r.get_string(), "event_7");
  EXPECT_TRUE(r.done());
  EXPECT_THROW(r.get_double(), Error);  // nothing left
}

TEST(ItemRng, StreamsDependOnBaseAndItemOnly) {
  EXPECT_EQ(item_rng(5, 3).uniform(), item_rng(5, 3).uniform());
  std::set<double> first;
  for (Index i = 0; i < 100; ++i) first.insert(item_rng(5, i).uniform());
  for (Index i = 0; i < 100; ++i) first.insert(item_rng(6, i).uniform());
  EXPECT_EQ(first.size(), 200u);  // no two streams start alike
}

TEST(DistributedMap, OnOneRankReturnsTheItemsInOrderAndKeepsTheItemsOwnErrors) {
  const auto& serial = serial_communicator();
  EXPECT_EQ(serial.size(), 1);
  const auto records = distributed_map(
      serial, 4, "test", [](Index i) { return format_message("item_", i); },
      [](Index i) { return std::to_string(i * i); });
  EXPECT_EQ(records, (std::vector<std::string>{"0", "1", "4", "9"}));
  // The item's exception type and message are kept (the rank is named only with several ranks).
  try {
    distributed_map(serial, 4, "test", [](Index i) { return format_message("item_", i); }, [](Index i) -> std::string {
      if (i == 2) throw NumericalError("blew up");
      return {};
    });
    FAIL() << "no exception";
  } catch (const NumericalError& e) {
    EXPECT_STREQ(e.what(), "blew up");
    EXPECT_TRUE(is_agreed_failure(e));
  }
  EXPECT_THROW(run_on_root(serial, [] { throw InvalidArgument("--out = 'x' is locked"); }), InvalidArgument);
  bool ran = false;
  run_on_root(serial, [&] { ran = true; });
  EXPECT_TRUE(ran);
}

TEST(DistributedMap, ProgressHearsOfEveryItemOnceUpToTheTotal) {
  for (const ItemThreads threads : {ItemThreads::kOne, ItemThreads::kOpenMp}) {
    std::vector<Index> seen;
    Index total_seen = -1;
    const auto records = distributed_map(
        serial_communicator(), 23, "items", [](Index i) { return format_message("item ", i); },
        [](Index i) { return format_message(i); }, threads,
        [&](Index done, Index total) {
          seen.push_back(done);
          total_seen = total;
        });
    ASSERT_EQ(records.size(), 23u);
    ASSERT_EQ(seen.size(), 23u);
    for (std::size_t k = 0; k < seen.size(); ++k) EXPECT_EQ(seen[k], static_cast<Index>(k + 1));
    EXPECT_EQ(total_seen, 23);
  }
  std::ostringstream log;
  const ItemProgress tenth = log_items_every_tenth(log, "labelled ", "pairs");
  for (Index k = 1; k <= 25; ++k) tenth(k, 25);
  const std::string text = log.str();
  EXPECT_NE(text.find("labelled 2/25 pairs, "), std::string::npos) << text;
  EXPECT_NE(text.find("labelled 25/25 pairs, 0 s left"), std::string::npos) << text;
  EXPECT_EQ(text.find("labelled 3/25"), std::string::npos) << text;
}

}  // namespace
}  // namespace varflow
