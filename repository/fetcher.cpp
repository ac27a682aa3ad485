#include "repository/fetcher.hpp"

#include <curl/curl.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <set>
#include <mutex>
#include <thread>
#include <vector>

#include "common/fd.hpp"
#include "common/file.hpp"
#include "common/log.hpp"
#include "common/mirrored_ring.hpp"
#include "repository/chunk_codec.hpp"
#include "repository/curl_library.hpp"
#include "repository/curl_options.hpp"

namespace ballast::repository {

using namespace std::chrono_literals;

namespace {

using SteadyClock = std::chrono::steady_clock;

void curl_init_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

class Stream;

// One HTTP request for (the rest of) one chunk.
struct Transfer {
  Stream* owner = nullptr;
  std::string sha;
  uint64_t size = 0;
  bool is_file = false;
  CURL* easy = nullptr;
  UniqueFd part;
  std::string data;     // the chunk's bytes so far, including a resumed prefix
  uint64_t offset = 0;  // bytes we already had when this request started
  bool checked = false, error_body = false, too_large = false, bad_range = false, write_failed = false;
  int write_errno = 0;
  long status = 0;
  std::optional<std::chrono::seconds> retry_after;
  int64_t range_start = -1;
  StallDetector stall{0, std::chrono::seconds(0)};
  char errbuf[CURL_ERROR_SIZE] = {};
  std::string error_text;  // the start of an error page: its Azure error code names a 403's cause
  bool reauthorized = false;
  struct HeaderList {
    curl_slist* list = nullptr;
    ~HeaderList() { curl_slist_free_all(list); }
  } headers;  // outlives the easy handle: destroyed with the Transfer after curl_easy_cleanup
};

struct Retry {
  std::string sha;
  SteadyClock::time_point at;
};

class Stream final : public ArtifactStream {
 public:
  Stream(Artifact art, FetchOptions o) : art_(std::move(art)), o_(std::move(o)) {
    if (o_.parallel == 0) o_.parallel = 1;
    if (o_.window == 0) o_.window = 4 * static_cast<size_t>(o_.parallel);
    o_.window = std::max<size_t>(o_.window, o_.parallel);
  }

  ~Stream() override {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
    }
    if (multi_) curl_multi_wakeup(multi_);
    if (thread_.joinable()) thread_.join();
    for (auto& [easy, t] : active_) {
      curl_multi_remove_handle(multi_, easy);
      curl_easy_cleanup(easy);
    }
    active_.clear();
    if (multi_) curl_multi_cleanup(multi_);
  }

  Status start() {
    BALLAST_CHECK(make_dirs(o_.cache_dir, 0700));
    uint64_t total = 0, largest = 0;
    for (const auto& c : art_.chunks) {
      total += c.usize;
      largest = std::max(largest, c.usize);
      chunk_end_.push_back(total);
    }
    // Room for the history plus the decoded read-ahead: the decoder can always place the next
    // chunk once the reader has caught up, so it never waits for ever.
    uint64_t ahead = o_.window_bytes ? std::max<uint64_t>(o_.window_bytes, largest) : o_.window * largest;
    uint64_t room = art_.history + std::min(total, std::max<uint64_t>(ahead, largest));
    ring_.emplace(BALLAST_TRY(with_context(MirroredRing::create(static_cast<size_t>(room)),
                                           "allocating the decoded stream's buffer")));
    stats_.ring_bytes = ring_->capacity();
    curl_init_once();
    multi_ = curl_multi_init();
    if (!multi_) return fail("fetch.init", curl_init_error());
    curl_multi_setopt(multi_, CURLMOPT_PIPELINING, o_.http2 ? CURLPIPE_MULTIPLEX : CURLPIPE_NOTHING);
    curl_multi_setopt(multi_, CURLMOPT_MAX_HOST_CONNECTIONS, static_cast<long>(o_.parallel));
    started_ = SteadyClock::now();
    thread_ = std::thread([this] { run(); });
    return ok();
  }

