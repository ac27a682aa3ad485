#include "repository/blob_push.hpp"

#include <curl/curl.h>
#include <openssl/evp.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <thread>

#include "common/file.hpp"
#include "common/log.hpp"
#include "repository/curl_library.hpp"
#include "repository/curl_options.hpp"
#include "repository/layout.hpp"
#include "repository/retry_policy.hpp"

namespace ballast::repository {
namespace {

namespace fs = std::filesystem;

struct Response {
  long status = 0;
  std::string body;
  std::optional<uint64_t> content_length;
  std::string content_md5;
  std::optional<std::chrono::seconds> retry_after;
};

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

size_t on_header(char* ptr, size_t size, size_t nmemb, void* userdata) {
  auto* r = static_cast<Response*>(userdata);
  std::string line(ptr, size * nmemb);
  if (line.rfind("HTTP/", 0) == 0) {
    *r = Response{};
    return size * nmemb;
  }
  if (auto ra = retry_after_of_header(line)) r->retry_after = ra;
  auto colon = line.find(':');
  if (colon == std::string::npos) return size * nmemb;
  auto name = lower(line.substr(0, colon));
  auto value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.erase(0, 1);
  while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' ')) value.pop_back();
  if (name == "content-length") r->content_length = std::strtoull(value.c_str(), nullptr, 10);
  if (name == "content-md5") r->content_md5 = value;
  return size * nmemb;
}

size_t on_body(char* ptr, size_t size, size_t nmemb, void* userdata) {
  auto* r = static_cast<Response*>(userdata);
  size_t n = size * nmemb;
  if (r->body.size() < (64 << 10)) r->body.append(ptr, std::min(n, (64 << 10) - r->body.size()));  // an error's text
  return n;
}

// Blob names are repository paths; anything but unreserved characters and '/' is escaped.
std::string escape_name(const std::string& name) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : name) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

class CurlBlobStore final : public BlobStore {
 public:
  CurlBlobStore(std::string url, HttpSettings settings) : base_(std::move(url)), settings_(std::move(settings)) {
    while (!base_.empty() && base_.back() == '/') base_.pop_back();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (std::find(settings_.headers.begin(), settings_.headers.end(), kBlobApiVersionHeader) == settings_.headers.end())
      settings_.headers.push_back(kBlobApiVersionHeader);
  }
  ~CurlBlobStore() override {
    for (auto* h : idle_) curl_easy_cleanup(h);
  }
  CurlBlobStore(const CurlBlobStore&) = delete;
  CurlBlobStore& operator=(const CurlBlobStore&) = delete;

  Result<std::optional<BlobProperties>> head(const std::string& name) override {
    auto r = BALLAST_TRY(request("HEAD", name, nullptr, {}));
    if (r.status == 404) return std::optional<BlobProperties>{};
    BALLAST_CHECK(check(r, name));
    return std::optional<BlobProperties>{BlobProperties{r.content_length.value_or(0), r.content_md5}};
  }

  Status put(const std::string& name, const std::string& bytes, const std::string& md5) override {
    auto r = BALLAST_TRY(request("PUT", name, &bytes,
                                 {"x-ms-blob-type: BlockBlob", "x-ms-blob-content-md5: " + md5,
                                  "Content-Type: application/octet-stream", "Expect:"}));
    return check(r, name);
  }

 private:
  std::string url_of(const std::string& name) const { return base_ + "/" + escape_name(name); }

  Status check(const Response& r, const std::string& name) const {
    if (r.status >= 200 && r.status <= 299) return {};
    if (r.status == 403)
      return fail("http.forbidden", forbidden_message(url_of(name), r.body, settings_.credentials.get()));
    return fail("http.status", url_of(name) + ": HTTP status " + std::to_string(r.status));
  }

  // One request with the retry policy and one refresh of rejected credentials; any final status
  // is the caller's to judge.
  Result<Response> request(const char* method, const std::string& name, const std::string* body,
                           const std::vector<std::string>& headers) {
    const std::string url = url_of(name);
    bool reauthorized = false;
    for (int attempt = 1;; ++attempt) {
      bool transient = false;
      auto r = perform(method, url, body, headers, transient);
      if (r && credentials_rejected(r->status, r->body) && !reauthorized && settings_.credentials &&
          settings_.credentials->refresh_after_unauthorized()) {
        reauthorized = true;
        --attempt;
        continue;
      }
      if (r && retryable_status(r->status)) transient = true;
      if (!transient) return r;
      if (attempt > settings_.retries) {
        if (r) return fail("http.status", url + ": HTTP status " + std::to_string(r->status) + ", gave up after " +
                                               std::to_string(attempt) + " attempts");
        return with_context(r, "gave up after " + std::to_string(attempt) + " attempts");
      }
      std::this_thread::sleep_for(retry_delay(settings_, attempt, r ? r->retry_after : std::nullopt));
    }
  }

