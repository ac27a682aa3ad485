#include "repository/curl_options.hpp"

namespace ballast::repository {

bool StallDetector::observe(Clock::time_point now, uint64_t total) {
  if (paused || limit_ == 0 || time_.count() == 0) {
    samples_.clear();
    return false;
  }
  samples_.emplace_back(now, total);
  while (samples_.size() > 2 && samples_[1].first <= now - time_) samples_.pop_front();
  const auto& [since, then] = samples_.front();
  if (since > now - time_) return false;  // not watched for a whole low_speed_time yet
  stalled_ = total - then < limit_ * static_cast<uint64_t>(time_.count());
  return stalled_;
}

std::string StallDetector::describe() const {
  return "stalled: fewer than " + std::to_string(limit_) + " bytes/s for " + std::to_string(time_.count()) +
         " s (repository.low_speed_limit, repository.low_speed_time)";
}

namespace {

int on_progress(void* ud, curl_off_t, curl_off_t dlnow, curl_off_t, curl_off_t) {
  auto* stall = static_cast<StallDetector*>(ud);
  // Connecting and the TLS handshake have their own timeout (connect_timeout).
  curl_off_t pretransfer = 0;
  if (curl_easy_getinfo(stall->handle, CURLINFO_PRETRANSFER_TIME_T, &pretransfer) != CURLE_OK || pretransfer == 0)
    return 0;
  return stall->observe(StallDetector::Clock::now(), static_cast<uint64_t>(dlnow)) ? 1 : 0;
}

}  // namespace

void apply_http_settings(CURL* handle, const std::string& url, const HttpSettings& settings, uint64_t max_recv_speed,
                         StallDetector& stall) {
  curl_easy_setopt(handle, CURLOPT_URL, url.c_str());
  curl_easy_setopt(handle, CURLOPT_PROTOCOLS_STR, "https,http,file");
  curl_easy_setopt(handle, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(handle, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(handle, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(settings.connect_timeout.count()));
  curl_easy_setopt(handle, CURLOPT_XFERINFOFUNCTION, &on_progress);
  stall.handle = handle;
  curl_easy_setopt(handle, CURLOPT_XFERINFODATA, &stall);
  curl_easy_setopt(handle, CURLOPT_NOPROGRESS, 0L);
  if (max_recv_speed) curl_easy_setopt(handle, CURLOPT_MAX_RECV_SPEED_LARGE, static_cast<curl_off_t>(max_recv_speed));
  if (!settings.ca_bundle.empty()) curl_easy_setopt(handle, CURLOPT_CAINFO, settings.ca_bundle.c_str());
  if (!settings.client_cert.empty()) curl_easy_setopt(handle, CURLOPT_SSLCERT, settings.client_cert.c_str());
  if (!settings.client_key.empty()) curl_easy_setopt(handle, CURLOPT_SSLKEY, settings.client_key.c_str());
  if (settings.total_timeout.count() > 0)
    curl_easy_setopt(handle, CURLOPT_TIMEOUT_MS, static_cast<long>(settings.total_timeout.count()));
  if (settings.no_proxy) curl_easy_setopt(handle, CURLOPT_NOPROXY, "*");
}

}  // namespace ballast::repository
