#include <catch2/catch.hpp>

#include "common/duration.hpp"

using namespace ballast;
using namespace std::chrono_literals;

TEST_CASE("durations parse units and combinations") {
  CHECK(*parse_duration("90") == 90s);
  CHECK(*parse_duration("250ms") == 250ms);
  CHECK(*parse_duration("5m") == 5min);
  CHECK(*parse_duration("1h30m") == 90min);
  CHECK(*parse_duration("2d") == 48h);
}

TEST_CASE("malformed durations are refused") {
  for (const char* bad : {"", "h", "5x", "-5s", "1.5h", "5 m", "99999999999999999999s"}) {
    INFO(bad);
    CHECK_FALSE(parse_duration(bad));
  }
}

TEST_CASE("a bare number is seconds only as the whole text, so 1h30 is refused rather than read as 1h30s") {
  CHECK(*parse_duration("30") == 30s);
  for (const char* bad : {"1h30", "1m30", "30 ", "1h30m15"}) {
    INFO(bad);
    CHECK_FALSE(parse_duration(bad));
  }
}

TEST_CASE("a sum of parts beyond what milliseconds hold is refused, not wrapped") {
  CHECK_FALSE(parse_duration("9223372036854775s9223372036854775s"));
  CHECK_FALSE(parse_duration("106751991167d1d"));
}

TEST_CASE("formatting a duration gives text that parses back to it") {
  for (std::chrono::milliseconds d : {0ms, 1500ms, 90000ms, 3600000ms, 90061000ms}) {
    auto back = parse_duration(format_duration(d));
    REQUIRE(back);
    CHECK(*back == d);
  }
  CHECK(format_duration(5400s) == "1h30m");
}
