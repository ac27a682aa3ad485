#include "repository/packer.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "common/file.hpp"
#include "repository/chunk_codec.hpp"

namespace ballast::repository {

namespace {

struct Job {
  size_t index;
  std::string data;
  std::string history;
};

// A bounded queue between the chunking thread and the compression workers, so memory stays
// at a few chunks per worker however long the stream is.
class Pool {
 public:
  Pool(const std::string& dir, const PackOptions& o, unsigned n) : dir_(dir), opts_(o) {
    for (unsigned i = 0; i < n; ++i) workers_.emplace_back([this] { work(); });
    limit_ = 2 * n;
  }
  ~Pool() { finish(); }

  // False once a worker has failed: stop feeding.
  bool push(size_t index, std::string&& data, std::string history) {
    std::unique_lock lk(mu_);
    space_.wait(lk, [&] { return queue_.size() < limit_ || failed_; });
    if (failed_) return false;
    queue_.push_back({index, std::move(data), std::move(history)});
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

  Status process(const Job& job) {
    auto z = BALLAST_TRY(compress_chunk(job.data, opts_.zstd_level, job.history));
    ChunkRef ref{sha256_hex(z), z.size(), job.data.size()};
    std::string path = path_join(dir_, ref.sha256);
    bool fresh = false;
    struct stat st {};
    // Content-addressed: a present file of the right size is this chunk (the hash names it).
    if (::stat(path.c_str(), &st) != 0 || static_cast<uint64_t>(st.st_size) != ref.size) {
      BALLAST_CHECK(with_context(write_file_atomic(path, z), "storing chunk " + ref.sha256));
      fresh = true;
    }
    std::lock_guard lk(mu_);
    stats_.chunks++;
    if (fresh) {
      stats_.new_chunks++;
      stats_.new_bytes += ref.size;
    }
    results_[job.index] = std::move(ref);
    return ok();
  }

  std::string dir_;
  PackOptions opts_;
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
  if (opts.zstd_level < 1 || opts.zstd_level > 22) return fail("pack.level", "zstd level must be 1..22");
  BALLAST_CHECK(make_dirs(chunks_dir));
  unsigned n = opts.threads ? opts.threads : std::max(1u, std::thread::hardware_concurrency());
  Pool pool(chunks_dir, opts, n);
  size_t index = 0;
  bool stopped = false;
  std::string tail;  // the last `history` bytes of the stream so far
  Status chunked = chunk_stream(stream, opts.chunker, [&](std::string&& c) -> Status {
    std::string history = tail;
    if (opts.history) {
      tail += c;
      if (tail.size() > opts.history) tail.erase(0, tail.size() - opts.history);
    }
    if (!pool.push(index++, std::move(c), std::move(history))) stopped = true;
    return stopped ? fail("pack.stopped", "compression failed") : ok();
  });
  Status done = pool.finish();
  if (!done) return tl::unexpected<Error>(done.error());
  if (!chunked) return with_context(Result<Artifact>(tl::unexpected<Error>(chunked.error())), "reading the send stream");
  if (index == 0) return fail("pack.empty", "the send stream is empty");
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
