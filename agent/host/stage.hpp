// Staging a release on the host, as one journaled transaction:
//   receive → check → slot → deploy → boot-entry → staged
// Each step's name is written atomically to <state>/stage.json before the step runs. Steps are
// idempotent and skip what is already complete, so after a crash anywhere the next run cleans
// @ballast/partial and resumes; a trial boot entry is written only for a complete deployment.
// A chain of deltas journals "chain-link-<n>" before receiving its n-th earlier release (n from 1).
// Setting BALLAST_FAULT_AT=<step> makes the process SIGKILL itself right after journaling that
// step (the crash-safety tests use it).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "boot/boot_control.hpp"
#include "common/byte_source.hpp"
#include "common/result.hpp"
#include "common/version.hpp"
#include "repository/release.hpp"
#include "snapshot/host_layout.hpp"

namespace ballast::host {

inline constexpr const char* kStageSteps[] = {"receive", "check", "slot", "deploy", "boot-entry", "staged"};

// Which kind of boot entry a staged release gets (config boot.entry_type).
enum class EntryType {
  automatic,  // uki when the release carries one (images::kUkiPath), else type1
  type1,      // kernel and initrd copied to the ESP, a loader/entries/ file
  uki,        // the release's UKI copied to EFI/Linux/; a release without one fails to stage
};

// An earlier release of a chain of deltas, received on the way to the staged one.
struct ChainStep {
  Version version;
  std::function<Result<std::unique_ptr<ByteSource>>()> open_stream;
};

struct StageRequest {
  Version version;
  // A chain of deltas: the releases received before this one's stream, in order, each into a
  // scratch subvolume @ballast/partial/chain-<version> whose parent is a slot or the scratch before.
  // Every scratch subvolume is deleted once the release's slot is made (or by recovery after a
  // crash, which redoes the chain from its first link: nothing half-received is ever a parent).
  std::vector<ChainStep> chain_before = {};
  // The stream of the release: full, or a delta whose parent is one of our slots (or the last
  // of chain_before).
  std::function<Result<std::unique_ptr<ByteSource>>()> open_stream;
  uint64_t needed_bytes = 0;     // uncompressed stream size from the manifest; 0: unknown
  // Compressed bytes the stream still downloads into the download cache on the way (the
  // artifact less what an earlier attempt at the same target cached); 0 for a local stream.
  uint64_t download_bytes = 0;
  // The release's kernel command line from its signed TUF target (ReleaseInfo::cmdline): what
  // every host's entry gets after `root=… ro ballast.version=<v>`. Empty (no manifest, as with
  // `ballast stage -f`, or none published): the image's own /usr/lib/kernel/cmdline instead.
  // A Type #2 entry ignores it: a UKI boots the command line sealed in it.
  std::string cmdline;
  int tries = 0;                 // 0: the boot backend's default
  EntryType entry_type = EntryType::automatic;
  std::string esp_fstab;         // fstab line for the ESP (by UUID); empty: none
  std::function<void(uint64_t)> progress;
};

struct StageContext {
  snapshot::HostLayout host;
  boot::BootControl& boot;
  std::string state_dir;
  std::optional<Version> booted_version;  // whose /etc local changes are carried; nullopt on a fresh host
};

struct StageResult {
  Version version;
  std::string kernel_version;
  std::string entry_options;
  std::vector<std::string> resumed;  // steps found already complete
};

// Undoes what an interrupted stage left: cleans @ballast/partial. Reads the journal only to report.
// Only under the host lock (common/host_lock.hpp): while another process holds it, what looks
// like debris is its work in progress, and recovery removes nothing.
Result<std::vector<std::string>> recover_stage(const StageContext& ctx);

// Holds the host lock of ctx.state_dir for the whole transaction ("host.locked" when another
// process holds it; nested when the calling thread already does).
Result<StageResult> stage_release(const StageContext& ctx, const StageRequest& req);

// The free space staging `req` asks for before it receives (0 when needed_bytes is unknown):
// the stream, a tenth more for metadata, 64 MiB for the deployment's /etc, and the download.
uint64_t space_needed(const StageRequest& req);

// The journal as last written (`{"version":…,"step":…}`), or empty when no stage ever ran.
Result<std::pair<std::string, std::string>> read_stage_journal(const std::string& state_dir);

// A subvolume's uuid and received uuid: what a delta in a manifest may name as its parent.
Result<repository::LocalSubvolume> local_subvolume(const std::string& path);

}  // namespace ballast::host
