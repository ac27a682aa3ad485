#include <catch2/catch.hpp>

#include "repository/tuf/canonical_json.hpp"

using ballast::repository::tuf::canonical_json;
using json = nlohmann::json;

TEST_CASE("canonical JSON sorts keys by bytes and drops whitespace and escapes only quote and backslash", "[tuf]") {
  auto j = json::parse(R"({ "b": [1, -2, true, null], "a": "x\"y\\z\n\u00e9", "B": {"z": 0, "y": {}} })");
  auto c = canonical_json(j);
  REQUIRE(c);
  CHECK(*c == "{\"B\":{\"y\":{},\"z\":0},\"a\":\"x\\\"y\\\\z\n\xc3\xa9\",\"b\":[1,-2,true,null]}");
}

TEST_CASE("canonical JSON orders non-ASCII keys after ASCII ones", "[tuf]") {
  json j;
  j["\xc3\xa9"] = 1;
  j["z"] = 2;
  CHECK(*canonical_json(j) == "{\"z\":2,\"\xc3\xa9\":1}");
}

TEST_CASE("canonical JSON has no floating point numbers", "[tuf]") {
  CHECK(canonical_json(json{{"a", 1.5}}).error().code == "tuf.bad-metadata");
}

TEST_CASE("canonical JSON refuses absurdly deep nesting instead of overflowing the stack", "[tuf]") {
  json j = 1;
  for (int i = 0; i < 100; ++i) j = json::array({j});
  CHECK(canonical_json(j).error().code == "tuf.bad-metadata");
}
