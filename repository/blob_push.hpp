// Publishing a local repository (layout.hpp) to Azure Blob Storage (`ballast repo push`), in the
// only order that never shows a host a file naming something not yet uploaded:
//   1. chunks (targets/chunks/…)
//   2. the other targets (manifests, streams, UKIs)
//   3. versioned metadata (N.root.json, N.targets.json, N.snapshot.json, N.<delegated>.json)
//   4. unversioned metadata other than timestamp.json
//   5. metadata/timestamp.json, last
// Each phase is acknowledged whole before the next starts, so a push killed anywhere leaves the
// old timestamp naming only files that exist, and the next push completes the new one.
// A blob that exists with the same length and Content-MD5 (set on upload as
// x-ms-blob-content-md5) is skipped; a same-length blob without an MD5 is uploaded again.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "repository/http.hpp"

namespace ballast::repository {

// What a HEAD tells about an existing blob.
struct BlobProperties {
  uint64_t length = 0;
  std::string content_md5;  // base64, as Blob Storage reports it; empty when the blob has none
};

// The container (and prefix) blobs go to, behind an interface so the push order is tested
// without a server. `name` is the blob's path below the container URL ("metadata/1.root.json").
class BlobStore {
 public:
  virtual ~BlobStore() = default;
  // nullopt: no such blob.
  virtual Result<std::optional<BlobProperties>> head(const std::string& name) = 0;
  // Put Blob (a block blob, whole), with x-ms-blob-content-md5 = `content_md5`.
  virtual Status put(const std::string& name, const std::string& bytes, const std::string& content_md5) = 0;
};

// Blob Storage's REST API over libcurl: `container_url` is https://ACCOUNT.blob.core.windows.net/
// CONTAINER[/PREFIX] (or an emulator's path-style URL); settings carry TLS, retries and the
// credentials. Transient failures (connection errors, 408, 429, 5xx) are retried per
// retry_policy.hpp; a 401 refreshes the credentials once; a 403 names the likely cause.
// Thread-safe: each calling thread gets its own connection.
std::unique_ptr<BlobStore> make_blob_store(std::string container_url, HttpSettings settings);

// Checks a --to URL: http(s)://HOST/CONTAINER[/PREFIX], no query or fragment ("push.bad-url").
Status check_container_url(const std::string& url);

// One file to upload: its blob name (the path relative to the repository directory) and size.
struct PushFile {
  std::string name;
  uint64_t bytes = 0;
};

// The files of repository `dir` in upload phases (see above), each phase sorted by name.
// "push.not-a-repository" when `dir` has no metadata/ directory, "push.no-timestamp" when it has
// no metadata/timestamp.json.
Result<std::vector<std::vector<PushFile>>> push_phases(const std::string& dir);

struct PushProgress {
  uint64_t done_bytes = 0, total_bytes = 0;  // checked or uploaded so far, of all files
  size_t uploaded = 0, skipped = 0;
};

struct PushOptions {
  unsigned parallel = 4;  // uploads at once, within a phase
  // Called after each file (uploaded or skipped), from one thread at a time.
  std::function<void(const PushProgress&)> on_progress;
};

struct PushSummary {
  size_t uploaded = 0, skipped = 0;
  uint64_t uploaded_bytes = 0, skipped_bytes = 0;
};

// Uploads repository `dir` into `store` phase by phase. The first failure stops the push after
// the uploads already running end; no later phase starts.
Result<PushSummary> push_repository(const std::string& dir, BlobStore& store, const PushOptions& options = {});

// Base64 of the MD5 of `bytes`: the Content-MD5 Blob Storage keeps.
std::string content_md5(const std::string& bytes);

// For tests: blobs in memory; records each PUT in order (thread-safe). `fail_put` makes the PUT
// of that name fail.
class FakeBlobStore final : public BlobStore {
 public:
  std::map<std::string, std::pair<std::string, std::string>> blobs;  // name -> bytes, md5 ("" = none)
  std::vector<std::string> puts;
  std::string fail_put;
  Result<std::optional<BlobProperties>> head(const std::string& name) override;
  Status put(const std::string& name, const std::string& bytes, const std::string& md5) override;

 private:
  std::mutex mu_;
};

}  // namespace ballast::repository
