// The stall rule of every repository transfer, on a clock the test controls.
#include <catch2/catch.hpp>

#include "repository/curl_options.hpp"

using namespace ballast::repository;
using namespace std::chrono_literals;

namespace {
StallDetector::Clock::time_point at(std::chrono::milliseconds t) { return StallDetector::Clock::time_point(1h + t); }
}  // namespace

TEST_CASE("a transfer that stops dead is a stall exactly low_speed_time after its last byte", "[repository][stall]") {
  StallDetector d(1000, 5s);
  CHECK_FALSE(d.observe(at(0ms), 0));
  CHECK_FALSE(d.observe(at(1000ms), 400000));  // fast, then nothing more arrives
  for (auto t = 1200ms; t < 6000ms; t += 200ms) CHECK_FALSE(d.observe(at(t), 400000));
  // libcurl's 5-second average would still see about 80 kB/s here and wait another ~5 s.
  CHECK(d.observe(at(6000ms), 400000));
  CHECK(d.stalled());
  CHECK(d.describe().find("1000 bytes/s for 5 s") != std::string::npos);
}

TEST_CASE("a slow but steady transfer above the limit is not a stall", "[repository][stall]") {
  StallDetector d(1000, 2s);
  uint64_t bytes = 0;
  for (auto t = 0ms; t <= 20000ms; t += 250ms, bytes += 300) CHECK_FALSE(d.observe(at(t), bytes));  // 1200 B/s
  // Below the limit for a whole low_speed_time: a stall.
  bool stalled = false;
  for (auto t = 20250ms; t <= 23000ms && !stalled; t += 250ms, bytes += 200) stalled = d.observe(at(t), bytes);
  CHECK(stalled);
}

TEST_CASE("a transfer held back on purpose is not a stall, and is watched afresh once released", "[repository][stall]") {
  StallDetector d(1000, 2s);
  CHECK_FALSE(d.observe(at(0ms), 0));
  d.paused = true;
  for (auto t = 500ms; t <= 5000ms; t += 500ms) CHECK_FALSE(d.observe(at(t), 0));
  d.paused = false;
  CHECK_FALSE(d.observe(at(5500ms), 0));
  CHECK_FALSE(d.observe(at(7000ms), 0));
  CHECK(d.observe(at(7500ms), 0));
}
