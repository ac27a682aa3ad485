#include "common/json_member.hpp"

#include <catch2/catch.hpp>

using ballast::integer_member;
using ballast::string_member;
using nlohmann::json;

TEST_CASE("a string member is its value, and the fallback when absent, of another type or not in an object") {
  const json j = json::parse(R"({"s":"x","n":5,"a":["x"],"z":null})");
  CHECK(string_member(j, "s") == "x");
  CHECK(string_member(j, "n").empty());
  CHECK(string_member(j, "a", "?") == "?");
  CHECK(string_member(j, "z", "?") == "?");
  CHECK(string_member(j, "missing", "?") == "?");
  CHECK(string_member(json::array({"s"}), "s", "?") == "?");
  CHECK(string_member(json("s"), "s", "?") == "?");
}

TEST_CASE("an integer member is its value, and the fallback when absent, fractional, too large or of another type") {
  const json j = json::parse(R"({"i":-3,"u":410,"big":18446744073709551615,"f":1e300,"half":2.5,"s":"410"})");
  CHECK(integer_member(j, "i", 0) == -3);
  CHECK(integer_member(j, "u", 0) == 410);
  CHECK(integer_member(j, "big", 7) == 7);
  CHECK(integer_member(j, "f", 7) == 7);
  CHECK(integer_member(j, "half", 7) == 7);
  CHECK(integer_member(j, "s", 7) == 7);
  CHECK(integer_member(j, "missing", 7) == 7);
  CHECK(integer_member(json::array(), "i", 7) == 7);
}
