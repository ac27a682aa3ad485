// Retention: keep the booted version, the staged one, the previous good one (the rollback), and
// any slot a planned delta needs as parent; fill up to `keep` with the newest others; delete the
// rest — deployment, slot, boot entry and kernel files together. Never the booted version.
#pragma once

#include <string>
#include <vector>

#include "agent/host/status.hpp"

namespace ballast::host {

struct RetentionPlan {
  std::vector<Version> keep;    // newest first
  std::vector<Version> remove;  // newest first
};

RetentionPlan plan_retention(const HostStatus& status, int keep, const std::vector<Version>& needed_parents);

// Applies a plan: for each version to remove, its boot entry (and kernel files), deployment and slot.
Status apply_retention(const snapshot::HostLayout& host, boot::BootControl& boot, const RetentionPlan& plan);

// What `ballast stage` and the agent do after staging: read the host's status, plan with
// `keep` and no needed parents, apply.
Status retain(const snapshot::HostLayout& host, boot::BootControl& boot, const std::optional<Version>& booted, int keep);

// Installs `spec`'s boot entry; when the ESP is too full for it (boot.esp-full), retention makes
// room first: the versions it would remove with nothing but the must-keeps kept (never the
// booted, staged or rollback version, nor `spec`'s own), that have files on the ESP, go one at a
// time, oldest first, each followed by another try. When none is left the last boot.esp-full
// stands (it names both sizes); install() leaves nothing half-written either way.
Status install_making_room(const snapshot::HostLayout& host, boot::BootControl& boot, const std::optional<Version>& booted,
                           const boot::KernelSpec& spec);

}  // namespace ballast::host