  Result<size_t> read(void* buf, size_t len) override {
    std::unique_lock lk(mu_);
    for (;;) {
      if (error_) return tl::unexpected<Error>(*error_);
      if (read_pos_ < decoded_) break;
      if (read_pos_ == chunk_end_.back()) return 0;
      cv_.wait(lk);
    }
    size_t n = static_cast<size_t>(std::min<uint64_t>(len, decoded_ - read_pos_));
    const char* from = ring_->at(read_pos_);
    lk.unlock();
    std::memcpy(buf, from, n);  // the decoder never writes over [read_pos_, decoded_)
    lk.lock();
    read_pos_ += n;
    while (next_read_ < chunk_end_.size() && chunk_end_[next_read_] <= read_pos_) {
      bytes_ahead_ -= held_bytes(next_read_);
      ++next_read_;
    }
    lk.unlock();
    curl_multi_wakeup(multi_);  // ring space or the window moved: more may decode or start
    return n;
  }

  FetchStats stats() const override {
    std::lock_guard lk(mu_);
    return stats_;
  }

  Status discard_cache() override {
    std::set<std::string> shas;
    for (const auto& c : art_.chunks) shas.insert(c.sha256);
    for (const auto& s : shas) {
      BALLAST_CHECK(remove_if_exists(path_join(o_.cache_dir, s)));
      BALLAST_CHECK(remove_if_exists(path_join(o_.cache_dir, s + ".part")));
    }
    return ok();
  }

  // libcurl callbacks
  static size_t on_header(char* p, size_t size, size_t n, void* ud) {
    auto* t = static_cast<Transfer*>(ud);
    std::string line(p, size * n);
    if (line.rfind("HTTP/", 0) == 0) {  // a new response (after 100 Continue or similar)
      t->retry_after.reset();
      t->range_start = -1;
    } else if (auto ra = retry_after_of_header(line)) {
      t->retry_after = ra;
    } else if (auto colon = line.find(':'); colon != std::string::npos) {
      std::string name = line.substr(0, colon);
      std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
      std::string value = line.substr(colon + 1);
      if (name == "content-range") {
        auto b = value.find("bytes ");
        if (b != std::string::npos) t->range_start = std::strtoll(value.c_str() + b + 6, nullptr, 10);
      }
    }
    return size * n;
  }

