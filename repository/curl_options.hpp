// HttpSettings as libcurl options: the one translation every transfer of the repository's
// client goes through (the metadata client in http.cpp and the chunk fetcher alike), so a
// setting (CA bundle, client certificate, timeouts, bandwidth, stalls) cannot apply to one and not the other.
#pragma once

#include <curl/curl.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <string>
#include <utility>

#include "repository/http.hpp"

namespace ballast::repository {

// The low-speed rule (fewer than low_speed_limit bytes/s for low_speed_time is a stall), judged
// on the bytes that arrived in the last low_speed_time. libcurl's own CURLOPT_LOW_SPEED_* judges
// a speed averaged over its last five seconds, so a transfer that stops dead was noticed only
// after low_speed_time plus that average's lag (twice the time at 5 s).
class StallDetector {
 public:
  using Clock = std::chrono::steady_clock;
  StallDetector(uint64_t limit, std::chrono::seconds time) : limit_(limit), time_(time) {}
  explicit StallDetector(const HttpSettings& s) : StallDetector(s.low_speed_limit, s.low_speed_time) {}
  // `total`: the bytes received so far. True once the last low_speed_time held fewer than
  // low_speed_limit × low_speed_time of them; a paused transfer (see `paused`) never stalls.
  bool observe(Clock::time_point now, uint64_t total);
  bool stalled() const { return stalled_; }
  std::string describe() const;  // for the error that reports the stall
  bool paused = false;           // set while we hold the transfer back on purpose (bandwidth)
  CURL* handle = nullptr;        // set by apply_http_settings(); connecting is not stalling

 private:
  uint64_t limit_;
  std::chrono::seconds time_;
  std::deque<std::pair<Clock::time_point, uint64_t>> samples_;  // oldest: the newest one at least time_ old
  bool stalled_ = false;
};

// Sets `url`, the allowed protocols (https, http, file; no redirects), no signals, every field
// of `settings` on `handle`, and `stall` as its progress callback: a stalled transfer is aborted
// (CURLE_ABORTED_BY_CALLBACK, with stall.stalled() true). `max_recv_speed` replaces
// settings.max_bandwidth for a transfer whose bandwidth is limited elsewhere (0: unlimited).
void apply_http_settings(CURL* handle, const std::string& url, const HttpSettings& settings, uint64_t max_recv_speed,
                         StallDetector& stall);

}  // namespace ballast::repository
