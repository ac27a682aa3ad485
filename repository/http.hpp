// HTTP behind an interface (real: libcurl, https and file://; fake: in memory) so the TUF
// client and the fetcher are tested without a network, and against real servers in integration.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "repository/credentials.hpp"

namespace ballast::repository {

struct HttpSettings {
  std::string ca_bundle;    // PEM file; empty: system store
  std::string client_cert;  // PEM; empty: none
  std::string client_key;
  std::chrono::milliseconds connect_timeout{15000};
  uint64_t low_speed_limit = 1024;              // bytes/s …
  std::chrono::seconds low_speed_time{30};      // … for this long counts as stalled
  uint64_t max_bandwidth = 0;                   // bytes/s, 0 = unlimited
  int retries = 5;                              // attempts after the first, with backoff
  // The retry policy's waits (repository/retry_policy.hpp), for metadata and chunks alike.
  std::chrono::milliseconds backoff_base{500};
  std::chrono::milliseconds backoff_max{30000};
  std::chrono::seconds max_retry_after{300};  // a longer Retry-After is capped to this
  // How every request is authorized (credentials.hpp); null: anonymous. A 401 asks the provider
  // to refresh and repeats the request once; a 403 is "http.forbidden" with the likely cause.
  std::shared_ptr<CredentialProvider> credentials;
  std::vector<std::string> headers;  // "Name: value" sent with every request (kBlobApiVersionHeader)
  // For a local service such as Azure's Instance Metadata Service: a limit on the whole transfer
  // (0: none) and no proxy from the environment.
  std::chrono::milliseconds total_timeout{0};
  bool no_proxy = false;
};

struct HttpResponse {
  long status = 0;  // 200 for file://
  std::string body;
};

class HttpClient {
 public:
  virtual ~HttpClient() = default;
  // GETs `url` whole. More than `max_bytes` is an error ("http.too-large") and the transfer is
  // aborted as soon as it is exceeded: never more bytes than the metadata allows.
  // 404 is an error with code "http.not-found"; other non-2xx are "http.status". Transient
  // failures (connection errors, stalls, 408, 429, 5xx) are retried per retry_policy.hpp.
  // 403 is "http.forbidden", naming the likely cause. `headers`: "Name: value" for this request.
  virtual Result<HttpResponse> get(const std::string& url, uint64_t max_bytes,
                                   const std::vector<std::string>& headers = {}) = 0;
  // POSTs `body` with `headers` ("Name: value" each). Any HTTP status is a response, not an
  // error, because the callers (FleetLock, the event outbox) act on it; only a transport failure
  // ("http.transfer") or a reply larger than `max_bytes` ("http.too-large") is an error.
  virtual Result<HttpResponse> post(const std::string& url, const std::string& body,
                                    const std::vector<std::string>& headers, uint64_t max_bytes = 1 << 20) = 0;
};

// libcurl; https, http and file:// URLs.
std::unique_ptr<HttpClient> make_curl_http_client(const HttpSettings& settings = {});

// In-memory server for unit tests: url → body (404 when absent); records every request.
// A POST is answered by `on_post` (404 when unset) and recorded in `posts`; a GET by `on_get`
// when set (its status kept as the HttpClient contract says: 404 → error, other non-2xx → error).
class FakeHttpClient final : public HttpClient {
 public:
  struct Post {
    std::string url;
    std::string body;
    std::vector<std::string> headers;
  };
  std::map<std::string, std::string> files;
  std::vector<std::string> requests;
  std::vector<std::vector<std::string>> request_headers;  // of each GET, in `requests`' order
  std::vector<Post> posts;
  std::function<Result<HttpResponse>(const Post&)> on_post;
  std::function<Result<HttpResponse>(const std::string& url, const std::vector<std::string>& headers)> on_get;
  Result<HttpResponse> get(const std::string& url, uint64_t max_bytes,
                           const std::vector<std::string>& headers = {}) override;
  Result<HttpResponse> post(const std::string& url, const std::string& body, const std::vector<std::string>& headers,
                            uint64_t max_bytes = 1 << 20) override;
};

}  // namespace ballast::repository