  Result<Response> perform(const char* method, const std::string& url, const std::string* body,
                           const std::vector<std::string>& headers, bool& transient) {
    // Errors name `url`, never the authorized one (a SAS token is a secret).
    Authorization auth;
    if (settings_.credentials) auth = BALLAST_TRY(settings_.credentials->authorize());
    const std::string target = with_query(url, auth.query);
    CURL* h = acquire();
    if (!h) return fail("http.init", curl_init_error());
    struct Release {
      CurlBlobStore* self;
      CURL* h;
      ~Release() { self->release(h); }
    } release_handle{this, h};
    curl_easy_reset(h);
    // An upload receives nothing: the stall rule (on received bytes) must not judge it.
    StallDetector no_stall(0, settings_.low_speed_time);
    apply_http_settings(h, target, settings_, 0, no_stall);
    Response r;
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &r);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &r);
    curl_slist* list = nullptr;
    for (const std::vector<std::string>* group : std::initializer_list<const std::vector<std::string>*>{&settings_.headers, &auth.headers, &headers})
      for (const auto& line : *group) list = curl_slist_append(list, line.c_str());
    struct FreeList {
      curl_slist* l;
      ~FreeList() { curl_slist_free_all(l); }
    } free_list{list};
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
    if (std::string(method) == "HEAD") {
      curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else {
      curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
      curl_easy_setopt(h, CURLOPT_POSTFIELDS, body->data());
      curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body->size()));
    }
    CURLcode rc = curl_easy_perform(h);
    if (rc != CURLE_OK) {
      transient = classify_transfer_error(rc) == TransferFailure::transient;
      return fail("http.transfer", url + ": " + curl_easy_strerror(rc));
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.status);
    return r;
  }

  // Handles are kept for their connections; one per thread at a time.
  CURL* acquire() {
    {
      std::lock_guard lock(mu_);
      if (!idle_.empty()) {
        CURL* h = idle_.back();
        idle_.pop_back();
        return h;
      }
    }
    return curl_easy_init();
  }
  void release(CURL* h) {
    std::lock_guard lock(mu_);
    idle_.push_back(h);
  }

  std::string base_;
  HttpSettings settings_;
  std::mutex mu_;
  std::vector<CURL*> idle_;
};

bool versioned_metadata(const std::string& file) {
  auto dot = file.find('.');
  return dot != std::string::npos && dot > 0 &&
         std::all_of(file.begin(), file.begin() + static_cast<std::ptrdiff_t>(dot), [](unsigned char c) { return std::isdigit(c); });
}

// Every regular file below `dir/sub`, as paths relative to `dir`.
Result<std::vector<PushFile>> files_below(const std::string& dir, const std::string& sub) {
  std::vector<PushFile> out;
  std::error_code ec;
  const fs::path root(dir);
  if (!fs::exists(root / sub, ec)) return out;
  for (fs::recursive_directory_iterator it(root / sub, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    out.push_back({fs::relative(it->path(), root, ec).generic_string(), static_cast<uint64_t>(it->file_size(ec))});
  }
  if (ec) return fail("push.read", "cannot list " + (root / sub).string() + ": " + ec.message());
  std::sort(out.begin(), out.end(), [](const PushFile& a, const PushFile& b) { return a.name < b.name; });
  return out;
}

}  // namespace

std::unique_ptr<BlobStore> make_blob_store(std::string container_url, HttpSettings settings) {
  return std::make_unique<CurlBlobStore>(std::move(container_url), std::move(settings));
}

Status check_container_url(const std::string& url) {
  auto bad = [&](const std::string& why) {
    return fail("push.bad-url", url + " is not a container URL (https://ACCOUNT.blob.core.windows.net/CONTAINER[/PREFIX]): " + why);
  };
  std::string rest;
  if (url.rfind("https://", 0) == 0) rest = url.substr(8);
  else if (url.rfind("http://", 0) == 0) rest = url.substr(7);
  else return bad("the scheme must be https");
  if (url.find_first_of("?#") != std::string::npos) return bad("no query or fragment (a SAS goes in --sas-token-file)");
  auto slash = rest.find('/');
  if (slash == 0 || rest.empty()) return bad("no host");
  if (slash == std::string::npos || rest.find_first_not_of('/', slash) == std::string::npos) return bad("no container");
  return {};
}

