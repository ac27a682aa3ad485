#include <catch2/catch.hpp>

#include "common/result.hpp"

using namespace ballast;

namespace {
Result<int> parse_positive(int v) {
  if (v <= 0) return fail("test.not-positive", "value " + std::to_string(v) + " is not positive");
  return v;
}
Result<int> doubled(int v) {
  int x = BALLAST_TRY(parse_positive(v));
  return x * 2;
}
Status check(int v) {
  BALLAST_CHECK(with_context(parse_positive(v), "checking input"));
  return ok();
}
}  // namespace

TEST_CASE("BALLAST_TRY unwraps values and forwards errors unchanged") {
  CHECK(*doubled(4) == 8);
  auto e = doubled(-1);
  REQUIRE_FALSE(e);
  CHECK(e.error().code == "test.not-positive");
}

TEST_CASE("an error's description has its context outermost first and its code last") {
  auto st = with_context(check(0), "loading");
  REQUIRE_FALSE(st);
  CHECK(st.error().describe() == "loading: checking input: value 0 is not positive [test.not-positive]");
  auto errno_error = Error{"io.open", "cannot open x", ENOENT, {}};
  CHECK(errno_error.describe() == "cannot open x (No such file or directory) [io.open]");
}

TEST_CASE("a context given as a callable is built only when the result failed, and then reads as a string one") {
  int built = 0;
  auto make = [&] {
    ++built;
    return std::string("command at byte 17");
  };
  auto fine = with_context(parse_positive(3), make);
  REQUIRE(fine);
  CHECK(*fine == 3);
  CHECK(built == 0);
  auto failed = with_context(parse_positive(-2), make);
  REQUIRE_FALSE(failed);
  CHECK(built == 1);
  CHECK(failed.error().describe() == "command at byte 17: value -2 is not positive [test.not-positive]");
  Status st = with_context(check(0), [] { return std::string("loading"); });
  REQUIRE_FALSE(st);
  CHECK(st.error().describe() == "loading: checking input: value 0 is not positive [test.not-positive]");
}