  static size_t on_body(char* p, size_t size, size_t n, void* ud) {
    auto* t = static_cast<Transfer*>(ud);
    size_t len = size * n;
    if (!t->checked) {
      t->checked = true;
      curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &t->status);
      if (t->is_file) {
        t->status = t->offset ? 206 : 200;
      } else if (t->status == 206) {
        if (t->offset == 0 || t->range_start != static_cast<int64_t>(t->offset)) {
          t->bad_range = true;
          return 0;
        }
      } else if (t->status == 200) {
        if (t->offset > 0) {
          // The server ignored the Range: start the chunk over.
          t->data.clear();
          t->offset = 0;
          if (::ftruncate(t->part.get(), 0) != 0) {
            t->write_failed = true;
            t->write_errno = errno;
            return 0;
          }
        }
      } else {
        t->error_body = true;
      }
    }
    if (t->error_body) {  // an error page: its start kept for the error, the rest ignored
      if (t->error_text.size() < 4096) t->error_text.append(p, std::min<size_t>(len, 4096 - t->error_text.size()));
      return len;
    }
    if (!t->owner->take_bandwidth(len)) {
      t->stall.paused = true;  // held back on purpose: not a stall
      return CURL_WRITEFUNC_PAUSE;  // libcurl hands the same bytes again once unpaused
    }
    if (t->data.size() + len > t->size) {
      t->too_large = true;
      return 0;  // aborts the transfer: never more than the manifest's length
    }
    const char* q = p;
    size_t left = len;
    while (left > 0) {
      ssize_t w = ::write(t->part.get(), q, left);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        t->write_failed = true;
        t->write_errno = errno;
        return 0;
      }
      q += w;
      left -= static_cast<size_t>(w);
    }
    t->data.append(p, len);
    t->owner->count_network(len);
    return len;
  }

  // The whole artifact's bandwidth budget (repository.max_bandwidth), shared by every transfer:
  // libcurl's limit is per transfer, and each new chunk's transfer started with a burst.
  bool take_bandwidth(size_t n) {
    const uint64_t limit = o_.http.max_bandwidth;
    if (!limit) return true;
    const double elapsed = std::chrono::duration<double>(SteadyClock::now() - started_).count();
    // One write's worth of slack so that a transfer can always make progress.
    const double allowed = static_cast<double>(limit) * elapsed + CURL_MAX_WRITE_SIZE;
    if (static_cast<double>(bandwidth_used_ + n) > allowed) return false;
    bandwidth_used_ += n;
    return true;
  }

  void count_network(size_t n) {
    std::lock_guard lk(mu_);
    stats_.network_bytes += n;
  }

 private:
  std::string cache_path(const std::string& sha, bool part) const {
    return path_join(o_.cache_dir, part ? sha + ".part" : sha);
  }

  const ChunkRef& ref(size_t index) const { return art_.chunks[index]; }
  // A chunk's share of the window: its compressed bytes while fetched, its plain bytes once decoded.
  uint64_t held_bytes(size_t index) const { return std::max(ref(index).size, ref(index).usize); }

  void set_error(Error e) {
    std::lock_guard lk(mu_);
    if (!error_) error_ = std::move(e);
    cv_.notify_all();
  }

  bool stopping() {
    std::lock_guard lk(mu_);
    return stop_ || error_.has_value();
  }

  // The thread's loop: keep up to `parallel` transfers running within the reader's window.
  void run() {
    const size_t n = art_.chunks.size();
    auto last_progress = SteadyClock::now() - 1s;
    while (!stopping()) {
      size_t reader;
      {
        std::lock_guard lk(mu_);
        reader = next_read_;
      }
      if (!decode_ready()) return;
      auto now = SteadyClock::now();
      // Retries that are due go first: they hold back the reader.
      std::sort(retries_.begin(), retries_.end(), [&](const Retry& a, const Retry& b) {
        return first_index(a.sha) < first_index(b.sha);
      });
      for (auto it = retries_.begin(); it != retries_.end() && active_.size() < o_.parallel;) {
        if (it->at <= now) {
          std::string sha = it->sha;
          it = retries_.erase(it);
          if (!launch(sha)) return;
        } else {
          ++it;
        }
      }
      while (next_start_ < n && next_start_ < reader + o_.window && active_.size() + retries_.size() < o_.parallel) {
        {
          std::lock_guard lk(mu_);
          uint64_t want = held_bytes(next_start_);
          // The chunk the reader waits for always starts, however large.
          if (o_.window_bytes && next_start_ > next_read_ && bytes_ahead_ + want > o_.window_bytes) break;
          bytes_ahead_ += want;
          stats_.peak_bytes_ahead = std::max(stats_.peak_bytes_ahead, bytes_ahead_);
        }
        if (!schedule(next_start_++)) return;
      }
      for (auto& [easy, t] : active_) {
        if (!t->stall.paused) continue;
        t->stall.paused = false;
        curl_easy_pause(easy, CURLPAUSE_CONT);  // may deliver, or pause again at once
      }
      int running = 0;
      curl_multi_perform(multi_, &running);
      int left = 0;
      while (CURLMsg* m = curl_multi_info_read(multi_, &left)) {
        if (m->msg != CURLMSG_DONE) continue;
        CURL* easy = m->easy_handle;
        CURLcode rc = m->data.result;
        auto node = active_.extract(easy);
        curl_multi_remove_handle(multi_, easy);
        if (!finish(*node.mapped(), rc)) {
          curl_easy_cleanup(easy);
          return;
        }
        curl_easy_cleanup(easy);
      }
      now = SteadyClock::now();
      if (delivered_ == n) return;
      if (now - last_progress >= 200ms) {
        report_progress(false);
        last_progress = now;
      }
      // A transfer held back for bandwidth goes on as soon as the budget has grown by a write.
      bool held_back = std::any_of(active_.begin(), active_.end(), [](const auto& a) { return a.second->stall.paused; });
      int timeout_ms = held_back ? 10 : 200;
      for (const auto& r : retries_) {
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(r.at - now).count();
        timeout_ms = static_cast<int>(std::clamp<int64_t>(ms, 0, timeout_ms));
      }
      curl_multi_poll(multi_, nullptr, 0, timeout_ms, nullptr);
    }
  }

  size_t first_index(const std::string& sha) const {
    auto it = waiting_.find(sha);
    return it == waiting_.end() || it->second.empty() ? SIZE_MAX : it->second.front();
  }

  // Starts chunk `index`: shares a fetch of the same bytes already under way, reuses a verified
  // cached copy, or downloads (resuming a partial copy).
  bool schedule(size_t index) {
    const ChunkRef& c = ref(index);
    auto [it, fresh] = waiting_.try_emplace(c.sha256);
    it->second.push_back(index);
    if (!fresh) return true;
    std::string path = cache_path(c.sha256, false);
    if (path_exists(path)) {
      auto data = read_file(path, c.size + 1);
      if (data && data->size() == c.size && sha256_hex(*data) == c.sha256) {
        {
          std::lock_guard lk(mu_);
          stats_.cache_bytes += c.size;
          stats_.chunks_from_cache++;
        }
        return deliver(c.sha256, std::move(*data));
      }
      log::warning("discarding a corrupt cached chunk", {{"CHUNK", c.sha256}});
      (void)remove_if_exists(path);
    }
    // A process killed after the last byte arrived but before the rename left a complete part.
    std::string part = cache_path(c.sha256, true);
    if (auto data = read_file(part, c.size + 1); data && data->size() == c.size) {
      if (sha256_hex(*data) == c.sha256 && ::rename(part.c_str(), path.c_str()) == 0) {
        {
          std::lock_guard lk(mu_);
          stats_.cache_bytes += c.size;
          stats_.chunks_from_cache++;
        }
        return deliver(c.sha256, std::move(*data));
      }
      (void)remove_if_exists(part);
    }
    return launch(c.sha256);
  }

  bool launch(const std::string& sha) {
    const ChunkRef& c = ref(first_index(sha));
    auto t = std::make_unique<Transfer>();
    t->reauthorized = reauthorized_.count(sha) > 0;
    t->owner = this;
    t->sha = sha;
    t->size = c.size;
    std::string part = cache_path(sha, true);
    // A partial copy from an earlier attempt or process: keep it and ask for the rest.
    auto have = read_file(part, c.size + 1);
    if (have && have->size() < c.size) {
      t->data = std::move(*have);
    } else {
      (void)remove_if_exists(part);
    }
    t->part = UniqueFd(::open(part.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
    if (!t->part) {
      set_error(Error{"fetch.cache-write", "cannot open " + part, errno, {}});
      return false;
    }
    if (!t->data.empty() && t->data.size() != static_cast<uint64_t>(::lseek(t->part.get(), 0, SEEK_END))) {
      set_error(Error{"fetch.cache-write", "partial chunk " + part + " changed while being read", 0, {}});
      return false;
    }
    t->offset = t->data.size();
    t->data.reserve(c.size);  // one exact buffer, not a doubling one
    {
      std::lock_guard lk(mu_);
      stats_.cache_bytes += t->offset;
      stats_.requests++;
    }
    std::string url = o_.chunk_base_url + sha;
    t->is_file = url.rfind("file:", 0) == 0;
    Authorization auth;
    if (o_.http.credentials) {
      auto a = o_.http.credentials->authorize();
      if (!a) {
        set_error(std::move(a.error()));
        return false;
      }
      auth = std::move(*a);
    }
    for (const auto* list : {&o_.http.headers, &auth.headers})
      for (const auto& h : *list) t->headers.list = curl_slist_append(t->headers.list, h.c_str());
    CURL* e = curl_easy_init();
    if (!e) {
      set_error(Error{"fetch.init", curl_init_error(), 0, {}});
      return false;
    }
    t->easy = e;
    // The bandwidth budget is the artifact's, not each transfer's (take_bandwidth).
    t->stall = StallDetector(o_.http);
    apply_http_settings(e, with_query(url, auth.query), o_.http, 0, t->stall);
    if (t->headers.list) curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers.list);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &Stream::on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t.get());
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &Stream::on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, t.get());
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, o_.http2 ? CURL_HTTP_VERSION_2TLS : CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_PIPEWAIT, o_.http2 ? 1L : 0L);
    if (t->offset > 0) {
      std::string range = std::to_string(t->offset) + "-" + std::to_string(c.size - 1);
      curl_easy_setopt(e, CURLOPT_RANGE, range.c_str());  // libcurl copies it
    }
    curl_multi_add_handle(multi_, e);
    active_.emplace(e, std::move(t));
    return true;
  }

  // Handles a finished request; false after a fatal error.
  bool finish(Transfer& t, CURLcode rc) {
    long version = 0;
    curl_easy_getinfo(t.easy, CURLINFO_HTTP_VERSION, &version);
    if (version) {
      std::lock_guard lk(mu_);
      stats_.http_versions.insert(version);
    }
    std::string url = o_.chunk_base_url + t.sha;
    std::string part = cache_path(t.sha, true);
    if (t.write_failed) {
      set_error(Error{"fetch.cache-write", "cannot write " + part, t.write_errno, {}});
      return false;
    }
    if (t.too_large) {
      (void)remove_if_exists(part);
      return retry(t, "fetch.too-large", "the server sent more than the manifest's " + std::to_string(t.size) + " bytes");
    }
    if (t.bad_range) {
      (void)remove_if_exists(part);
      return retry(t, "fetch.bad-range", "the server answered the Range request with other bytes");
    }
    if (!t.checked && rc == CURLE_OK) {  // an empty body: status not yet looked at
      curl_easy_getinfo(t.easy, CURLINFO_RESPONSE_CODE, &t.status);
      if (t.is_file) t.status = 200;
    }
    if (rc != CURLE_OK) {
      std::string why = t.stall.stalled() ? t.stall.describe() : t.errbuf[0] ? t.errbuf : curl_easy_strerror(rc);
      switch (classify_transfer_error(rc)) {
        case TransferFailure::not_found:
          set_error(Error{"fetch.not-found", url + ": not found", 0, {}});
          return false;
        case TransferFailure::refused:
          set_error(Error{"fetch.tls", url + ": " + why, 0, {}});
          return false;
        case TransferFailure::transient:
          // Dropped connections, stalls (low-speed timeout), resets: keep what arrived and resume.
          return retry(t, "fetch.failed", why);
      }
    }
    // A final answer leaves no empty part behind: the cache holds chunks, not placeholders.
    if (t.data.empty() && (t.status < 200 || t.status > 299) && !retryable_status(t.status))
      (void)remove_if_exists(part);
    if (credentials_rejected(t.status, t.error_text) && o_.http.credentials && !t.reauthorized &&
        o_.http.credentials->refresh_after_unauthorized()) {
      reauthorized_.insert(t.sha);
      return retry(t, "fetch.unauthorized", "HTTP status " + std::to_string(t.status) + " (credentials refreshed)");
    }
    if (t.status == 403) {
      set_error(Error{"fetch.forbidden", forbidden_message(url, t.error_text, o_.http.credentials.get()), 0, {}});
      return false;
    }
    if (t.status == 404 || t.status == 410) {
      set_error(Error{"fetch.not-found", url + ": HTTP " + std::to_string(t.status), 0, {}});
      return false;
    }
    if (retryable_status(t.status))
      return retry(t, "fetch.failed", "HTTP status " + std::to_string(t.status));
    if (t.status < 200 || t.status > 299) {
      set_error(Error{"fetch.status", url + ": HTTP status " + std::to_string(t.status), 0, {}});
      return false;
    }
    if (t.data.size() < t.size)  // a short response: the next request asks for the rest
      return retry(t, "fetch.short", "the response ended after " + std::to_string(t.data.size()) + " of " +
                                         std::to_string(t.size) + " bytes");
    if (sha256_hex(t.data) != t.sha) {
      (void)remove_if_exists(part);
      return retry(t, "fetch.hash-mismatch", "the chunk's bytes do not match its sha256");
    }
    t.part.reset();
    if (::rename(part.c_str(), cache_path(t.sha, false).c_str()) != 0) {
      set_error(Error{"fetch.cache-write", "cannot rename " + part, errno, {}});
      return false;
    }
    return deliver(t.sha, std::move(t.data));
  }

  bool retry(Transfer& t, const std::string& code, const std::string& why) {
    int attempt = ++attempts_[t.sha];
    log::debug("chunk fetch failed", {{"CHUNK", t.sha}, {"ERROR", why}, {"ATTEMPT", std::to_string(attempt)}});
    if (attempt > o_.http.retries) {
      set_error(Error{code, "chunk " + t.sha + ": " + why + " (gave up after " + std::to_string(attempt) + " attempts)", 0, {}});
      return false;
    }
    std::chrono::milliseconds delay = retry_delay(o_.http, attempt, t.retry_after);
    retries_.push_back({t.sha, SteadyClock::now() + delay});
    std::lock_guard lk(mu_);
    stats_.retries++;
    return true;
  }

  // A verified chunk: hand it to every position that lists it, then decode what it allows.
  bool deliver(const std::string& sha, std::string compressed) {
    auto idx = waiting_.extract(sha);
    auto shared = std::make_shared<const std::string>(std::move(compressed));
    for (size_t i : idx.mapped()) verified_[i] = shared;
    return decode_ready();
  }

  // Decompresses, in stream order and straight into the ring, every verified chunk that fits
  // beside the bytes the reader has yet to take and the history the next chunk needs (the
  // stream's last `history` bytes, which the ring holds contiguously just behind the head).
  bool decode_ready() {
    while (true) {
      auto it = verified_.find(next_decode_);
      if (it == verified_.end()) break;
      const ChunkRef& c = ref(next_decode_);
      uint64_t head = next_decode_ ? chunk_end_[next_decode_ - 1] : 0;
      uint64_t history = std::min<uint64_t>(head, art_.history);
      uint64_t keep_from;
      {
        std::lock_guard lk(mu_);
        keep_from = std::min(read_pos_, head - history);
      }
      if (head + c.usize - keep_from > ring_->capacity()) break;  // the reader frees room first
      auto st = decompress_chunk_into(*it->second, c.usize,
                                      std::string_view(ring_->at(head - history), static_cast<size_t>(history)),
                                      ring_->at(head));
      if (!st) {
        set_error(with_context(st, "chunk " + c.sha256).error());
        return false;
      }
      verified_.erase(it);
      // The last report goes out before the reader can see the end of the stream.
      if (next_decode_ + 1 == art_.chunks.size()) report_progress(true);
      std::lock_guard lk(mu_);
      decoded_ = head + c.usize;
      done_bytes_ += c.size;
      ++delivered_;
      ++next_decode_;
      cv_.notify_all();
    }
    return true;
  }

  void report_progress(bool final) {
    if (!o_.progress) return;
    FetchProgress p;
    auto now = SteadyClock::now();
    uint64_t in_flight = 0;
    for (const auto& [e, t] : active_) in_flight += t->data.size();
    uint64_t net;
    {
      std::lock_guard lk(mu_);
      net = stats_.network_bytes;
      p.bytes_from_cache = stats_.cache_bytes;
    }
    p.bytes_done = std::min(art_.size, done_bytes_ + in_flight);
    if (final) p.bytes_done = art_.size;
    p.bytes_total = art_.size;
    rate_samples_.push_back({now, net});
    while (rate_samples_.size() > 2 && now - rate_samples_.front().first > 3s) rate_samples_.pop_front();
    auto span = std::chrono::duration<double>(now - rate_samples_.front().first).count();
    if (span > 0) p.bytes_per_second = static_cast<double>(net - rate_samples_.front().second) / span;
    o_.progress(p);
  }

  Artifact art_;
  FetchOptions o_;
  CURLM* multi_ = nullptr;
  std::thread thread_;

  // Shared with the reader, under mu_.
  mutable std::mutex mu_;
  std::condition_variable cv_;
  uint64_t decoded_ = 0;   // stream bytes decoded into the ring
  uint64_t read_pos_ = 0;  // stream bytes the reader has taken
  size_t next_read_ = 0;   // the chunk the reader is in
  uint64_t bytes_ahead_ = 0;  // held_bytes of the chunks in [next_read_, next_start_)
  std::optional<Error> error_;
  bool stop_ = false;
  FetchStats stats_;

  // The fetching thread's own.
  size_t next_start_ = 0;
  size_t delivered_ = 0;
  size_t next_decode_ = 0;
  std::map<size_t, std::shared_ptr<const std::string>> verified_;  // compressed, not yet decoded
  std::vector<uint64_t> chunk_end_;   // stream position after each chunk
  std::optional<MirroredRing> ring_;  // the decoded stream: history + what the reader has yet to take
  uint64_t done_bytes_ = 0;
  std::map<std::string, int> attempts_;
  std::set<std::string> reauthorized_;  // chunks already repeated once with refreshed credentials
  std::map<std::string, std::vector<size_t>> waiting_;  // sha → positions waiting for it
  std::vector<Retry> retries_;
  std::map<CURL*, std::unique_ptr<Transfer>> active_;
  std::deque<std::pair<SteadyClock::time_point, uint64_t>> rate_samples_;
  SteadyClock::time_point started_;
  uint64_t bandwidth_used_ = 0;  // body bytes taken within max_bandwidth
};

}  // namespace

