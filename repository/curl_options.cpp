#include "repository/curl_options.hpp"

namespace ballast::repository {

void apply_http_settings(CURL* handle, const std::string& url, const HttpSettings& settings, uint64_t max_recv_speed) {
  curl_easy_setopt(handle, CURLOPT_URL, url.c_str());
  curl_easy_setopt(handle, CURLOPT_PROTOCOLS_STR, "https,http,file");
  curl_easy_setopt(handle, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(handle, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(handle, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(settings.connect_timeout.count()));
  curl_easy_setopt(handle, CURLOPT_LOW_SPEED_LIMIT, static_cast<long>(settings.low_speed_limit));
  curl_easy_setopt(handle, CURLOPT_LOW_SPEED_TIME, static_cast<long>(settings.low_speed_time.count()));
  if (max_recv_speed) curl_easy_setopt(handle, CURLOPT_MAX_RECV_SPEED_LARGE, static_cast<curl_off_t>(max_recv_speed));
  if (!settings.ca_bundle.empty()) curl_easy_setopt(handle, CURLOPT_CAINFO, settings.ca_bundle.c_str());
  if (!settings.client_cert.empty()) curl_easy_setopt(handle, CURLOPT_SSLCERT, settings.client_cert.c_str());
  if (!settings.client_key.empty()) curl_easy_setopt(handle, CURLOPT_SSLKEY, settings.client_key.c_str());
}

}  // namespace ballast::repository
