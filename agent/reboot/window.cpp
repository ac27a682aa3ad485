#include "agent/reboot/window.hpp"

#include <algorithm>
#include <cctype>
#include <optional>

namespace ballast::agent::reboot {

namespace chr = std::chrono;
using TimePoint = chr::system_clock::time_point;

namespace {

constexpr const char* kBad = "reboot.bad-window";
constexpr const char* kDayNames[] = {"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"};

std::string lower(std::string s) {
  for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

std::optional<unsigned> day_index(const std::string& text) {
  std::string t = lower(trim(text));
  for (unsigned i = 0; i < 7; ++i) {
    std::string full = kDayNames[i];
    if (t == full || t == full.substr(0, 3)) return i;
  }
  return std::nullopt;
}

Status add_days(const std::string& item, std::bitset<7>& days) {
  size_t dash = item.find('-');
  auto first = day_index(item.substr(0, dash));
  if (!first) return fail(kBad, "reboot.window_days: \"" + item + "\" is not a weekday or a range like Sat-Sun");
  if (dash == std::string::npos) {
    days.set(*first);
    return ok();
  }
  auto last = day_index(item.substr(dash + 1));
  if (!last) return fail(kBad, "reboot.window_days: \"" + item + "\" is not a weekday or a range like Sat-Sun");
  // A range may wrap past Sunday ("Fri-Mon").
  for (unsigned d = *first;; d = (d + 1) % 7) {
    days.set(d);
    if (d == *last) break;
  }
  return ok();
}

}  // namespace

Result<MaintenanceWindow> MaintenanceWindow::parse(const std::vector<std::string>& days, const std::string& start,
                                                   chr::milliseconds length, TimeZone zone) {
  std::bitset<7> set;
  for (const auto& entry : days) {
    size_t from = 0;
    while (from <= entry.size()) {
      size_t comma = entry.find(',', from);
      std::string item = entry.substr(from, comma == std::string::npos ? std::string::npos : comma - from);
      BALLAST_CHECK(add_days(item, set));
      if (comma == std::string::npos) break;
      from = comma + 1;
    }
  }
  if (set.none()) return fail(kBad, "reboot.window_days: no day chosen");

  auto digits = [&](size_t at) {
    return std::isdigit(static_cast<unsigned char>(start[at])) && std::isdigit(static_cast<unsigned char>(start[at + 1]));
  };
  if (start.size() != 5 || start[2] != ':' || !digits(0) || !digits(3))
    return fail(kBad, "reboot.window_start: \"" + start + "\" is not HH:MM");
  int h = std::stoi(start.substr(0, 2)), m = std::stoi(start.substr(3, 2));
  if (h > 23 || m > 59) return fail(kBad, "reboot.window_start: \"" + start + "\" is not a time of day");

  if (length <= chr::milliseconds::zero() || length > chr::days{7})
    return fail(kBad, "reboot.window_length: must be more than zero and at most a week");
  return MaintenanceWindow(set, chr::hours{h} + chr::minutes{m}, length, std::move(zone));
}

TimePoint MaintenanceWindow::start_on(chr::sys_days day) const {
  return zone_.to_utc(SysSeconds{day} + start_);
}

TimePoint MaintenanceWindow::closes_at(TimePoint t) const {
  chr::sys_days today = chr::floor<chr::days>(zone_.to_local(chr::floor<chr::seconds>(t)));
  // Windows that started on earlier days may still be open: look back as far as a length reaches.
  auto back = chr::ceil<chr::days>(length_) + chr::days{1};
  std::optional<TimePoint> close;
  for (chr::sys_days d = today - back; d <= today + chr::days{1}; d += chr::days{1}) {
    if (!on_day(chr::weekday{d})) continue;
    TimePoint s = start_on(d), e = s + length_;
    if (s <= t && t < e) close = std::max(close.value_or(e), e);
  }
  return close.value_or(t);
}

bool MaintenanceWindow::is_open(TimePoint t) const { return closes_at(t) > t; }

TimePoint MaintenanceWindow::next_opening(TimePoint t) const {
  if (is_open(t)) return t;
  chr::sys_days today = chr::floor<chr::days>(zone_.to_local(chr::floor<chr::seconds>(t)));
  std::optional<TimePoint> next;
  // A chosen weekday recurs within a week; a day either side covers offsets and DST shifts.
  for (chr::sys_days d = today - chr::days{1}; d <= today + chr::days{8}; d += chr::days{1}) {
    if (!on_day(chr::weekday{d})) continue;
    TimePoint s = start_on(d);
    if (s > t && (!next || s < *next)) next = s;
  }
  return *next;
}

}  // namespace ballast::agent::reboot
