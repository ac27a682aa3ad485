#include "agent/host/retention.hpp"

#include <algorithm>

#include "common/log.hpp"

namespace ballast::host {

RetentionPlan plan_retention(const HostStatus& status, int keep, const std::set<std::string>& needed_parents) {
  std::set<std::string> kept;
  auto must = [&](const std::optional<DeploymentStatus>& d) {
    if (d) kept.insert(d->version);
  };
  must(status.booted);
  must(status.staged);
  must(status.rollback);
  for (const auto& p : needed_parents) kept.insert(p);
  // status.all is newest first: good ones fill remaining room before trial or bad ones.
  for (int pass = 0; pass < 2; ++pass) {
    for (const auto& d : status.all) {
      if (static_cast<int>(kept.size()) >= keep) break;
      bool good = d.entry && d.entry->state == boot::EntryState::good;
      if ((pass == 0) == good) kept.insert(d.version);
    }
  }
  RetentionPlan plan;
  for (const auto& d : status.all) (kept.count(d.version) ? plan.keep : plan.remove).push_back(d.version);
  return plan;
}

Status apply_retention(const snapshot::HostLayout& host, boot::BootControl& boot, const RetentionPlan& plan) {
  for (const auto& v : plan.remove) {
    log::info("retention: removing " + v);
    // The entry goes first: a boot entry must never point at a deleted deployment.
    for (const auto& e : BALLAST_TRY(boot.entries()))
      if (e.version.str() == v) BALLAST_CHECK(with_context(boot.remove(e.version), "removing the boot entry of " + v));
    BALLAST_CHECK(snapshot::delete_deployment(host, v));
    BALLAST_CHECK(snapshot::delete_slot(host, v));
  }
  return ok();
}

Status retain(const snapshot::HostLayout& host, boot::BootControl& boot, const std::string& booted, int keep) {
  auto status = BALLAST_TRY(read_host_status(host, boot, booted));
  return apply_retention(host, boot, plan_retention(status, keep, {}));
}

}  // namespace ballast::host
