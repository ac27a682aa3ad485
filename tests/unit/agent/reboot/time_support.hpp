// Calendar helpers for the reboot strategy tests.
#pragma once

#include <chrono>

namespace ballast::testing {

// y-m-d h:m:00 UTC.
inline std::chrono::system_clock::time_point utc(int y, unsigned m, unsigned d, int h = 0, int min = 0) {
  using namespace std::chrono;
  return sys_days{year{y} / month{m} / day{d}} + hours{h} + minutes{min};
}

// y-m-d h:m:00 wall-clock time, as the seconds TimeZone::to_utc takes.
inline std::chrono::sys_seconds wall(int y, unsigned m, unsigned d, int h = 0, int min = 0) {
  return std::chrono::floor<std::chrono::seconds>(utc(y, m, d, h, min));
}

}  // namespace ballast::testing
