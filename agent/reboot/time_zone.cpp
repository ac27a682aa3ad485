#include "agent/reboot/time_zone.hpp"

#include <algorithm>
#include <cctype>

#include "common/file.hpp"

namespace ballast::agent::reboot {

namespace chr = std::chrono;

namespace {

constexpr const char* kBad = "reboot.bad-time-zone";

// A cursor over the POSIX TZ string; every read checks the bounds.
struct Cursor {
  std::string_view s;
  size_t i = 0;
  bool done() const { return i >= s.size(); }
  char peek() const { return done() ? '\0' : s[i]; }
  bool eat(char c) {
    if (peek() != c) return false;
    ++i;
    return true;
  }
};

Result<int> parse_number(Cursor& c, int max) {
  if (!std::isdigit(static_cast<unsigned char>(c.peek()))) return fail(kBad, "a number was expected");
  int v = 0;
  while (std::isdigit(static_cast<unsigned char>(c.peek()))) {
    v = v * 10 + (c.s[c.i++] - '0');
    if (v > max) return fail(kBad, "a number is out of range");
  }
  return v;
}

Status parse_name(Cursor& c) {
  if (c.eat('<')) {
    size_t end = c.s.find('>', c.i);
    if (end == std::string_view::npos || end == c.i) return fail(kBad, "an unterminated <name>");
    c.i = end + 1;
    return ok();
  }
  size_t start = c.i;
  while (std::isalpha(static_cast<unsigned char>(c.peek()))) ++c.i;
  if (c.i - start < 3) return fail(kBad, "a zone abbreviation of at least three letters was expected");
  return ok();
}

// [+-]hh[:mm[:ss]] with hours up to `max_hours` (24 for offsets, 167 for rule times by RFC 8536).
Result<chr::seconds> parse_hms(Cursor& c, int max_hours) {
  int sign = 1;
  if (c.eat('-')) sign = -1;
  else c.eat('+');
  int h = BALLAST_TRY(parse_number(c, max_hours));
  int m = 0, s = 0;
  if (c.eat(':')) {
    m = BALLAST_TRY(parse_number(c, 59));
    if (c.eat(':')) s = BALLAST_TRY(parse_number(c, 59));
  }
  return chr::seconds{sign * (h * 3600 + m * 60 + s)};
}

Result<PosixZoneRule::Date> parse_date(Cursor& c) {
  using Kind = PosixZoneRule::Date::Kind;
  PosixZoneRule::Date d;
  if (c.eat('J')) {
    d.kind = Kind::julian_no_leap;
    d.day = BALLAST_TRY(parse_number(c, 365));
    if (d.day < 1) return fail(kBad, "Jn counts days from 1");
  } else if (c.eat('M')) {
    d.kind = Kind::month_week_day;
    d.month = BALLAST_TRY(parse_number(c, 12));
    if (d.month < 1 || !c.eat('.')) return fail(kBad, "Mm.w.d expected");
    d.week = BALLAST_TRY(parse_number(c, 5));
    if (d.week < 1 || !c.eat('.')) return fail(kBad, "Mm.w.d expected");
    d.day = BALLAST_TRY(parse_number(c, 6));
  } else {
    d.kind = Kind::zero_based;
    d.day = BALLAST_TRY(parse_number(c, 365));
  }
  if (c.eat('/')) d.time = BALLAST_TRY(parse_hms(c, 167));
  return d;
}

chr::sys_days date_in_year(const PosixZoneRule::Date& d, chr::year y) {
  using Kind = PosixZoneRule::Date::Kind;
  switch (d.kind) {
    case Kind::julian_no_leap:
      // Jn never counts 29 February, so from day 60 on a leap year is one day further.
      return chr::sys_days{y / chr::January / 1} + chr::days{d.day - 1 + (y.is_leap() && d.day >= 60 ? 1 : 0)};
    case Kind::zero_based:
      return chr::sys_days{y / chr::January / 1} + chr::days{d.day};
    case Kind::month_week_day:
      break;
  }
  auto ym = y / chr::month{static_cast<unsigned>(d.month)};
  chr::weekday wd{static_cast<unsigned>(d.day)};
  if (d.week == 5) return chr::sys_days{ym / chr::weekday_last{wd}};
  return chr::sys_days{ym / wd[static_cast<unsigned>(d.week)]};
}

uint32_t be32(std::string_view s, size_t at) {
  return (uint32_t(uint8_t(s[at])) << 24) | (uint32_t(uint8_t(s[at + 1])) << 16) |
         (uint32_t(uint8_t(s[at + 2])) << 8) | uint32_t(uint8_t(s[at + 3]));
}

int64_t be64(std::string_view s, size_t at) {
  return static_cast<int64_t>((uint64_t(be32(s, at)) << 32) | be32(s, at + 4));
}

bool valid_zone_name(const std::string& name) {
  if (name.empty() || name.size() > 255 || name.front() == '/' || name.front() == '.') return false;
  for (char ch : name)
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '/' && ch != '_' && ch != '-' && ch != '+') return false;
  return name.find("//") == std::string::npos;
}

}  // namespace