Result<std::unique_ptr<ArtifactStream>> open_artifact_stream(const Artifact& artifact, const FetchOptions& opts) {
  if (artifact.chunks.empty()) return fail("fetch.empty", "the artifact has no chunks");
  if (opts.chunk_base_url.empty()) return fail("fetch.config", "no chunk URL");
  if (opts.cache_dir.empty()) return fail("fetch.config", "no download cache directory");
  for (const auto& c : artifact.chunks)
    if (!valid_sha256_hex(c.sha256)) return fail("fetch.config", "bad chunk hash " + c.sha256);
  auto s = std::make_unique<Stream>(artifact, opts);
  BALLAST_CHECK(s->start());
  return std::unique_ptr<ArtifactStream>(std::move(s));
}

Result<uint64_t> retain_cached_chunks(const std::string& cache_dir, const Artifact& artifact) {
  if (!path_exists(cache_dir)) return uint64_t{0};
  std::map<std::string, uint64_t> sizes;
  for (const auto& c : artifact.chunks) sizes[c.sha256] = c.size;
  uint64_t complete = 0;
  for (const auto& name : BALLAST_TRY(list_dir(cache_dir))) {
    const bool part = name.size() > 5 && name.compare(name.size() - 5, 5, ".part") == 0;
    auto it = sizes.find(part ? name.substr(0, name.size() - 5) : name);
    const std::string path = path_join(cache_dir, name);
    if (it == sizes.end()) {
      BALLAST_CHECK(remove_if_exists(path));
      continue;
    }
    // A chunk is renamed to its sha256 only once its hash matched (and is checked again when read).
    struct stat st {};
    if (!part && ::stat(path.c_str(), &st) == 0 && static_cast<uint64_t>(st.st_size) == it->second)
      complete += it->second;
  }
  return complete;
}

Status clear_cache(const std::string& cache_dir) {
  if (!path_exists(cache_dir)) return ok();
  for (const auto& name : BALLAST_TRY(list_dir(cache_dir))) BALLAST_CHECK(remove_if_exists(path_join(cache_dir, name)));
  return ok();
}

}  // namespace ballast::repository
