// A release as the repository describes it. The manifest (TUF target
// `releases/<version>/manifest.json`) lists, per artifact (the full send stream, or a delta from a
// named earlier version), the ordered content-addressed zstd chunks that make up the stream. The
// release's policy data (os-release, kernel command line, rollout, barrier, revoked, channel) is
// the `custom` object of that TUF target, so revoking or re-staging a release re-signs targets
// metadata without touching the manifest. docs/repository.md is the format's reference.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.hpp"
#include "common/version.hpp"

namespace ballast::repository {

// Caps that bound what a parser or fetcher will accept; a manifest beyond them is refused.
inline constexpr uint64_t kMaxManifestBytes = 16ull << 20;
inline constexpr uint64_t kMaxChunkBytes = 64ull << 20;       // compressed or uncompressed
inline constexpr size_t kMaxChunksPerArtifact = 1u << 20;
inline constexpr size_t kMaxArtifacts = 64;
inline constexpr uint64_t kMaxStreamBytes = 1ull << 40;

struct ChunkRef {
  std::string sha256;  // of the compressed bytes, lowercase hex; also the name under chunks/
  uint64_t size = 0;   // compressed bytes
  uint64_t usize = 0;  // decompressed bytes
  bool operator==(const ChunkRef&) const = default;
};

struct Artifact {
  std::optional<Version> from;  // nullopt: the full stream; else the version this delta applies to
  std::string parent_uuid;  // delta only: UUID of the publisher's parent subvolume (= the
                            // received_uuid a host's slot of `from` carries); may be empty
  std::vector<ChunkRef> chunks;
  // 0: every chunk is a self-contained zstd frame. Else each chunk was compressed against (and
  // must be decompressed with) the last `history` bytes of the stream before it as a prefix.
  uint64_t history = 0;
  uint64_t size = 0;   // sum of chunk sizes
  uint64_t usize = 0;  // sum of chunk usizes: the send stream's length
  bool is_full() const { return !from; }
  bool operator==(const Artifact&) const = default;
};

// What the release's UKI measures into TPM PCR 11 (sha256 bank), predicted at publish time: per
// boot phase systemd-pcrphase extends ("enter-initrd", …, "enter-initrd:leave-initrd:sysinit:ready",
// as systemd-measure names them; "" for the UKI's sections alone), the PCR value in lowercase hex.
struct MeasuredBoot {
  std::map<std::string, std::string> pcr11_sha256;
  bool operator==(const MeasuredBoot&) const = default;
};

struct Manifest {
  static constexpr int kSchema = 1;
  Version version;
  std::vector<Artifact> artifacts;
  std::optional<MeasuredBoot> measured_boot;  // releases without a UKI (and older manifests) have none

  const Artifact* full() const;
  const Artifact* delta_from(const Version& version) const;
  bool operator==(const Manifest&) const = default;
};

struct Rollout {
  int64_t start = 0;     // Unix seconds; serialised as RFC 3339 UTC
  int64_t duration = 0;  // seconds over which the fleet's waves open; 0: all at once
  bool operator==(const Rollout&) const = default;
};

// The `custom` data of a release's TUF target.
struct ReleaseInfo {
  Version version;
  std::string channel = "stable";
  std::map<std::string, std::string> os_release;  // KEY=value fields of the image's os-release
  std::string cmdline;                            // extra kernel command line of the release
  std::optional<Rollout> rollout;
  bool barrier = false;  // hosts must stop here before moving past this version
  bool revoked = false;
  bool operator==(const ReleaseInfo&) const = default;
};

// Strict parsers: unknown or duplicate keys, wrong types, out-of-range numbers, bad hashes and
// inconsistent totals are errors with code "manifest.invalid" naming the field; a version that
// breaks Version's rule is "version.invalid" with the field in its context.
Result<Manifest> parse_manifest(std::string_view json);
std::string serialize_manifest(const Manifest& m);  // canonical: sorted keys, no whitespace

// The manifest's "measured_boot" object, by the same rules (`where` names it in errors).
Result<MeasuredBoot> parse_measured_boot(const nlohmann::json& j, const std::string& where);
nlohmann::json measured_boot_json(const MeasuredBoot& mb);

Result<ReleaseInfo> parse_release_info(const nlohmann::json& custom);
nlohmann::json release_info_json(const ReleaseInfo& info);

// The manifests a chain of deltas to release `target` may pass through or start from, as a
// host's planner reads them, newest first: those of the releases in `releases` older than the
// target, not revoked and newer than `oldest_slot`; and, when neither the target
// (`target_has_full`) nor one of those has a full stream, or there is no slot, older ones down to
// the newest that has one. A release whose manifest `load` cannot give is left out (`skipped` is
// told why) and no chain passes through it. The planner and the publisher's check of a release
// without a full stream both read this window.
std::vector<Manifest> chain_window(const std::vector<ReleaseInfo>& releases, const Version& target, bool target_has_full,
                                   const std::optional<Version>& oldest_slot,
                                   const std::function<Result<Manifest>(const ReleaseInfo&)>& load,
                                   const std::function<void(const ReleaseInfo&, const Error&)>& skipped);

// The TUF target name of a release's manifest and the repository path of a chunk.
std::string manifest_target_name(const Version& version);
std::string chunk_path(std::string_view sha256);

bool valid_sha256_hex(std::string_view s);

}  // namespace ballast::repository
