// The update planner: which release this host should run next, as a pure function of the
// repository's release list and the host's own facts (booted version, channel, pin, rollout
// wariness, denylist, retained deployments, the time). The rules, in order:
//   - a pin selects exactly that version, older or newer (a deliberate choice), unless revoked;
//   - a booted release that has been revoked is left: forward to the newest allowed release when
//     one exists, else back to the newest retained older version that is not revoked;
//   - otherwise the newest release on the channel that is newer than the booted one, not revoked,
//     not denylisted, open to this node's rollout wave (now >= start + wariness × duration), and
//     not past a barrier (the oldest barrier newer than the booted version must be run first).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/config.hpp"
#include "agent/update_flow.hpp"
#include "common/result.hpp"
#include "common/version.hpp"
#include "repository/manifest.hpp"
#include "repository/release.hpp"

namespace ballast::agent {

struct PlanInput {
  std::vector<repository::ReleaseInfo> releases;  // every release the repository lists, any order
  std::optional<Version> booted;                  // version running now; nullopt when unknown
  std::string channel = "stable";
  std::optional<Version> pin;
  double wariness = 0;                            // 0: first wave, 1: last wave
  std::vector<Version> denylist;                  // versions rolled back from
  std::vector<Version> retained;                  // versions with a deployment on this host
  std::chrono::system_clock::time_point now;
};

struct PlanDecision {
  std::optional<Version> target;      // nullopt: stay on the booted version
  bool backward = false;              // the target is older than the booted version
  std::string reason;                 // one line for humans: "pinned to 2.0", "barrier 2.0 first", …
};

PlanDecision plan_update(const PlanInput& in);

// A slot of this host that a delta may start from.
struct LocalSlot {
  Version version;
  repository::LocalSubvolume subvolume;
};

// The plan for a decision (with a target) that goes back to a deployment in `retained`:
// nothing to fetch. nullopt when the target has to be fetched (plan_fetch).
std::optional<ReleasePlan> plan_going_back(const PlanDecision& decision, const std::vector<Version>& retained);

// The plan that fetches the decision's target, whose verified manifest is `manifest`: the
// cheapest by compressed bytes among the full stream, a delta from one of `slots`, and a chain of
// deltas through the releases of `intermediates` (their verified manifests; a release that is
// absent there, or not listed in `releases`, or revoked, is no link of a chain) that starts from
// a slot or from the full stream of one of those releases (a host with nothing to start from,
// a release published without a full stream, or an earlier full stream compressed harder).
// The first delta from a slot must name the slot's subvolume as its parent
// (repository::delta_applies_to). Ties: fewer streams, then the slot that comes first in `slots`
// (the caller puts the booted one first), then a delta before a full stream. "plan.no-artifact"
// when nothing reaches the target.
Result<ReleasePlan> plan_fetch(const PlanDecision& decision, const repository::Manifest& manifest,
                               const std::vector<LocalSlot>& slots,
                               const std::vector<repository::Manifest>& intermediates = {},
                               const std::vector<repository::ReleaseInfo>& releases = {});

// The artifact of `manifest` a plan names: what staging fetches, found again in the manifest it
// loads from the trusted metadata (for a chain: its last link). "stage.plan-mismatch" when that
// manifest no longer holds it.
Result<repository::Artifact> planned_artifact(const ReleasePlan& plan, const repository::Manifest& manifest);
// The same for one link of a chain, in the manifest of release link.to.
Result<repository::Artifact> planned_link(const PlanLink& link, const repository::Manifest& manifest);

// Where going back from `booted` leads: the newest of `candidates` (versions this host can boot:
// retained deployments, or boot entries not marked bad) older than `booted`, not in `denylist`
// and not revoked in `releases`. The planner's revoked path and `ballast rollback` both ask this.
std::optional<Version> previous_good_deployment(const Version& booted, const std::vector<Version>& candidates,
                                               const std::vector<Version>& denylist,
                                               const std::vector<repository::ReleaseInfo>& releases);

// A node's place in the rollout, uniform in [0,1): the first 8 bytes of sha256(node id).
// node.id, else the machine id: what FleetLock, the event source and the rollout wave know
// this host by.
// `platform_id` (Azure's compute.vmId when azure.instance_metadata read it) comes before the machine id.
Result<std::string> node_id(const Config& cfg, const std::string& machine_id_path = "/etc/machine-id",
                            const std::string& platform_id = "");
double wariness_from_node_id(std::string_view node_id);

// node.wariness when set; else derived from node.id, else from the machine id file.
Result<double> node_wariness(const Config& cfg, const std::string& machine_id_path = "/etc/machine-id",
                             const std::string& platform_id = "");

}  // namespace ballast::agent
