// Fetching an artifact: its chunks are downloaded several at a time (libcurl multi; HTTP/1.1
// connections or multiplexed HTTP/2 streams; https, http and file:// URLs), each verified
// against the manifest's sha256 before a byte of it is decompressed, and the decompressed
// stream is handed out in order as a ByteSource that the receiver consumes directly.
//
// Every chunk is written to a download cache as it arrives (`<sha256>.part`, renamed to
// `<sha256>` once its hash matched), so an interrupted transfer resumes with a Range request
// and a restarted process reuses every chunk it had verified. A chunk never grows past the
// manifest's size; failures are retried with exponential backoff, honouring Retry-After.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "common/byte_source.hpp"
#include "common/result.hpp"
#include "repository/http.hpp"
#include "repository/manifest.hpp"
#include "repository/retry_policy.hpp"

namespace ballast::repository {

struct FetchProgress {
  uint64_t bytes_done = 0;        // compressed bytes verified or received so far (cache included)
  uint64_t bytes_total = 0;       // the artifact's compressed size
  uint64_t bytes_from_cache = 0;  // part of bytes_done that needed no download
  double bytes_per_second = 0;    // download rate over the last few seconds
};

struct FetchOptions {
  std::string chunk_base_url;  // a chunk's URL is this + its sha256 (so it ends in "chunks/")
  std::string cache_dir;       // created when missing
  HttpSettings http;           // CA bundle, client cert, low-speed limit, bandwidth, retries and backoff
  unsigned parallel = 4;       // chunks in flight
  size_t window = 0;           // chunks fetched ahead of the reader; 0: 4 × parallel
  // Bytes fetched ahead of the reader (each chunk counted at the larger of its compressed and
  // decompressed size), so memory stays bounded whatever the chunk sizes: 16 chunks of up to
  // 8 MiB each would otherwise hold 128+ MiB. One chunk is always allowed; 0: no byte bound.
  uint64_t window_bytes = 16ull << 20;
  bool http2 = true;           // offer HTTP/2 over TLS and multiplex the chunks on one connection
  // Called from the fetching thread, at most every 200 ms and once at the end.
  std::function<void(const FetchProgress&)> progress;
};

struct FetchStats {
  uint64_t network_bytes = 0;  // chunk body bytes accepted from the network
  uint64_t cache_bytes = 0;    // chunk bytes reused from the cache (verified or partial)
  uint64_t requests = 0;
  uint64_t retries = 0;
  uint64_t chunks_from_cache = 0;
  uint64_t peak_bytes_ahead = 0;  // the most window bytes (see FetchOptions) held at once
  uint64_t ring_bytes = 0;        // the buffer the stream is decoded into: history + read-ahead
  std::set<long> http_versions;  // CURL_HTTP_VERSION_* of completed transfers (2 = 1.1, 3 = 2)
};

class ArtifactStream : public ByteSource {
 public:
  // The decompressed send stream, in order. A fetch that failed for good reports its error
  // here ("fetch.hash-mismatch", "fetch.not-found", "fetch.failed", …).
  Result<size_t> read(void* buf, size_t len) override = 0;
  virtual FetchStats stats() const = 0;
  // Deletes this artifact's chunks from the cache; call once the stream has been applied.
  virtual Status discard_cache() = 0;
};

Result<std::unique_ptr<ArtifactStream>> open_artifact_stream(const Artifact& artifact, const FetchOptions& opts);

// Keeps in `cache_dir` only `artifact`'s chunks (verified, and partial ones a Range request
// resumes), so a retry of the same target downloads only the rest and no other target's chunks
// linger. Returns the compressed bytes of the artifact's distinct chunks held complete there.
Result<uint64_t> retain_cached_chunks(const std::string& cache_dir, const Artifact& artifact);

// Empties the download cache: once a stream is applied, none of its chunks is needed again.
Status clear_cache(const std::string& cache_dir);

}  // namespace ballast::repository
