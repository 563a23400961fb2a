#include "varflow/io/config_reader.h"

#include <gtest/gtest.h>

#include "varflow/core/error.h"
#include "varflow/io/options.h"
#include "test_messages.h"

namespace varflow::io {
namespace {

using test::message_of;

TEST(ConfigReader, ReadsValuesWithDefaults) {
  auto root = ConfigReader::parse("model:\n  n: 40\n  forcing: 8.5\nmethod: weak\ncycles: 3\nlist: [1, 2.5]\n", "t");
  auto model = root.section("model");
  EXPECT_EQ(model.integer("n", 1), 40);
  EXPECT_DOUBLE_EQ(model.real("forcing", 0.0), 8.5);
  EXPECT_DOUBLE_EQ(model.real("dt", 0.05), 0.05);
  model.finish();
  EXPECT_EQ(root.choice("method", "strong", {"strong", "weak"}), "weak");
  EXPECT_EQ(root.integer("cycles", 100), 3);
  EXPECT_EQ(root.reals("list", {}), (std::vector<double>{1.0, 2.5}));
  EXPECT_EQ(root.section("absent").integer("k", 7), 7);
  EXPECT_NO_THROW(root.finish());
}

TEST(ConfigReader, ErrorsNameTheKeyAndValue) {
  auto root = ConfigReader::parse("model:\n  n: abc\n  forcng: 8\nmethod: strongg\n", "t");
  auto model = root.section("model");
  EXPECT_EQ(message_of([&] { model.integer("n", 1); }), "config: model.n = 'abc' is not an integer");
  model.real("forcing", 8.0);
  EXPECT_EQ(message_of([&] { model.finish(); }), "config: unknown key 'model.forcng' (expected one of: forcing, n)");
  EXPECT_EQ(message_of([&] { root.choice("method", "strong", {"strong", "incremental"}); }),
            "config: method = 'strongg' is not one of: strong, incremental");
  EXPECT_NE(message_of([] { ConfigReader::parse("a: [1, 2\n", "bad.yaml"); }).find("bad.yaml: YAML syntax error at line"),
            std::string::npos);
  EXPECT_THROW(ConfigReader::parse("- 1\n- 2\n", "t"), InvalidArgument);
  EXPECT_EQ(message_of([] { ConfigReader::parse("n: 1\nmodel:\n  f: 8\n  f: 9\n", "dup.yaml"); }),
            "config dup.yaml: key 'model.f' appears twice (line 4)");
  EXPECT_NE(message_of([] { ConfigReader::parse("n: 1\nn: 2\n", "dup.yaml"); }).find("'n' appears twice"),
            std::string::npos);
}

// Printed defaults are nested YAML that reads back as the same dotted entries, in the same order.
// Found by fuzz/config_fuzzer: a mapping or list as a key, and aliases that expand to a huge
// document, are refused as bad input (they used to escape as a yaml-cpp exception, or take
// exponential time).
TEST(ConfigReader, RefusesKeysThatAreNotNamesAndDocumentsThatAliasesBlowUp) {
  EXPECT_EQ(message_of([] { ConfigReader::parse("model:\n  ? [a, b]\n  : 1\n", "t"); }),
            "config t: a key in 'model' at line 2 is not a name");
  std::string laughs = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i < 8; ++i) {
    const std::string name = std::to_string(i), previous = std::to_string(i - 1);
    laughs += "a";
    laughs += name;
    laughs += ": &a";
    laughs += name;
    laughs += " [";
    for (int k = 0; k < 10; ++k) {
      laughs += k ? ", *a" : "*a";
      laughs += previous;
    }
    laughs += "]\n";
  }
  EXPECT_EQ(message_of([&] { ConfigReader::parse(laughs, "t"); }),
            "config t: the document holds more than 1000000 values (with its aliases expanded)");
  auto root = ConfigReader::parse("cycles: 10000000000\n", "t");
  EXPECT_EQ(message_of([&] { root.count("cycles", 1, 1); }), "config: cycles = 10000000000 is above the limit 1000000000");
}

TEST(NestedYaml, ReadsBackAsTheSameEntries) {
  const std::vector<std::pair<std::string, std::string>> entries = {
      {"head", "flow"},         {"encoder.type", "conv"}, {"encoder.width", "128"}, {"a.b.c", "1"},
      {"a.b.d", "2"},           {"a.e", "x"},             {"pairs", "20000"},       {"training.epochs", "30"},
      {"model.n", "40"},        {"model.dt", "0.05"},     {"file", ""}};
  const std::string text = nested_yaml(entries);
  EXPECT_NE(text.find("encoder:\n  type: conv\n  width: 128\na:\n  b:\n    c: 1\n    d: 2\n  e: x\npairs: 20000\n"),
            std::string::npos)
      << text;
  EXPECT_EQ(ConfigReader::parse(text, "printed").entries(), entries) << text;
}

}  // namespace
}  // namespace varflow::io
