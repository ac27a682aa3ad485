#include "repository/http.hpp"

#include <curl/curl.h>

#include <mutex>
#include <thread>

#include "common/log.hpp"
#include "repository/curl_library.hpp"
#include "repository/curl_options.hpp"
#include "repository/retry_policy.hpp"

namespace ballast::repository {

namespace {

void global_init_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Sink {
  std::string* body;
  uint64_t max_bytes;
  bool too_large = false;
  std::optional<std::chrono::seconds> retry_after;
};

size_t header_cb(char* ptr, size_t size, size_t nmemb, void* userdata) {
  auto* sink = static_cast<Sink*>(userdata);
  std::string line(ptr, size * nmemb);
  if (line.rfind("HTTP/", 0) == 0) sink->retry_after.reset();  // a new response
  else if (auto ra = retry_after_of_header(line)) sink->retry_after = ra;
  return size * nmemb;
}

size_t write_cb(char* ptr, size_t size, size_t nmemb, void* userdata) {
  auto* sink = static_cast<Sink*>(userdata);
  size_t n = size * nmemb;
  if (sink->body->size() + n > sink->max_bytes) {
    sink->too_large = true;
    return 0;  // aborts the transfer
  }
  sink->body->append(ptr, n);
  return n;
}

class CurlHttpClient final : public HttpClient {
 public:
  explicit CurlHttpClient(HttpSettings s) : settings_(std::move(s)) { global_init_once(); }
  ~CurlHttpClient() override {
    if (curl_) curl_easy_cleanup(curl_);
  }
  CurlHttpClient(const CurlHttpClient&) = delete;
  CurlHttpClient& operator=(const CurlHttpClient&) = delete;

  Result<HttpResponse> get(const std::string& url, uint64_t max_bytes,
                           const std::vector<std::string>& headers) override {
    bool reauthorized = false;
    for (int attempt = 1;; ++attempt) {
      Attempt a;
      Result<HttpResponse> out = perform(url, nullptr, headers, max_bytes, &a);
      if (out && credentials_rejected(out->status, out->body) && !reauthorized && settings_.credentials &&
          settings_.credentials->refresh_after_unauthorized()) {
        reauthorized = true;  // an expired token: fetch a new one and ask once more
        --attempt;
        continue;
      }
      if (out && out->status == 404) {
        out = fail("http.not-found", url + ": 404 not found");
      } else if (out && out->status == 403) {
        out = fail("http.forbidden", forbidden_message(url, out->body, settings_.credentials.get()));
      } else if (out && (out->status < 200 || out->status > 299)) {
        a.transient = retryable_status(out->status);
        out = fail("http.status", url + ": HTTP status " + std::to_string(out->status));
      }
      if (!a.transient) return out;
      if (attempt > settings_.retries)
        return with_context(out, "gave up after " + std::to_string(attempt) + " attempts");
      auto delay = retry_delay(settings_, attempt, a.retry_after);
      log::debug("metadata request failed; retrying", {{"URL", url}, {"ERROR", out.error().describe()},
                                                      {"ATTEMPT", std::to_string(attempt)}});
      std::this_thread::sleep_for(delay);
    }
  }

  Result<HttpResponse> post(const std::string& url, const std::string& body, const std::vector<std::string>& headers,
                            uint64_t max_bytes) override {
    auto out = perform(url, &body, headers, max_bytes, nullptr);
    if (out && credentials_rejected(out->status, out->body) && settings_.credentials &&
        settings_.credentials->refresh_after_unauthorized())
      out = perform(url, &body, headers, max_bytes, nullptr);
    return out;
  }

 private:
  // What one request's failure says about trying again.
  struct Attempt {
    bool transient = false;  // a transfer error retry_policy.hpp calls transient
    std::optional<std::chrono::seconds> retry_after;
  };

