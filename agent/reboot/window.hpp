// Maintenance windows for the periodic reboot strategy: on chosen weekdays, from a local start
// time, for a length, in a time zone. A window belongs to the day it starts on and may run past
// midnight; its length is elapsed time, so a window spanning a DST change is as long as configured.
#pragma once

#include <bitset>
#include <chrono>
#include <string>
#include <vector>

#include "agent/reboot/time_zone.hpp"
#include "common/result.hpp"

namespace ballast::agent::reboot {

class MaintenanceWindow {
 public:
  // days: items such as "Mon", "Sat-Sun", "Fri-Mon" or "Mon,Wed" (names or three-letter
  // abbreviations, any case); start: "HH:MM"; length: more than zero, at most a week.
  static Result<MaintenanceWindow> parse(const std::vector<std::string>& days, const std::string& start,
                                         std::chrono::milliseconds length, TimeZone zone);

  bool is_open(std::chrono::system_clock::time_point t) const;
  // The start of the next window after t; t itself when a window is open at t.
  std::chrono::system_clock::time_point next_opening(std::chrono::system_clock::time_point t) const;
  // When the window open at t closes; t itself when none is open.
  std::chrono::system_clock::time_point closes_at(std::chrono::system_clock::time_point t) const;

  bool on_day(std::chrono::weekday d) const { return days_[d.c_encoding()]; }
  std::chrono::minutes start() const { return start_; }
  std::chrono::milliseconds length() const { return length_; }
  const TimeZone& zone() const { return zone_; }

 private:
  MaintenanceWindow(std::bitset<7> days, std::chrono::minutes start, std::chrono::milliseconds length, TimeZone zone)
      : days_(days), start_(start), length_(length), zone_(std::move(zone)) {}
  // The instant the window of local calendar day `day` starts (whether or not that day is chosen).
  std::chrono::system_clock::time_point start_on(std::chrono::sys_days day) const;

  std::bitset<7> days_;  // by weekday, Sunday = 0
  std::chrono::minutes start_;
  std::chrono::milliseconds length_;
  TimeZone zone_;
};

}  // namespace ballast::agent::reboot
