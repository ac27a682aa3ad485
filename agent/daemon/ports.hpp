// The daemon's real ports: releases from the TUF repository staged onto the host, and the host's
// health checks. (The reboot gate, rebooter and reporter come from agent/reboot and agent/report.)
#pragma once

#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "agent/api.hpp"
#include "agent/daemon/planner.hpp"
#include "agent/host/stage.hpp"
#include "agent/update_flow.hpp"
#include "common/clock.hpp"
#include "boot/tpm.hpp"
#include "repository/release.hpp"
#include "snapshot/host_layout.hpp"

namespace ballast::agent {

struct HostReleaseSourceOptions {
  repository::ReleaseRequest request;  // repository, trust, HTTP settings, state dir, channel
  snapshot::HostLayout host{""};
  std::string state_dir;               // the pin lives here; the stage journal too
  double wariness = 0;
  int tries = 0;                       // trial boot attempts; 0: the backend's default
  host::EntryType entry_type = host::EntryType::automatic;  // boot.entry_type
  int keep = 3;                        // retention.keep
  std::string esp_fstab;
  // Called from the fetching thread while staging.
  std::function<void(const Progress&)> on_progress;
};

// check(): refresh the repository (once per update), list its releases, let plan_update() choose
// with the pin from <state>/pin, the retained deployments and the flow's denylist, and make the
// ReleasePlan: back to a retained deployment, or the target's artifact (a delta from a local
// slot, the booted one first, else the full stream) read from its manifest. stage(): carry the
// plan out: prefer the retained entry, or fetch exactly the planned artifact, found in the
// manifest read through the trusted metadata without refreshing again, stage it with
// host::stage_release and apply retention.
class HostReleaseSource final : public ReleaseSource {
 public:
  HostReleaseSource(HostReleaseSourceOptions options, boot::BootControl& boot, const Clock& clock)
      : opts_(std::move(options)), boot_(boot), clock_(clock) {}
  Result<std::optional<ReleasePlan>> check(const std::vector<Version>& denylist) override;
  Status stage(const ReleasePlan& plan) override;
  std::string explain() const override;
  Result<boot::LoaderUpdate> update_loader(const Version& version) override;
  // The last decision, for AgentApi::check().
  PlanDecision last_decision() const;

 private:
  HostReleaseSourceOptions opts_;
  boot::BootControl& boot_;
  const Clock& clock_;
  mutable std::mutex mutex_;
  PlanDecision last_;
};

// The cheapest plan that fetches decision.target (whose verified manifest is `manifest`) onto
// something holding `slots`: plan_fetch() over the verified manifests of the releases a chain of
// deltas may pass through or start from (newer than the oldest slot, older than the target, not
// revoked, and older ones down to the newest with a full stream when nothing nearer has one; one
// that cannot be read is no link). The daemon's check, `ballast fetch` and `ballast install` plan
// with it.
Result<ReleasePlan> plan_release_fetch(repository::tuf::Client& client, const std::vector<repository::Release>& releases,
                                       const PlanDecision& decision, const repository::Manifest& manifest,
                                       const std::vector<LocalSlot>& slots);

// What a plan downloads, in order: each earlier link of a chain found again in its release's
// manifest (read through `client`), then the target's artifact from `manifest`.
Result<std::vector<std::pair<Version, repository::Artifact>>> planned_artifacts(
    repository::tuf::Client& client, const std::vector<repository::Release>& releases, const ReleasePlan& plan,
    const repository::Manifest& manifest, const std::string& channel);

// Every chunk of a plan's links as one artifact, sizes summed: what the chunk cache keeps for the
// plan (retain_cached_chunks) and what its free-space check counts.
repository::Artifact chunks_of_plan(const std::vector<std::pair<Version, repository::Artifact>>& links);

struct PlannedFetch {
  repository::ReleaseInfo info;  // the target's signed custom data (kernel command line, …)
  ReleasePlan plan;
  std::vector<std::pair<Version, repository::Artifact>> links;  // what is received, in order
};

// Refreshes TUF and plans `req.version` (else the channel's newest) as the daemon does, for a
// host whose one slot is `req.local` (the subvolume at `local_path`; none: a host with nothing
// yet, which takes a full stream, or an earlier release's full stream and the deltas after it).
// The subvolume is the release its os-release names (IMAGE_VERSION, as staging checks). A tree
// without one may be any older release: each is offered, and only its true version can start a
// delta, since a delta applies only to the subvolume whose uuid it names as its parent.
Result<PlannedFetch> plan_request(const repository::ReleaseRequest& req, const std::string& local_path, const Clock& clock);

// Turns the fetcher's progress into the API's Progress; the total is the plan's download size.
// `earlier_bytes`: what the links of a chain before the one being fetched downloaded.
Progress progress_of(const repository::FetchProgress& p, const ReleasePlan& plan, uint64_t earlier_bytes = 0);

// The health checks of the booted deployment. On a host the agent runs inside it, so the
// options' directories (by default /usr/lib/ballast/health.d and /etc/ballast/health.d) are its
// own. An agent looking at a host from outside (`--sysroot`, a sandbox) gives the host layout
// and boot control instead: each run() takes the same two directories inside
// @ballast/deploy/<booted> (its image's /usr and its own writable /etc), as that deployment
// booted would see them.
class HostHealthChecker final : public HealthChecker {
 public:
  explicit HostHealthChecker(HealthOptions options) : opts_(std::move(options)) {}
  HostHealthChecker(HealthOptions options, snapshot::HostLayout host, boot::BootControl& boot)
      : opts_(std::move(options)), host_(std::move(host)), boot_(&boot) {}
  Result<HealthReport> run() override;
  // Adds the required "measured-boot" check: PCR 11 against what the booted release's manifest
  // published (recorded in `state_dir` when it was staged; agent/measured_boot.hpp).
  void check_measured_boot(boot::Tpm& tpm, std::string state_dir, boot::BootControl& boot) {
    measured_.emplace(MeasuredBootCheck{tpm, std::move(state_dir)});
    boot_ = &boot;
  }

 private:
  struct MeasuredBootCheck {
    boot::Tpm& tpm;
    std::string state_dir;
  };
  HealthOptions opts_;
  std::optional<MeasuredBootCheck> measured_;
  std::optional<snapshot::HostLayout> host_;
  boot::BootControl* boot_ = nullptr;
};

// The health directories of `version`'s deployment on a host seen from outside.
std::vector<std::string> deployment_health_dirs(const snapshot::HostLayout& host, const Version& version);

// health.check_timeout and health.check_failed_units over the default directories.
HealthOptions health_options(const Config& cfg);

}  // namespace ballast::agent