Result<PosixZoneRule> PosixZoneRule::parse(std::string_view text) {
  Cursor c{text};
  PosixZoneRule r;
  auto bad = [&](const Error& e) { return fail(kBad, "TZ rule \"" + std::string(text) + "\": " + e.message); };
  auto run = [&]() -> Status {
    BALLAST_CHECK(parse_name(c));
    // POSIX offsets count west of Greenwich as positive; UTC offsets the other way.
    r.std_offset = -BALLAST_TRY(parse_hms(c, 24));
    if (c.done()) return ok();
    r.has_dst = true;
    BALLAST_CHECK(parse_name(c));
    r.dst_offset = r.std_offset + chr::hours{1};
    if (!c.done() && c.peek() != ',') r.dst_offset = -BALLAST_TRY(parse_hms(c, 24));
    if (c.done()) {
      // No rule given: POSIX leaves it to the implementation; the tz code uses the US rule.
      r.dst_start = Date{Date::Kind::month_week_day, 0, 3, 2};
      r.dst_end = Date{Date::Kind::month_week_day, 0, 11, 1};
      return ok();
    }
    if (!c.eat(',')) return fail(kBad, "',' expected");
    r.dst_start = BALLAST_TRY(parse_date(c));
    if (!c.eat(',')) return fail(kBad, "',' expected");
    r.dst_end = BALLAST_TRY(parse_date(c));
    if (!c.done()) return fail(kBad, "trailing text");
    return ok();
  };
  if (auto st = run(); !st) return bad(st.error());
  return r;
}

chr::seconds PosixZoneRule::offset_at(SysSeconds t) const {
  if (!has_dst) return std_offset;
  // Both changes are taken in the standard-time calendar year of t; a southern-hemisphere
  // rule (start after end in the year) is daylight outside [end, start).
  chr::year y = chr::year_month_day{chr::floor<chr::days>(t + std_offset)}.year();
  SysSeconds start = date_in_year(dst_start, y) + dst_start.time - std_offset;
  SysSeconds end = date_in_year(dst_end, y) + dst_end.time - dst_offset;
  bool dst = start < end ? (t >= start && t < end) : (t < end || t >= start);
  return dst ? dst_offset : std_offset;
}

TimeZone TimeZone::utc() {
  TimeZone z;
  z.name_ = "UTC";
  z.offsets_ = {0};
  return z;
}

Result<TimeZone> TimeZone::load(const std::string& name, const std::string& zoneinfo_dir) {
  if (!valid_zone_name(name)) return fail(kBad, "\"" + name + "\" is not a time zone name");
  auto data = read_file(path_join(zoneinfo_dir, name), 1 << 20);
  if (!data) {
    if (name == "UTC" || name == "Etc/UTC") return utc();  // also without tzdata installed
    return fail(kBad, "unknown time zone \"" + name + "\" (" + data.error().describe() + ")");
  }
  return parse_tzif(*data, name);
}

