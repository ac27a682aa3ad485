// Time behind an interface so the daemon's logic runs on a fake clock in tests.
#pragma once

#include <chrono>
#include <cstdint>

namespace ballast {

// The Unix seconds the wall clock's time_point can hold: it counts nanoseconds, from 1677 to 2262.
// A date from a peer must be checked against these before it becomes a time_point (which would
// overflow, undefined, past them).
inline constexpr int64_t kEarliestUnixSeconds =
    std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::time_point::min().time_since_epoch()).count();
inline constexpr int64_t kLatestUnixSeconds =
    std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::time_point::max().time_since_epoch()).count();

// Unix seconds as a wall-clock time_point; beyond its range, the range's end (so that a far expiry
// means "never" rather than overflowing).
inline std::chrono::system_clock::time_point time_point_of_unix_seconds(int64_t seconds) {
  if (seconds >= kLatestUnixSeconds) return std::chrono::system_clock::time_point::max();
  if (seconds <= kEarliestUnixSeconds) return std::chrono::system_clock::time_point::min();
  return std::chrono::system_clock::time_point(std::chrono::seconds(seconds));
}

class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::chrono::system_clock::time_point now() const = 0;        // wall time: expiry, windows
  virtual std::chrono::steady_clock::time_point monotonic() const = 0;  // intervals, timeouts
};

class SystemClock final : public Clock {
 public:
  std::chrono::system_clock::time_point now() const override { return std::chrono::system_clock::now(); }
  std::chrono::steady_clock::time_point monotonic() const override { return std::chrono::steady_clock::now(); }
};

// Stands still until advanced; both clocks move together.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(std::chrono::system_clock::time_point start = std::chrono::system_clock::time_point{
                         std::chrono::seconds{1'767'225'600}})  // 2026-01-01T00:00:00Z
      : wall_(start) {}
  std::chrono::system_clock::time_point now() const override { return wall_; }
  std::chrono::steady_clock::time_point monotonic() const override { return steady_; }
  void advance(std::chrono::nanoseconds d) {
    wall_ += std::chrono::duration_cast<std::chrono::system_clock::duration>(d);
    steady_ += std::chrono::duration_cast<std::chrono::steady_clock::duration>(d);
  }
  void set_wall(std::chrono::system_clock::time_point t) { wall_ = t; }

 private:
  std::chrono::system_clock::time_point wall_;
  std::chrono::steady_clock::time_point steady_{};
};

}  // namespace ballast
