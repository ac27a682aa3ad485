#include "agent/host/status.hpp"

#include <algorithm>
#include <map>
#include <sstream>

#include "common/version.hpp"

namespace ballast::host {

Result<HostStatus> read_host_status(const snapshot::HostLayout& host, boot::BootControl& boot,
                                    const std::optional<Version>& booted) {
  // Keyed by text: "1.0" and "1.00" are one in the UAPI order but two deployments.
  std::map<std::string, DeploymentStatus> by_version;
  auto of = [&](const Version& v) -> DeploymentStatus& {
    auto& d = by_version[v.str()];
    d.version = v;
    return d;
  };
  for (const auto& v : BALLAST_TRY(snapshot::list_slots(host))) of(v).slot = true;
  for (const auto& v : BALLAST_TRY(snapshot::list_deployments(host))) of(v).deployment = true;
  auto entries = BALLAST_TRY(boot.entries());
  for (const auto& e : entries) of(e.version).entry = e;

  HostStatus s;
  for (auto& [text, d] : by_version) s.all.push_back(d);
  std::stable_sort(s.all.begin(), s.all.end(), [](const auto& a, const auto& b) { return a.version > b.version; });
  for (const auto& d : s.all) {
    if (booted && d.version == *booted) s.booted = d;
  }
  // Staged: what the loader would try next in place of the booted version — the first entry in
  // boot order that is on trial. Rollback: the first good entry in boot order other than the booted.
  for (const auto& e : entries) {
    if (e.version == booted) continue;
    auto it = std::find_if(s.all.begin(), s.all.end(), [&](const auto& d) { return d.version == e.version; });
    if (!s.staged && e.state == boot::EntryState::indeterminate) s.staged = *it;
    if (!s.rollback && e.state == boot::EntryState::good) s.rollback = *it;
  }
  return s;
}

namespace {

nlohmann::json deployment_json(const std::optional<DeploymentStatus>& d, const snapshot::HostLayout& host_paths) {
  if (!d) return nullptr;
  nlohmann::json j{{"image", {{"version", d->version.str()}}},
                   {"slot", d->slot ? nlohmann::json(host_paths.slot(d->version)) : nlohmann::json(nullptr)},
                   {"deployment", d->deployment ? nlohmann::json(host_paths.deployment(d->version)) : nlohmann::json(nullptr)}};
  if (d->entry) {
    j["bootEntry"] = {{"id", d->entry->id},
                      {"state", boot::to_string(d->entry->state)},
                      {"triesLeft", d->entry->has_counter ? nlohmann::json(d->entry->tries_left) : nlohmann::json(nullptr)},
                      {"triesDone", d->entry->has_counter ? nlohmann::json(d->entry->tries_done) : nlohmann::json(nullptr)}};
  } else {
    j["bootEntry"] = nullptr;
  }
  return j;
}

std::string line_for(const char* label, const std::optional<DeploymentStatus>& d) {
  std::ostringstream os;
  os << label;
  if (!d) {
    os << "none\n";
    return os.str();
  }
  os << d->version.str();
  if (d->entry) {
    os << "  entry " << d->entry->id << " (" << boot::to_string(d->entry->state);
    if (d->entry->has_counter) os << ", " << d->entry->tries_left << " tries left";
    os << ")";
  } else {
    os << "  (no boot entry)";
  }
  os << "\n";
  return os.str();
}

}  // namespace

nlohmann::json status_to_json(const HostStatus& s) {
  // Paths are only for display; the JSON carries the layout-relative ones.
  snapshot::HostLayout rel("");
  auto strip = [](nlohmann::json j) {
    for (const char* k : {"slot", "deployment"})
      if (j.is_object() && j[k].is_string()) j[k] = j[k].get<std::string>().substr(1);
    return j;
  };
  nlohmann::json versions = nlohmann::json::array();
  for (const auto& d : s.all) versions.push_back(strip(deployment_json(d, rel)));
  return {{"apiVersion", "org.ballast/v1"},
          {"kind", "BallastHost"},
          {"metadata", {{"name", "host"}}},
          {"spec", nlohmann::json::object()},
          {"status",
           {{"booted", strip(deployment_json(s.booted, rel))},
            {"staged", strip(deployment_json(s.staged, rel))},
            {"rollback", strip(deployment_json(s.rollback, rel))},
            {"bootedError", s.booted_error.empty() ? nlohmann::json(nullptr) : nlohmann::json(s.booted_error)},
            {"versions", versions}}}};
}

std::string status_to_text(const HostStatus& s) {
  std::string out = line_for("booted:   ", s.booted) + line_for("staged:   ", s.staged) + line_for("rollback: ", s.rollback);
  if (!s.booted_error.empty()) out += "(booted version unknown: " + s.booted_error + ")\n";
  return out;
}

}  // namespace ballast::host