Result<std::vector<std::vector<PushFile>>> push_phases(const std::string& dir) {
  const std::string metadata = layout::metadata_dir(dir);
  std::error_code ec;
  if (!fs::is_directory(metadata, ec))
    return fail("push.not-a-repository", dir + " is not a repository: it has no metadata/ directory");
  if (!fs::is_regular_file(metadata + "/timestamp.json", ec))
    return fail("push.no-timestamp", dir + " has no metadata/timestamp.json: sign one with `ballast repo timestamp`");
  std::vector<std::vector<PushFile>> phases(5);
  const std::string chunks_prefix = "targets/chunks/";
  for (auto& f : BALLAST_TRY(files_below(dir, "targets")))
    phases[f.name.rfind(chunks_prefix, 0) == 0 ? 0 : 1].push_back(std::move(f));
  for (auto& f : BALLAST_TRY(files_below(dir, "metadata"))) {
    const std::string file = f.name.substr(std::string("metadata/").size());
    size_t phase = file == "timestamp.json" ? 4 : versioned_metadata(file) ? 2 : 3;
    phases[phase].push_back(std::move(f));
  }
  return phases;
}

std::string content_md5(const std::string& bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &len, EVP_md5(), nullptr);
  unsigned char out[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
  int n = EVP_EncodeBlock(out, digest, static_cast<int>(len));
  return std::string(reinterpret_cast<char*>(out), static_cast<size_t>(n));
}

Result<PushSummary> push_repository(const std::string& dir, BlobStore& store, const PushOptions& options) {
  auto phases = BALLAST_TRY(push_phases(dir));
  PushProgress progress;
  for (const auto& phase : phases)
    for (const auto& f : phase) progress.total_bytes += f.bytes;
  PushSummary summary;
  std::mutex mu;  // guards progress, summary, first_error
  std::optional<Error> first_error;

  auto push_one = [&](const PushFile& f) -> Status {
    auto bytes = BALLAST_TRY(read_file(path_join(dir, f.name), uint64_t{1} << 40));
    auto md5 = content_md5(bytes);
    auto existing = BALLAST_TRY(store.head(f.name));
    bool same = existing && existing->length == bytes.size() && existing->content_md5 == md5;
    if (!same) BALLAST_CHECK(store.put(f.name, bytes, md5));
    std::lock_guard lock(mu);
    progress.done_bytes += bytes.size();
    (same ? progress.skipped : progress.uploaded) += 1;
    (same ? summary.skipped : summary.uploaded) += 1;
    (same ? summary.skipped_bytes : summary.uploaded_bytes) += bytes.size();
    log::debug(same ? "blob unchanged, skipped" : "blob uploaded", {{"BLOB", f.name}});
    if (options.on_progress) options.on_progress(progress);
    return {};
  };

  for (const auto& phase : phases) {
    std::atomic<size_t> next{0};
    auto worker = [&] {
      for (size_t i; (i = next.fetch_add(1)) < phase.size();) {
        {
          std::lock_guard lock(mu);
          if (first_error) return;
        }
        auto st = push_one(phase[i]);
        if (!st) {
          std::lock_guard lock(mu);
          if (!first_error) first_error = st.error();
          return;
        }
      }
    };
    const size_t n = std::min<size_t>(std::max(1u, options.parallel), phase.size());
    std::vector<std::thread> threads;
    for (size_t t = 1; t < n; ++t) threads.emplace_back(worker);
    worker();
    for (auto& t : threads) t.join();
    if (first_error) return tl::unexpected(*first_error);
  }
  return summary;
}

Result<std::optional<BlobProperties>> FakeBlobStore::head(const std::string& name) {
  std::lock_guard lock(mu_);
  auto it = blobs.find(name);
  if (it == blobs.end()) return std::optional<BlobProperties>{};
  return std::optional<BlobProperties>{BlobProperties{it->second.first.size(), it->second.second}};
}

Status FakeBlobStore::put(const std::string& name, const std::string& bytes, const std::string& md5) {
  std::lock_guard lock(mu_);
  if (name == fail_put) return fail("http.status", name + ": HTTP status 500");
  puts.push_back(name);
  blobs[name] = {bytes, md5};
  return {};
}

}  // namespace ballast::repository
