#include "agent/reboot/time_zone.hpp"

#include <catch2/catch.hpp>

#include "common/file.hpp"
#include "tests/unit/agent/reboot/time_support.hpp"

using namespace ballast;
using namespace ballast::agent::reboot;
using ballast::testing::utc;
using ballast::testing::wall;
using namespace std::chrono_literals;

namespace {

std::chrono::sys_seconds at(int y, unsigned m, unsigned d, int h = 0, int min = 0) { return wall(y, m, d, h, min); }

void put32(std::string& s, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) s.push_back(static_cast<char>((v >> shift) & 0xff));
}

// A version 2 TZif file with no transitions at all: one local time type and the footer rule.
std::string footer_only_tzif(const std::string& footer, int32_t offset) {
  auto header = [](std::string& s) {
    s += "TZif2";
    s.append(15, '\0');
    for (uint32_t v : {0u, 0u, 0u, 0u, 1u, 4u}) put32(s, v);  // isut isstd leap time type chars
  };
  auto block = [&](std::string& s) {
    put32(s, static_cast<uint32_t>(offset));
    s.push_back('\0');
    s.push_back('\0');
    s.append("XXX", 4);
  };
  std::string s;
  header(s);
  block(s);
  header(s);
  block(s);
  return s + "\n" + footer + "\n";
}

// A version 1 TZif file (32-bit times, no footer): UTC, then +01:00 from `on` until `off`.
std::string v1_tzif(int32_t on, int32_t off) {
  std::string s = "TZif";
  s.append(16, '\0');
  for (uint32_t v : {0u, 0u, 0u, 2u, 2u, 8u}) put32(s, v);
  put32(s, static_cast<uint32_t>(on));
  put32(s, static_cast<uint32_t>(off));
  s.push_back('\1');
  s.push_back('\0');
  for (int32_t offset : {0, 3600}) {
    put32(s, static_cast<uint32_t>(offset));
    s.push_back('\0');
    s.push_back(offset ? '\4' : '\0');
  }
  s.append("UTC\0ONE\0", 8);
  return s;
}

}  // namespace

TEST_CASE("Europe/Berlin is one hour ahead of UTC in winter and two in summer, changing on the last Sundays of March and October") {
  auto z = TimeZone::load("Europe/Berlin");
  REQUIRE(z);
  CHECK(z->name() == "Europe/Berlin");
  CHECK(z->utc_offset(at(2026, 1, 15, 12)) == 1h);
  CHECK(z->utc_offset(at(2026, 7, 1, 12)) == 2h);
  CHECK(z->utc_offset(at(2026, 3, 29, 0, 59)) == 1h);
  CHECK(z->utc_offset(at(2026, 3, 29, 1, 0)) == 2h);
  CHECK(z->utc_offset(at(2026, 10, 25, 0, 59)) == 2h);
  CHECK(z->utc_offset(at(2026, 10, 25, 1, 0)) == 1h);
}

TEST_CASE("instants beyond the last transition of the file follow the POSIX rule in its footer") {
  auto z = TimeZone::load("Europe/Berlin");
  REQUIRE(z);
  // 2100 lies past the transitions any tzdata build lists for Berlin.
  CHECK(z->utc_offset(at(2100, 1, 10)) == 1h);
  CHECK(z->utc_offset(at(2100, 7, 10)) == 2h);
  // 2100-03-28 is the last Sunday of March: the change is at 01:00 UTC.
  CHECK(z->utc_offset(at(2100, 3, 28, 0, 59)) == 1h);
  CHECK(z->utc_offset(at(2100, 3, 28, 1, 0)) == 2h);
}

TEST_CASE("a TZif file with only a footer rule takes every offset from the rule") {
  auto z = TimeZone::parse_tzif(footer_only_tzif("CET-1CEST,M3.5.0,M10.5.0/3", 3600), "test/CET");
  REQUIRE(z);
  CHECK(z->utc_offset(at(2026, 1, 15)) == 1h);
  CHECK(z->utc_offset(at(2026, 3, 29, 0, 59)) == 1h);
  CHECK(z->utc_offset(at(2026, 3, 29, 1, 0)) == 2h);
  CHECK(z->utc_offset(at(2026, 10, 25, 0, 59)) == 2h);
  CHECK(z->utc_offset(at(2026, 10, 25, 1, 0)) == 1h);
}

