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
