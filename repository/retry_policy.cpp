#include "repository/retry_policy.hpp"

#include <algorithm>
#include <ctime>
#include <random>

namespace ballast::repository {

TransferFailure classify_transfer_error(CURLcode rc) {
  switch (rc) {
    case CURLE_FILE_COULDNT_READ_FILE:
      return TransferFailure::not_found;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CRL_BADFILE:
      return TransferFailure::refused;
    default:
      return TransferFailure::transient;
  }
}

bool retryable_status(long status) { return status == 408 || status == 429 || status >= 500; }

std::chrono::milliseconds retry_delay(const HttpSettings& settings, int attempt,
                                      const std::optional<std::chrono::seconds>& retry_after) {
  if (retry_after) return std::min<std::chrono::milliseconds>(*retry_after, settings.max_retry_after);
  return backoff_delay(attempt, settings.backoff_base, settings.backoff_max);
}

std::chrono::milliseconds backoff_delay(int attempt, std::chrono::milliseconds base, std::chrono::milliseconds max) {
  double d = static_cast<double>(base.count());
  for (int i = 1; i < attempt && d < static_cast<double>(max.count()); ++i) d *= 2;
  d = std::min(d, static_cast<double>(max.count()));
  thread_local std::mt19937 rng(std::random_device{}());
  std::uniform_real_distribution<double> jitter(0.75, 1.0);
  return std::chrono::milliseconds(static_cast<int64_t>(d * jitter(rng)));
}

std::optional<std::chrono::seconds> parse_retry_after(const std::string& raw, int64_t now) {
  std::string v = raw;
  while (!v.empty() && (v.back() == ' ' || v.back() == '\r' || v.back() == '\n' || v.back() == '\t')) v.pop_back();
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.erase(0, 1);
  if (v.empty()) return std::nullopt;
  // A longer wait than this (31 years) is no different to the caller, which caps it anyway, and
  // must not overflow on the way there.
  constexpr int64_t kLongest = 999999999;
  if (std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    if (v.size() > 9) return std::chrono::seconds(kLongest);
    return std::chrono::seconds(std::stoll(v));
  }
  struct tm tm {};
  const char* end = strptime(v.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (!end || *end != '\0') return std::nullopt;
  int64_t at = static_cast<int64_t>(timegm(&tm));
  return std::chrono::seconds(std::clamp<int64_t>(at - now, 0, kLongest));
}

std::optional<std::chrono::seconds> retry_after_of_header(const std::string& line) {
  auto colon = line.find(':');
  if (colon == std::string::npos) return std::nullopt;
  std::string name = line.substr(0, colon);
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  if (name != "retry-after") return std::nullopt;
  return parse_retry_after(line.substr(colon + 1), static_cast<int64_t>(::time(nullptr)));
}

}  // namespace ballast::repository
