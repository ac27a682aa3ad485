// The host's side of releases: which releases the trusted targets metadata lists, which one
// to take, its verified manifest, and which of its artifacts to fetch given a local subvolume.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "repository/fetcher.hpp"
#include "repository/manifest.hpp"
#include "repository/tuf/client.hpp"

namespace ballast::repository {

struct Release {
  ReleaseInfo info;
  tuf::TargetInfo target;  // releases/<version>/manifest.json
};

// Every release in the refreshed client's targets; a target whose custom data does not parse
// is an error (the publisher signed something malformed).
Result<std::vector<Release>> list_releases(tuf::Client& client);

// `version` set: that release ("fetch.no-release" when absent, "fetch.revoked" when revoked).
// Otherwise the newest release of `channel` that is not revoked.
Result<Release> choose_release(const std::vector<Release>& releases, const std::optional<std::string>& version,
                               const std::string& channel);

// Downloads (length and hashes checked by TUF) and parses the release's manifest.
Result<Manifest> load_manifest(tuf::Client& client, const Release& release);

// What a host already has that a delta could start from.
struct LocalSubvolume {
  std::string uuid;           // lowercase, dashed
  std::string received_uuid;  // empty when not received
};

// The delta whose parent is `local` (matched on received_uuid, else uuid), else the full stream.
const Artifact* plan_artifact(const Manifest& m, const std::optional<LocalSubvolume>& local);

// Where a repository at `repo_url` (as `ballast repo` lays it out) keeps its chunks.
std::string chunk_base_url(const std::string& repo_url);

}  // namespace ballast::repository
