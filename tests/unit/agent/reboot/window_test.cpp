#include "agent/reboot/window.hpp"

#include <catch2/catch.hpp>

#include "tests/unit/agent/reboot/time_support.hpp"

using namespace ballast;
using namespace ballast::agent::reboot;
using ballast::testing::utc;
using namespace std::chrono_literals;

namespace {

MaintenanceWindow window(std::vector<std::string> days, std::string start, std::chrono::milliseconds length,
                         std::string zone = "Europe/Berlin") {
  auto z = TimeZone::load(zone);
  REQUIRE(z);
  auto w = MaintenanceWindow::parse(days, start, length, *z);
  REQUIRE(w);
  return *w;
}

}  // namespace

TEST_CASE("a window on Mondays and Wednesdays at 03:00 Berlin time for an hour opens and closes on local time") {
  auto w = window({"Mon,Wed"}, "03:00", 1h);
  // 2026-01-05 is a Monday; Berlin is UTC+1 in January.
  CHECK_FALSE(w.is_open(utc(2026, 1, 5, 1, 59)));
  CHECK(w.is_open(utc(2026, 1, 5, 2, 0)));
  CHECK(w.is_open(utc(2026, 1, 5, 2, 59)));
  CHECK_FALSE(w.is_open(utc(2026, 1, 5, 3, 0)));
  CHECK(w.closes_at(utc(2026, 1, 5, 2, 30)) == utc(2026, 1, 5, 3, 0));
  CHECK_FALSE(w.is_open(utc(2026, 1, 6, 2, 30)));  // Tuesday
  CHECK(w.is_open(utc(2026, 1, 7, 2, 30)));        // Wednesday
  // Next opening from Monday after the window: Wednesday; from Wednesday after it: next Monday.
  CHECK(w.next_opening(utc(2026, 1, 5, 3, 0)) == utc(2026, 1, 7, 2, 0));
  CHECK(w.next_opening(utc(2026, 1, 7, 12, 0)) == utc(2026, 1, 12, 2, 0));
  CHECK(w.next_opening(utc(2026, 1, 5, 2, 10)) == utc(2026, 1, 5, 2, 10));  // open now
  // In summer the same local time is an hour earlier in UTC.
  CHECK(w.is_open(utc(2026, 7, 6, 1, 0)));
  CHECK_FALSE(w.is_open(utc(2026, 7, 6, 2, 0)));
}

TEST_CASE("a window may run past midnight into the next day") {
  auto w = window({"Sat"}, "23:00", 3h, "UTC");
  // 2026-01-03 is a Saturday.
  CHECK_FALSE(w.is_open(utc(2026, 1, 3, 22, 59)));
  CHECK(w.is_open(utc(2026, 1, 3, 23, 0)));
  CHECK(w.is_open(utc(2026, 1, 4, 1, 59)));   // Sunday, still Saturday's window
  CHECK_FALSE(w.is_open(utc(2026, 1, 4, 2, 0)));
  CHECK(w.closes_at(utc(2026, 1, 4, 1, 0)) == utc(2026, 1, 4, 2, 0));
  CHECK(w.next_opening(utc(2026, 1, 4, 2, 0)) == utc(2026, 1, 10, 23, 0));
  CHECK_FALSE(w.is_open(utc(2026, 1, 4, 23, 30)));  // Sunday itself has no window
}

