// The host's side of releases: which releases the trusted targets metadata lists, which one
// to take, its verified manifest, and which of its artifacts to fetch given a local subvolume.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "repository/fetcher.hpp"
#include "repository/manifest.hpp"
#include "common/clock.hpp"
#include "repository/tuf/client.hpp"

namespace ballast::repository {

struct Release {
  ReleaseInfo info;
  tuf::TargetInfo target;  // releases/<version>/manifest.json
};

// Every release in the refreshed client's targets. A target whose custom data does not parse or
// names another version (the publisher signed something malformed) is skipped with a warning,
// so the newest valid release is still found.
Result<std::vector<Release>> list_releases(tuf::Client& client);

// `version` set: that release ("fetch.no-release" when absent, "fetch.revoked" when revoked).
// Otherwise the newest release of `channel` that is not revoked, in Version's order (the
// daemon's planner uses the same order, so both pick the same release).
Result<Release> choose_release(const std::vector<Release>& releases, const std::optional<Version>& version,
                               const std::string& channel);

// Downloads (length and hashes checked by TUF) and parses the release's manifest.
Result<Manifest> load_manifest(tuf::Client& client, const Release& release);

// What a host already has that a delta could start from.
struct LocalSubvolume {
  std::string uuid;           // lowercase, dashed
  std::string received_uuid;  // empty when not received
};

// Whether `delta` names `local` as its parent (matched on received_uuid, else uuid).
bool delta_applies_to(const Artifact& delta, const LocalSubvolume& local);

// Where a repository at `repo_url` (as `ballast repo` lays it out) keeps its chunks.
std::string chunk_base_url(const std::string& repo_url);

}  // namespace ballast::repository

namespace ballast::repository {

// Everything a host needs to pull one release: the fetch verb, `ballast install --repo` and the
// agent plan with it (agent::plan_request, plan_release_fetch: the one planner, which weighs a
// direct delta, a chain of deltas and the full stream) and open each planned artifact's stream
// with fetch_options().
struct ReleaseRequest {
  std::string repo_url;
  std::string root_json;                    // first trust anchor; an already trusted root is kept
  std::string state_dir;                    // trusted metadata in <state>/tuf, chunks in <state>/cache/chunks
  std::optional<Version> version;           // empty: the newest on `channel`
  std::string channel = "stable";
  std::optional<LocalSubvolume> local;      // a delta may start from it
  HttpSettings http;
  uint64_t max_metadata_size = 8 << 20;
  unsigned parallel = 4;
  std::function<void(const FetchProgress&)> progress;
};

// Compressed bytes of `artifact` still to download when `cached` of them are in the cache: what a
// free-space check counts.
inline uint64_t bytes_to_download(const Artifact& artifact, uint64_t cached) {
  return artifact.size > cached ? artifact.size - cached : 0;
}

// Where the chunks of a host with `state_dir` are cached (emptied once a stream is applied).
std::string chunk_cache_dir(const std::string& state_dir);

// A TUF client over a repository's trusted metadata, with the HTTP client it borrows.
struct TrustedRepository {
  std::unique_ptr<HttpClient> http;
  std::optional<tuf::Client> client;
};

// Refresh TUF (the only place a host refreshes): the agent's check does it once per update.
Result<TrustedRepository> refresh_repository(const ReleaseRequest& req, const Clock& clock);
// The metadata the last refresh left in <state>/tuf, without refreshing (tuf::Client::load_trusted):
// what staging reads the release's manifest through.
Result<TrustedRepository> open_trusted_repository(const ReleaseRequest& req, const Clock& clock);

// How the request fetches chunks (base URL, cache, HTTP, parallelism, progress).
FetchOptions fetch_options(const ReleaseRequest& req);

}  // namespace ballast::repository
