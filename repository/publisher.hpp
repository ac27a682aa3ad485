// `ballast repo add` / `repo revoke` on top of the TUF writer: chunk and compress each
// artifact's send stream into the repository's chunk store, write the release manifest as a
// TUF target whose custom data is the release's policy, and publish.
//
// Repository layout added to the TUF writer's: targets/chunks/<sha256> (plain files, not TUF
// targets: their hashes are trusted through the manifest, which targets metadata covers).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/byte_source.hpp"
#include "common/result.hpp"
#include "repository/manifest.hpp"
#include "repository/packer.hpp"
#include "repository/tuf/writer.hpp"

namespace ballast::repository {

struct ArtifactInput {
  std::string from;         // empty: the full stream
  std::string parent_uuid;  // delta: UUID of the parent subvolume the stream was sent against
  // Produces the send stream; `finish` (optional) is called after it was read to its end and
  // reports the producer's own failure (e.g. the sender's exit status).
  std::function<Result<std::unique_ptr<ByteSource>>()> open;
  std::function<Status()> finish;
};

struct PublishReport {
  Manifest manifest;
  PackStats stats;  // summed over the artifacts
};

// The directory of chunk files inside a repository directory.
std::string chunk_store_dir(const std::string& repo_dir);
// The packer's reuse index of a repository directory (PackOptions::reuse_index): build-side
// state beside the published files, never uploaded.
std::string reuse_index_path(const std::string& repo_dir);

// Adds release `info.version` with its artifacts: at most one full stream, and each delta's
// `from` a published release. A release without a full stream ("repo.no-full" otherwise) needs a
// delta from a release a new host's planner reaches: the newest older, unrevoked release with a
// full stream, or one that the deltas of the releases between reach from it; installs then take
// that full stream and the chain of deltas (a release revoked later can cut that chain). "repo.release-exists" for a version already
// published; nothing is committed unless every artifact was packed. The full stream is packed at
// `pack.full_zstd_level`, deltas at `pack.zstd_level`, both through the repository's reuse index
// (`pack.reuse_index` is ignored). `measured_boot` (the PCR 11
// values the release's UKI produces) goes into the signed manifest as it is.
Result<PublishReport> publish_release(tuf::RepoWriter& writer, const ReleaseInfo& info,
                                      const std::vector<ArtifactInput>& inputs, const PackOptions& pack,
                                      const std::optional<MeasuredBoot>& measured_boot = std::nullopt);

// The newest `count` releases of `channel` older than `version` that are not revoked, newest
// first: what `repo add --deltas-from-last` publishes deltas from.
Result<std::vector<Version>> last_releases(const tuf::RepoWriter& writer, const std::string& channel, const Version& version,
                                           size_t count);

// Marks a published release revoked (its custom data), re-signing targets → snapshot → timestamp.
// Returns the newer, unrevoked releases without a full stream that a host with nothing installed
// can then not reach (their chain ran through a release now revoked), oldest first; revoking an
// already revoked release changes nothing and returns none.
Result<std::vector<Version>> revoke_release(tuf::RepoWriter& writer, const Version& version);

}  // namespace ballast::repository
