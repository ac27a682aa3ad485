#include "agent/host/retention.hpp"

#include <algorithm>
#include <set>

#include "common/log.hpp"

namespace ballast::host {

RetentionPlan plan_retention(const HostStatus& status, int keep, const std::vector<Version>& needed_parents) {
  std::set<std::string> kept;  // by text: a version is its identity here
  auto must = [&](const std::optional<DeploymentStatus>& d) {
    if (d) kept.insert(d->version.str());
  };
  must(status.booted);
  must(status.staged);
  must(status.rollback);
  for (const auto& p : needed_parents) kept.insert(p.str());
  // status.all is newest first: good ones fill remaining room before trial or bad ones.
  for (int pass = 0; pass < 2; ++pass) {
    for (const auto& d : status.all) {
      if (static_cast<int>(kept.size()) >= keep) break;
      bool good = d.entry && d.entry->state == boot::EntryState::good;
      if ((pass == 0) == good) kept.insert(d.version.str());
    }
  }
  RetentionPlan plan;
  for (const auto& d : status.all) (kept.count(d.version.str()) ? plan.keep : plan.remove).push_back(d.version);
  return plan;
}

Status apply_retention(const snapshot::HostLayout& host, boot::BootControl& boot, const RetentionPlan& plan) {
  for (const auto& v : plan.remove) {
    log::info("retention: removing " + v.str());
    // The entry goes first: a boot entry must never point at a deleted deployment.
    for (const auto& e : BALLAST_TRY(boot.entries()))
      if (e.version == v) BALLAST_CHECK(with_context(boot.remove(e.version), "removing the boot entry of " + v.str()));
    BALLAST_CHECK(snapshot::delete_deployment(host, v));
    BALLAST_CHECK(snapshot::delete_slot(host, v));
  }
  return ok();
}

Status retain(const snapshot::HostLayout& host, boot::BootControl& boot, const std::optional<Version>& booted, int keep) {
  auto status = BALLAST_TRY(read_host_status(host, boot, booted));
  return apply_retention(host, boot, plan_retention(status, keep, {}));
}

Status install_making_room(const snapshot::HostLayout& host, boot::BootControl& boot, const std::optional<Version>& booted,
                           const boot::KernelSpec& spec) {
  auto st = boot.install(spec);
  if (st || st.error().code != "boot.esp-full") return st;
  auto status = BALLAST_TRY(read_host_status(host, boot, booted));
  auto plan = plan_retention(status, 0, {spec.version});
  std::vector<Version> removed;
  // plan.remove is newest first.
  for (auto v = plan.remove.rbegin(); v != plan.remove.rend(); ++v) {
    auto known = std::find_if(status.all.begin(), status.all.end(), [&](const DeploymentStatus& d) { return d.version == *v; });
    if (known == status.all.end() || !known->entry) continue;  // nothing of it on the ESP
    log::notice("the ESP is too full to install " + spec.version.str() + ": removing " + v->str() + " first");
    BALLAST_CHECK(apply_retention(host, boot, RetentionPlan{{}, {*v}}));
    removed.push_back(*v);
    st = boot.install(spec);
    if (st || st.error().code != "boot.esp-full") return st;
  }
  std::string made_room = "no older version to remove";
  if (!removed.empty()) {
    made_room = "removed";
    for (const auto& v : removed) made_room += " " + v.str();
  }
  return with_context(std::move(st), "making room on the ESP (" + made_room + ")");
}

}  // namespace ballast::host
