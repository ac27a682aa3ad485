#include <catch2/catch.hpp>

#include "boot/version_compare.hpp"

using ballast::boot::compare_versions;

namespace {
int sgn(int v) { return v < 0 ? -1 : v > 0 ? 1 : 0; }
}  // namespace

TEST_CASE("versions order as the UAPI version format specification says", "[boot][version]") {
  struct Case {
    const char* a;
    const char* b;
    int expected;
  };
  const Case cases[] = {
      {"1.10", "1.9", 1},         {"1~rc1", "1", -1},      {"1^post", "1", 1},     {"1^post", "1.1", -1},
      {"1~rc1", "1~rc2", -1},     {"2024.01.02", "2024.1.2", 0}, {"2024.01.02", "2024.01.10", -1},
      {"1a", "1b", -1},           {"1a", "1", 1},          {"1.a", "1.1", -1},     {"A", "a", -1},
      {"1-2", "1.2", -1},         {"1-2", "1", 1},         {"1.0", "1", 1},        {"1", "1.", -1},
      {"1..2", "1.2", -1},        {"abc", "abcd", -1},     {"1.0.0", "1.0", 1},    {"1^", "1", 1},
      {"1~", "1", -1},            {"0001", "1", 0},        {"1.01", "1.1", 0},     {"2.0", "10", -1},
      {"1a1", "1.1", 1},          {"rc1", "1", -1},        {"x", "", 1},           {"", "", 0},
      {"5.10.0-23-amd64", "5.10.0-9-amd64", 1},            {"1..1", "1.1", -1},    {"1_2", "12", -1},
      {"99999999999999999999999", "99999999999999999999998", 1}, {"1^post", "1a", -1}, {"1^", "1-", 1},
      {"1^", "1~", 1},            {"1^a", "1^1", -1},      {"1.x", "1a", -1},      {"a", "1", -1},
      {"~", "", -1},              {"~~", "~", 1},          {"1a", "1A", 1},        {"1_", "1", 0},
  };
  for (const auto& c : cases) {
    INFO(c.a << " vs " << c.b);
    CHECK(sgn(compare_versions(c.a, c.b)) == c.expected);
    CHECK(sgn(compare_versions(c.b, c.a)) == -c.expected);
  }
}

TEST_CASE("version comparison terminates on separator runs and invalid characters", "[boot][version]") {
  CHECK(compare_versions("1--", "1-") > 0);
  CHECK(compare_versions("~", "") < 0);
  CHECK(compare_versions("1.2!!", "1.2") == 0);
  CHECK(compare_versions("..--^^~~", "..--^^~~") == 0);
}
