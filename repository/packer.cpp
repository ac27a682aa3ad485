#include "repository/packer.hpp"

#include <algorithm>
#include <charconv>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include "common/file.hpp"
#include "repository/chunk_codec.hpp"

namespace ballast::repository {

namespace {

struct Job {
  size_t index;
  std::string data;
  std::string history;
  std::string key;  // in the reuse index; empty without one
};

// The reuse index: one line per chunk compressed, "<key> <sha256> <size> <usize> <level>", where
// the key is the sha256 of the raw chunk and its history (ReuseKeys) and the level is the zstd
// level it was compressed at. Only a hint: an entry is used only if its chunk is in the store and
// decompresses to the raw bytes, so a stale or torn line costs a compression, never a wrong chunk.
// A stored chunk stands in for a new one only at the level asked for or a higher one: a release
// packed at --full-level 19 never ships a chunk an earlier release packed at 9. (A line without a
// level, from before levels were recorded, counts as level 0: compressed again once.)
struct IndexedChunk {
  ChunkRef ref;
  int level = 0;
};
using ReuseIndex = std::unordered_map<std::string, IndexedChunk>;

bool parse_u64(std::string_view s, uint64_t& v) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && end == s.data() + s.size();
}

Result<ReuseIndex> load_reuse_index(const std::string& path) {
  ReuseIndex index;
  if (!path_exists(path)) return index;
  std::string text = BALLAST_TRY(with_context(read_file(path, size_t{1} << 30), "reading the reuse index"));
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) break;  // a torn last line
    std::string_view line(text.data() + pos, nl - pos);
    pos = nl + 1;
    std::string_view f[5];
    size_t n = 0;
    while (n < 5 && !line.empty()) {
      size_t sp = line.find(' ');
      f[n++] = line.substr(0, sp);
      line = sp == std::string_view::npos ? std::string_view() : line.substr(sp + 1);
    }
    IndexedChunk entry;
    uint64_t level = 0;
    if ((n != 4 && n != 5) || !line.empty() || !valid_sha256_hex(f[0]) || !valid_sha256_hex(f[1]) ||
        !parse_u64(f[2], entry.ref.size) || !parse_u64(f[3], entry.ref.usize) || (n == 5 && !parse_u64(f[4], level)) ||
        level > 64)
      continue;
    entry.ref.sha256 = std::string(f[1]);
    entry.level = static_cast<int>(level);
    // The same raw chunk packed at several levels: the highest serves every request it can.
    auto [it, inserted] = index.try_emplace(std::string(f[0]), entry);
    if (!inserted && entry.level >= it->second.level) it->second = std::move(entry);
  }
  return index;
}

Status append_reuse_index(const std::string& path, const std::vector<std::pair<std::string, IndexedChunk>>& added) {
  if (added.empty()) return ok();
  auto slash = path.find_last_of('/');
  if (slash != std::string::npos) BALLAST_CHECK(make_dirs(path.substr(0, slash)));
  std::string text;
  if (path_exists(path)) text = BALLAST_TRY(read_file(path, size_t{1} << 30));
  if (!text.empty() && text.back() != '\n') text.erase(text.find_last_of('\n') + 1);  // drop a torn line
  for (const auto& [key, entry] : added)
    text += key + " " + entry.ref.sha256 + " " + std::to_string(entry.ref.size) + " " + std::to_string(entry.ref.usize) +
            " " + std::to_string(entry.level) + "\n";
  return write_file_atomic(path, text);
}

// A chunk's key: its raw bytes and exactly the history it is compressed against, named by the
// raw hashes of the chunks that history is cut from, so no history byte is hashed twice.
class ReuseKeys {
 public:
  std::string next(std::string_view chunk, uint64_t history_size) {
    std::string material = std::to_string(history_size);
    uint64_t covered = 0;
    size_t first = recent_.size();
    while (first > 0 && covered < history_size) covered += recent_[--first].second;
    for (size_t i = first; i < recent_.size(); ++i)
      material += " " + recent_[i].first + ":" + std::to_string(recent_[i].second);
    std::string raw = sha256_hex(chunk);
    material += " " + raw + ":" + std::to_string(chunk.size());
    recent_.emplace_back(std::move(raw), chunk.size());
    // Keep only the chunks the next history can reach into.
    uint64_t kept = 0;
    size_t keep_from = recent_.size();
    while (keep_from > 0 && kept < history_limit_) kept += recent_[--keep_from].second;
    recent_.erase(recent_.begin(), recent_.begin() + static_cast<std::ptrdiff_t>(keep_from));
    return sha256_hex(material);
  }
  explicit ReuseKeys(uint64_t history_limit) : history_limit_(history_limit) {}

 private:
  uint64_t history_limit_;
  std::deque<std::pair<std::string, uint64_t>> recent_;  // raw sha256, size
};

// A bounded queue between the chunking thread and the compression workers, so memory stays
// at a few chunks per worker however long the stream is.
class Pool {
 public:
  Pool(const std::string& dir, const PackOptions& o, const ReuseIndex& index, unsigned n)
      : dir_(dir), opts_(o), index_(index) {
    for (unsigned i = 0; i < n; ++i) workers_.emplace_back([this] { work(); });
    limit_ = 2 * n;
  }
  ~Pool() { finish(); }

  // False once a worker has failed: stop feeding.
  bool push(size_t index, std::string&& data, std::string history, std::string key) {
    std::unique_lock lk(mu_);
    space_.wait(lk, [&] { return queue_.size() < limit_ || failed_; });
    if (failed_) return false;
    queue_.push_back({index, std::move(data), std::move(history), std::move(key)});
    if (results_.size() <= index) results_.resize(index + 1);
    ready_.notify_one();
    return true;
  }