Result<TimeZone> TimeZone::parse_tzif(std::string_view data, const std::string& name) {
  auto bad = [&](const std::string& why) { return fail(kBad, "time zone file " + name + ": " + why); };
  constexpr size_t kHeader = 44;
  struct Counts {
    uint32_t isut, isstd, leap, time, type, chars;
  };
  auto counts_at = [&](size_t at) -> Result<Counts> {
    if (data.size() < at + kHeader || data.substr(at, 4) != "TZif") return bad("not a TZif file");
    return Counts{be32(data, at + 20), be32(data, at + 24), be32(data, at + 28),
                  be32(data, at + 32), be32(data, at + 36), be32(data, at + 40)};
  };
  auto block_size = [](const Counts& c, size_t time_size) {
    return uint64_t(c.time) * time_size + c.time + uint64_t(c.type) * 6 + c.chars + uint64_t(c.leap) * (time_size + 4) +
           c.isstd + c.isut;
  };

  Counts c = BALLAST_TRY(counts_at(0));
  char version = data[4];
  size_t at = kHeader;
  size_t time_size = 4;
  if (version != '\0') {
    // Version 2 and later repeat the data with 64-bit times after the version 1 block.
    uint64_t skip = block_size(c, 4);
    if (skip > data.size()) return bad("truncated");
    c = BALLAST_TRY(counts_at(kHeader + skip));
    at = kHeader + skip + kHeader;
    time_size = 8;
  }
  if (c.type == 0 || c.type > 256) return bad("bad number of local time types");
  if (block_size(c, time_size) > data.size() - at) return bad("truncated");

  TimeZone z;
  z.name_ = name;
  for (uint32_t i = 0; i < c.time; ++i) {
    int64_t t = time_size == 8 ? be64(data, at + i * 8) : static_cast<int32_t>(be32(data, at + i * 4));
    if (!z.transitions_.empty() && t <= z.transitions_.back()) return bad("transitions out of order");
    z.transitions_.push_back(t);
  }
  at += c.time * time_size;
  for (uint32_t i = 0; i < c.time; ++i) {
    uint8_t idx = static_cast<uint8_t>(data[at + i]);
    if (idx >= c.type) return bad("transition to an unknown local time type");
    z.transition_type_.push_back(idx);
  }
  at += c.time;
  for (uint32_t i = 0; i < c.type; ++i) {
    int32_t off = static_cast<int32_t>(be32(data, at + i * 6));
    if (off <= -25 * 3600 || off >= 26 * 3600) return bad("UTC offset out of range");
    z.offsets_.push_back(off);
  }
  at += c.type * 6 + c.chars + uint64_t(c.leap) * (time_size + 4) + c.isstd + c.isut;

  if (version != '\0') {
    if (at >= data.size() || data[at] != '\n') return bad("missing footer");
    size_t end = data.find('\n', at + 1);
    if (end == std::string_view::npos) return bad("unterminated footer");
    std::string_view footer = data.substr(at + 1, end - at - 1);
    if (!footer.empty()) {
      auto rule = PosixZoneRule::parse(footer);
      if (!rule) return bad(rule.error().message);
      z.rule_ = *rule;
      z.has_rule_ = true;
    }
  }
  return z;
}

chr::seconds TimeZone::utc_offset(SysSeconds t) const {
  int64_t s = t.time_since_epoch().count();
  if (transitions_.empty()) return has_rule_ ? rule_.offset_at(t) : chr::seconds{offsets_[0]};
  // Before the first transition the first local time type applies (RFC 8536 3.2).
  if (s < transitions_.front()) return chr::seconds{offsets_[0]};
  if (has_rule_ && s > transitions_.back()) return rule_.offset_at(t);
  auto it = std::upper_bound(transitions_.begin(), transitions_.end(), s);
  size_t i = static_cast<size_t>(it - transitions_.begin()) - 1;
  return chr::seconds{offsets_[transition_type_[i]]};
}

SysSeconds TimeZone::to_utc(SysSeconds local) const {
  // The offsets a day either side bracket any change near `local`; a candidate is real when
  // the offset in force at the instant it names is the one it was computed with.
  chr::seconds before = utc_offset(local - chr::days{1});
  chr::seconds after = utc_offset(local + chr::days{1});
  SysSeconds a = local - before, b = local - after;
  bool a_ok = utc_offset(a) == before, b_ok = utc_offset(b) == after;
  if (a_ok && b_ok) return std::min(a, b);
  if (a_ok) return a;
  if (b_ok) return b;
  return a;  // in a gap: with the offset from before the change, the time lands after it
}

}  // namespace ballast::agent::reboot