TEST_CASE("windows keep their local start across daylight saving changes") {
  SECTION("on the spring-forward night a skipped start time opens when the clock jumps past it") {
    auto w = window({"Sun"}, "02:30", 1h);
    // 02:30 does not exist on 2026-03-29 in Berlin: the window opens at 03:30 CEST = 01:30 UTC.
    CHECK(w.next_opening(utc(2026, 3, 28, 12)) == utc(2026, 3, 29, 1, 30));
    CHECK_FALSE(w.is_open(utc(2026, 3, 29, 1, 29)));
    CHECK(w.is_open(utc(2026, 3, 29, 2, 29)));
    CHECK_FALSE(w.is_open(utc(2026, 3, 29, 2, 30)));
  }
  SECTION("on the fall-back night a repeated start time opens at its first occurrence") {
    auto w = window({"Sun"}, "02:30", 1h);
    CHECK(w.next_opening(utc(2026, 10, 24, 12)) == utc(2026, 10, 25, 0, 30));
    CHECK_FALSE(w.is_open(utc(2026, 10, 25, 1, 30)));
  }
  SECTION("a window across the change lasts its configured elapsed time") {
    auto w = window({"Sat"}, "23:00", 4h);
    // Saturday 2026-03-28 23:00 CET = 22:00 UTC, four hours later is 02:00 UTC (04:00 CEST).
    CHECK(w.is_open(utc(2026, 3, 29, 1, 59)));
    CHECK_FALSE(w.is_open(utc(2026, 3, 29, 2, 0)));
  }
  SECTION("the next opening after a change is computed in the new offset") {
    auto w = window({"Mon"}, "03:00", 1h);
    CHECK(w.next_opening(utc(2026, 3, 27, 12)) == utc(2026, 3, 30, 1, 0));
    CHECK(w.next_opening(utc(2026, 10, 23, 12)) == utc(2026, 10, 26, 2, 0));
  }
}

TEST_CASE("window days accept ranges, wrapping ranges, full names and any case") {
  auto weekend = window({"Sat-Sun"}, "03:00", 1h, "UTC");
  CHECK(weekend.on_day(std::chrono::Saturday));
  CHECK(weekend.on_day(std::chrono::Sunday));
  CHECK_FALSE(weekend.on_day(std::chrono::Monday));
  CHECK_FALSE(weekend.on_day(std::chrono::Friday));

  auto wrap = window({"fri-MON"}, "03:00", 1h, "UTC");
  for (auto d : {std::chrono::Friday, std::chrono::Saturday, std::chrono::Sunday, std::chrono::Monday}) CHECK(wrap.on_day(d));
  for (auto d : {std::chrono::Tuesday, std::chrono::Wednesday, std::chrono::Thursday}) CHECK_FALSE(wrap.on_day(d));

  auto listed = window({"Tuesday", " thu "}, "03:00", 1h, "UTC");
  CHECK(listed.on_day(std::chrono::Tuesday));
  CHECK(listed.on_day(std::chrono::Thursday));
  CHECK_FALSE(listed.on_day(std::chrono::Wednesday));
}

TEST_CASE("a window that is always open answers open at every instant") {
  auto w = window({"Mon-Sun"}, "00:00", std::chrono::hours{24}, "UTC");
  for (int h = 0; h < 24 * 8; h += 5) CHECK(w.is_open(utc(2026, 1, 1) + std::chrono::hours{h}));
}

TEST_CASE("bad window settings are refused naming the key") {
  auto z = TimeZone::utc();
  auto bad = [&](std::vector<std::string> days, std::string start, std::chrono::milliseconds len, std::string key) {
    auto w = MaintenanceWindow::parse(days, start, len, z);
    REQUIRE_FALSE(w);
    CHECK(w.error().code == "reboot.bad-window");
    CHECK(w.error().message.find(key) != std::string::npos);
  };
  bad({"Funday"}, "03:00", 1h, "window_days");
  bad({"Mon-"}, "03:00", 1h, "window_days");
  bad({"Mon,,Tue"}, "03:00", 1h, "window_days");
  bad({}, "03:00", 1h, "window_days");
  bad({"Mon"}, "25:00", 1h, "window_start");
  bad({"Mon"}, "3:00", 1h, "window_start");
  bad({"Mon"}, "03:60", 1h, "window_start");
  bad({"Mon"}, "03:00x", 1h, "window_start");
  bad({"Mon"}, "03:00", 0ms, "window_length");
  bad({"Mon"}, "03:00", std::chrono::hours{24 * 8}, "window_length");
}
