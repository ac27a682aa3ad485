// A time zone from the tz database, read from its TZif file (RFC 8536) into an immutable value.
//
// libstdc++ 12 has no std::chrono::locate_zone, and TZ + localtime_r would change process-wide
// state under a daemon's other threads, so the file is parsed here: its 64-bit transitions and,
// for instants after the last one, the POSIX TZ rule in its footer.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace ballast::agent::reboot {

using SysSeconds = std::chrono::sys_seconds;

// The recurring rule of a POSIX TZ string ("CET-1CEST,M3.5.0,M10.5.0/3").
struct PosixZoneRule {
  struct Date {
    enum class Kind { julian_no_leap, zero_based, month_week_day } kind = Kind::month_week_day;
    int day = 0;    // Jn: 1..365; n: 0..365; M: weekday 0 (Sunday)..6
    int month = 0;  // M only: 1..12
    int week = 0;   // M only: 1..5 (5 = last)
    std::chrono::seconds time{7200};  // local time of day of the change, may be negative or > 24h
  };
  std::chrono::seconds std_offset{0};  // UTC offset (east positive) of standard time
  bool has_dst = false;
  std::chrono::seconds dst_offset{0};
  Date dst_start;  // in standard local time
  Date dst_end;    // in daylight local time

  static Result<PosixZoneRule> parse(std::string_view text);
  std::chrono::seconds offset_at(SysSeconds t) const;
};

class TimeZone {
 public:
  // `name` is a tz database name ("Europe/Berlin", "UTC"), looked up below `zoneinfo_dir`.
  static Result<TimeZone> load(const std::string& name, const std::string& zoneinfo_dir = "/usr/share/zoneinfo");
  static Result<TimeZone> parse_tzif(std::string_view data, const std::string& name);
  static TimeZone utc();

  const std::string& name() const { return name_; }
  // Offset of local time from UTC at instant t (east positive).
  std::chrono::seconds utc_offset(SysSeconds t) const;
  // The instant a local wall-clock time (given as if it were UTC) names. A time skipped by a
  // forward change is moved forward by the change (02:30 on a spring-forward night → 03:30), as
  // cron and systemd timers do; a time that occurs twice takes its first occurrence.
  SysSeconds to_utc(SysSeconds local) const;
  SysSeconds to_local(SysSeconds t) const { return t + utc_offset(t); }

 private:
  std::string name_;
  std::vector<int64_t> transitions_;     // ascending UTC seconds
  std::vector<uint8_t> transition_type_; // index into offsets_
  std::vector<int32_t> offsets_;         // UTC offset of each local time type
  bool has_rule_ = false;
  PosixZoneRule rule_;                   // for instants after the last transition
};

}  // namespace ballast::agent::reboot