TEST_CASE("a version 1 TZif file is read from its 32-bit transitions") {
  auto on = at(2026, 2, 1), off = at(2026, 3, 1);
  auto z = TimeZone::parse_tzif(v1_tzif(static_cast<int32_t>(on.time_since_epoch().count()),
                                        static_cast<int32_t>(off.time_since_epoch().count())),
                                "test/v1");
  REQUIRE(z);
  CHECK(z->utc_offset(on - 1s) == 0s);
  CHECK(z->utc_offset(on) == 1h);
  CHECK(z->utc_offset(off - 1s) == 1h);
  CHECK(z->utc_offset(off) == 0s);
  CHECK(z->utc_offset(at(2030, 1, 1)) == 0s);
}

TEST_CASE("a wall-clock time maps to its instant, moving a skipped time forward and taking the first of a repeated one") {
  auto z = TimeZone::load("Europe/Berlin");
  REQUIRE(z);
  CHECK(z->to_utc(at(2026, 7, 1, 3, 0)) == at(2026, 7, 1, 1, 0));
  CHECK(z->to_utc(at(2026, 1, 5, 3, 0)) == at(2026, 1, 5, 2, 0));
  // 02:30 does not exist on 2026-03-29: it becomes 03:30 CEST.
  CHECK(z->to_utc(at(2026, 3, 29, 2, 30)) == at(2026, 3, 29, 1, 30));
  // 02:30 happens twice on 2026-10-25: first in CEST.
  CHECK(z->to_utc(at(2026, 10, 25, 2, 30)) == at(2026, 10, 25, 0, 30));
  CHECK(z->to_local(at(2026, 7, 1, 1, 0)) == at(2026, 7, 1, 3, 0));
}

TEST_CASE("POSIX rules cover the southern hemisphere, half-hour offsets, the default US rule and Julian days") {
  SECTION("Australia: daylight time from October to April") {
    auto r = PosixZoneRule::parse("AEST-10AEDT,M10.1.0,M4.1.0/3");
    REQUIRE(r);
    CHECK(r->offset_at(at(2026, 1, 15)) == 11h);
    CHECK(r->offset_at(at(2026, 6, 15)) == 10h);
    CHECK(r->offset_at(at(2026, 12, 31, 23)) == 11h);
  }
  SECTION("a quoted name and minutes in the offset") {
    auto r = PosixZoneRule::parse("<+0330>-3:30");
    REQUIRE(r);
    CHECK_FALSE(r->has_dst);
    CHECK(r->offset_at(at(2026, 6, 1)) == 3h + 30min);
  }
  SECTION("no rule given: the US rule") {
    auto r = PosixZoneRule::parse("EST5EDT");
    REQUIRE(r);
    CHECK(r->offset_at(at(2026, 1, 1)) == -5h);
    CHECK(r->offset_at(at(2026, 7, 1)) == -4h);
  }
  SECTION("Jn never counts 29 February") {
    auto r = PosixZoneRule::parse("AAA0BBB,J60,J300");
    REQUIRE(r);
    // J60 is 1 March in leap years too; the change is at 02:00 local.
    CHECK(r->offset_at(at(2028, 2, 29, 12)) == 0s);
    CHECK(r->offset_at(at(2028, 3, 1, 1, 59)) == 0s);
    CHECK(r->offset_at(at(2028, 3, 1, 2, 0)) == 1h);
  }
}

TEST_CASE("a bad time zone name, file or rule is refused with a clear error") {
  for (std::string name : {"Nowhere/Atlantis", "../etc/passwd", "/etc/localtime", "", "Europe/../../etc/passwd"}) {
    auto z = TimeZone::load(name);
    REQUIRE_FALSE(z);
    CHECK(z.error().code == "reboot.bad-time-zone");
  }
  auto berlin = read_file("/usr/share/zoneinfo/Europe/Berlin");
  REQUIRE(berlin);
  for (size_t cut : {size_t{10}, size_t{60}, berlin->size() / 2, berlin->size() - 3}) {
    auto z = TimeZone::parse_tzif(std::string_view(*berlin).substr(0, cut), "cut");
    REQUIRE_FALSE(z);
    CHECK(z.error().code == "reboot.bad-time-zone");
  }
  CHECK_FALSE(TimeZone::parse_tzif("hello, world", "text"));
  CHECK_FALSE(TimeZone::parse_tzif(footer_only_tzif("CET", 3600), "no offset"));
  for (std::string rule : {"CET-1CEST,M13.5.0,M10.5.0", "CET-1CEST,M3.6.0,M10.5.0", "CET-1CEST,M3.5.0", "C-1", "CET-99"})
    CHECK_FALSE(PosixZoneRule::parse(rule));
}

TEST_CASE("UTC needs no tz database") {
  auto z = TimeZone::load("UTC", "/nonexistent");
  REQUIRE(z);
  CHECK(z->utc_offset(at(2026, 7, 1)) == 0s);
  CHECK(z->to_utc(at(2026, 7, 1, 3)) == at(2026, 7, 1, 3));
}
