#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "common/version.hpp"

using ballast::compare_uapi_versions;
using ballast::Version;

namespace {
int sgn(int v) { return v < 0 ? -1 : v > 0 ? 1 : 0; }
}  // namespace

TEST_CASE("versions order as the UAPI version format specification says", "[common][version]") {
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
    CHECK(sgn(compare_uapi_versions(c.a, c.b)) == c.expected);
    CHECK(sgn(compare_uapi_versions(c.b, c.a)) == -c.expected);
    // Version's order is the same order wherever both strings are versions.
    auto a = Version::parse(c.a), b = Version::parse(c.b);
    if (a && b) {
      CHECK((*a <=> *b) == (c.expected < 0 ? std::weak_ordering::less
                            : c.expected > 0 ? std::weak_ordering::greater
                                             : std::weak_ordering::equivalent));
    }
  }
}

TEST_CASE("version comparison terminates on separator runs and invalid characters", "[common][version]") {
  CHECK(compare_uapi_versions("1--", "1-") > 0);
  CHECK(compare_uapi_versions("~", "") < 0);
  CHECK(compare_uapi_versions("1.2!!", "1.2") == 0);
  CHECK(compare_uapi_versions("..--^^~~", "..--^^~~") == 0);
}

TEST_CASE("a version is 1-64 characters of 0-9 A-Z a-z . _ ~ ^ - starting with a letter or digit",
          "[common][version]") {
  for (const std::string& good : std::vector<std::string>{"1", "a", "Z9", "1.0", "2024.01.02", "1.0~rc1", "1^post", "5.10.0-23_amd64", "v3",
                           std::string(64, '7'), "1" + std::string(63, '~')}) {
    INFO(good);
    auto v = Version::parse(good);
    REQUIRE(v);
    CHECK(v->str() == good);
  }
  for (const std::string& bad : std::vector<std::string>{"", std::string(65, '7'), ".hidden", "..", "-x", "_x", "~1", "^1", "2.0+1", "1.0+3",
                          "a/b", "../x", "1 2", "1\n", "\xc3\xbc", std::string("1\0", 2)}) {
    INFO(bad);
    auto v = Version::parse(bad);
    REQUIRE_FALSE(v);
    CHECK(v.error().code == "version.invalid");
  }
}

TEST_CASE("a refused version's error names the string and the rule", "[common][version]") {
  auto v = Version::parse("2.0+1");
  REQUIRE_FALSE(v);
  CHECK_THAT(v.error().message, Catch::Contains("\"2.0+1\"") && Catch::Contains("'+' is reserved for the boot counter"));
}

TEST_CASE("versions equal in order are still different versions", "[common][version]") {
  auto a = *Version::parse("1.01"), b = *Version::parse("1.1");
  CHECK((a <=> b) == std::weak_ordering::equivalent);
  CHECK_FALSE(a == b);
  CHECK(*Version::parse("1.0~rc1") < *Version::parse("1.0"));
  CHECK(*Version::parse("1.0^p1") > *Version::parse("1.0"));
}