  Status finish() {
    {
      std::lock_guard lk(mu_);
      closed_ = true;
    }
    ready_.notify_all();
    for (auto& t : workers_)
      if (t.joinable()) t.join();
    if (failed_) return tl::unexpected<Error>(error_);
    return ok();
  }

  std::vector<ChunkRef> results_;
  PackStats stats_;
  std::vector<std::pair<std::string, IndexedChunk>> added_;  // for the reuse index

 private:
  void work() {
    for (;;) {
      Job job;
      {
        std::unique_lock lk(mu_);
        ready_.wait(lk, [&] { return !queue_.empty() || closed_ || failed_; });
        if (failed_ || queue_.empty()) return;
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      space_.notify_one();
      auto r = process(job);
      std::lock_guard lk(mu_);
      if (!r) {
        if (!failed_) error_ = r.error();
        failed_ = true;
        space_.notify_all();
        ready_.notify_all();
        return;
      }
    }
  }

  // The stored chunk the index names for this job, if it is there, holds exactly these bytes and
  // was compressed at this pack's level or a higher one.
  std::optional<ChunkRef> stored(const Job& job) {
    if (job.key.empty()) return std::nullopt;
    auto it = index_.find(job.key);
    if (it == index_.end() || it->second.level < opts_.zstd_level) return std::nullopt;
    const ChunkRef& ref = it->second.ref;
    if (ref.usize != job.data.size()) return std::nullopt;
    auto z = read_file(path_join(dir_, ref.sha256), ref.size + 1);
    if (!z || z->size() != ref.size || sha256_hex(*z) != ref.sha256) return std::nullopt;
    auto raw = decompress_chunk(*z, ref.usize, job.history);
    if (!raw || *raw != job.data) return std::nullopt;
    return ref;
  }

  Status process(const Job& job) {
    if (auto ref = stored(job)) {
      std::lock_guard lk(mu_);
      stats_.chunks++;
      stats_.reused++;
      results_[job.index] = std::move(*ref);
      return ok();
    }
    auto z = BALLAST_TRY(compress_chunk(job.data, opts_.zstd_level, job.history));
    ChunkRef ref{sha256_hex(z), z.size(), job.data.size()};
    std::string path = path_join(dir_, ref.sha256);
    bool fresh = false;
    // Content-addressed: a present file with these bytes is this chunk; one with others (a
    // damaged store) is replaced.
    auto present = read_file(path, ref.size + 1);
    if (!present || *present != z) {
      BALLAST_CHECK(with_context(write_file_atomic(path, z), [&] { return "storing chunk " + ref.sha256; }));
      fresh = true;
    }
    std::lock_guard lk(mu_);
    stats_.chunks++;
    if (fresh) {
      stats_.new_chunks++;
      stats_.new_bytes += ref.size;
    }
    if (!job.key.empty()) added_.emplace_back(job.key, IndexedChunk{ref, opts_.zstd_level});
    results_[job.index] = std::move(ref);
    return ok();
  }

  std::string dir_;
  PackOptions opts_;
  const ReuseIndex& index_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable ready_, space_;
  std::deque<Job> queue_;
  size_t limit_ = 2;
  bool closed_ = false, failed_ = false;
  Error error_;
};

}  // namespace

Result<Artifact> pack_stream(ByteSource& stream, const std::string& chunks_dir, const PackOptions& opts,
                             PackStats* stats) {
  BALLAST_CHECK(validate(opts.chunker));
  BALLAST_CHECK(validate_zstd_level(opts.zstd_level));
  BALLAST_CHECK(make_dirs(chunks_dir));
  ReuseIndex reuse;
  if (!opts.reuse_index.empty()) reuse = BALLAST_TRY(load_reuse_index(opts.reuse_index));
  ReuseKeys keys(opts.history);
  unsigned n = opts.threads ? opts.threads : std::max(1u, std::thread::hardware_concurrency());
  Pool pool(chunks_dir, opts, reuse, n);
  size_t index = 0;
  bool stopped = false;
  std::string tail;  // the last `history` bytes of the stream so far
  Status chunked = chunk_stream(stream, opts.chunker, [&](std::string&& c) -> Status {
    std::string history = tail;
    std::string key = opts.reuse_index.empty() ? std::string() : keys.next(c, history.size());
    if (opts.history) {
      tail += c;
      if (tail.size() > opts.history) tail.erase(0, tail.size() - opts.history);
    }
    if (!pool.push(index++, std::move(c), std::move(history), std::move(key))) stopped = true;
    return stopped ? fail("pack.stopped", "compression failed") : ok();
  });
  Status done = pool.finish();
  if (!done) return tl::unexpected<Error>(done.error());
  if (!chunked) return with_context(Result<Artifact>(tl::unexpected<Error>(chunked.error())), "reading the send stream");
  if (index == 0) return fail("pack.empty", "the send stream is empty");
  if (!opts.reuse_index.empty())
    BALLAST_CHECK(with_context(append_reuse_index(opts.reuse_index, pool.added_), "writing the reuse index"));
  Artifact art;
  art.chunks = std::move(pool.results_);
  art.history = opts.history;
  for (const auto& c : art.chunks) {
    art.size += c.size;
    art.usize += c.usize;
  }
  if (stats) *stats = pool.stats_;
  return art;
}

}  // namespace ballast::repository