  Result<HttpResponse> perform(const std::string& url, const std::string* post_body,
                               const std::vector<std::string>& headers, uint64_t max_bytes,
                               Attempt* attempt) {
    // One handle for every request: curl_easy_reset() clears the options but keeps the handle's
    // open connections and TLS sessions, so a TUF refresh (timestamp, snapshot, targets, a
    // manifest...) costs one TCP and TLS handshake instead of one per file.
    // Authorized before the lock: a token request may take a while. Errors name `url`, never
    // the authorized one (a SAS token is a secret).
    Authorization auth;
    if (settings_.credentials) auth = BALLAST_TRY(settings_.credentials->authorize());
    const std::string target = with_query(url, auth.query);
    std::vector<std::string> all_headers = settings_.headers;
    all_headers.insert(all_headers.end(), auth.headers.begin(), auth.headers.end());
    all_headers.insert(all_headers.end(), headers.begin(), headers.end());
    std::lock_guard lock(mu_);
    if (!curl_) curl_ = curl_easy_init();
    if (!curl_) return fail("http.init", curl_init_error());
    CURL* curl = curl_;
    curl_easy_reset(curl);
    HttpResponse resp;
    Sink sink{&resp.body, max_bytes, false, std::nullopt};
    StallDetector stall(settings_);
    apply_http_settings(curl, target, settings_, settings_.max_bandwidth, stall);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &sink);
    curl_slist* header_list = nullptr;
    for (const auto& h : all_headers) header_list = curl_slist_append(header_list, h.c_str());
    struct FreeHeaders {
      curl_slist* l;
      ~FreeHeaders() { curl_slist_free_all(l); }
    } free_headers{header_list};
    if (header_list) curl_easy_setopt(curl, CURLOPT_HTTPHEADER, header_list);
    if (post_body) {
      curl_easy_setopt(curl, CURLOPT_POST, 1L);
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, post_body->data());
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(post_body->size()));
    }
    CURLcode rc = curl_easy_perform(curl);
    if (sink.too_large)
      return fail("http.too-large", url + " is larger than the allowed " + std::to_string(max_bytes) + " bytes");
    if (attempt) attempt->retry_after = sink.retry_after;
    if (rc != CURLE_OK) {
      switch (classify_transfer_error(rc)) {
        case TransferFailure::not_found: return fail("http.not-found", url + ": not found");
        case TransferFailure::refused: return fail("http.transfer", url + ": " + curl_easy_strerror(rc));
        case TransferFailure::transient:
          if (attempt) attempt->transient = true;
          return fail("http.transfer", url + ": " + (stall.stalled() ? stall.describe() : curl_easy_strerror(rc)));
      }
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp.status);
    if (url.rfind("file:", 0) == 0) resp.status = 200;
    return resp;
  }

  HttpSettings settings_;
  std::mutex mu_;  // a client may be shared between threads; the handle may not
  CURL* curl_ = nullptr;
};

}  // namespace

std::unique_ptr<HttpClient> make_curl_http_client(const HttpSettings& settings) {
  return std::make_unique<CurlHttpClient>(settings);
}

Result<HttpResponse> FakeHttpClient::get(const std::string& url, uint64_t max_bytes,
                                         const std::vector<std::string>& headers) {
  requests.push_back(url);
  request_headers.push_back(headers);
  if (on_get) {
    auto resp = BALLAST_TRY(on_get(url, headers));
    if (resp.status == 404) return fail("http.not-found", url + ": 404 not found");
    if (resp.status == 403) return fail("http.forbidden", forbidden_message(url, resp.body, nullptr));
    if (resp.status < 200 || resp.status > 299) return fail("http.status", url + ": HTTP status " + std::to_string(resp.status));
    if (resp.body.size() > max_bytes)
      return fail("http.too-large", url + " is larger than the allowed " + std::to_string(max_bytes) + " bytes");
    return resp;
  }
  auto it = files.find(url);
  if (it == files.end()) return fail("http.not-found", url + ": 404 not found");
  if (it->second.size() > max_bytes)
    return fail("http.too-large", url + " is larger than the allowed " + std::to_string(max_bytes) + " bytes");
  return HttpResponse{200, it->second};
}

Result<HttpResponse> FakeHttpClient::post(const std::string& url, const std::string& body,
                                          const std::vector<std::string>& headers, uint64_t max_bytes) {
  posts.push_back({url, body, headers});
  if (!on_post) return HttpResponse{404, ""};
  auto resp = BALLAST_TRY(on_post(posts.back()));
  if (resp.body.size() > max_bytes)
    return fail("http.too-large", url + " answered more than the allowed " + std::to_string(max_bytes) + " bytes");
  return resp;
}

}  // namespace ballast::repository
