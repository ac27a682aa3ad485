// When a repository request is tried again and how long to wait first: ONE policy for the
// metadata client (http.cpp) and the chunk fetcher (fetcher.cpp), within HttpSettings' limits
// (repository.retries), so a TUF file and a chunk survive the same faults.
#pragma once

#include <curl/curl.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "repository/http.hpp"

namespace ballast::repository {

// What a failed libcurl transfer means for another attempt.
enum class TransferFailure {
  transient,  // dropped connection, reset, stall, timeout: try again (and resume)
  not_found,  // a file:// URL that does not exist
  refused,    // TLS, certificate, protocol or URL problems: the same request fails again
};
TransferFailure classify_transfer_error(CURLcode rc);

// 408, 429 and 5xx are worth another attempt; any other status is final.
bool retryable_status(long status);

// The wait before retry number `attempt` (1-based): the server's Retry-After when it sent one
// (capped to settings.max_retry_after), else backoff_delay().
std::chrono::milliseconds retry_delay(const HttpSettings& settings, int attempt,
                                      const std::optional<std::chrono::seconds>& retry_after);

// base × 2^(attempt-1), capped, with up to 25 % random jitter so many hosts do not retry in lockstep.
std::chrono::milliseconds backoff_delay(int attempt, std::chrono::milliseconds base, std::chrono::milliseconds max);

// A Retry-After header value: delta-seconds or an HTTP date, relative to `now` (Unix seconds).
std::optional<std::chrono::seconds> parse_retry_after(const std::string& value, int64_t now);

// The Retry-After of a header line libcurl hands to a CURLOPT_HEADERFUNCTION, when it is one.
std::optional<std::chrono::seconds> retry_after_of_header(const std::string& line);

}  // namespace ballast::repository
