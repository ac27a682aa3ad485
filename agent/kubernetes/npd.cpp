#include "agent/kubernetes/npd.hpp"
#include "common/json_member.hpp"

namespace ballast::agent::kubernetes {

namespace {
std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s.size() > 500 ? s.substr(0, 500) : s;
}
}  // namespace

NpdVerdict npd_verdict(const std::optional<nlohmann::json>& flow, const std::optional<HealthReport>& health,
                       const RepositoryReach& repository) {
  if (!flow || !flow->is_object()) return {2, "ballast: the update state cannot be read"};
  const nlohmann::json& f = *flow;
  if (string_member(f, "state") == "failed")
    return {1, one_line("BallastUpdateFailed: " + string_member(f, "lastError", "the update failed"))};
  // The last update's line: a check that failed before choosing a target (no "target") is no
  // failed update; a repository that stays away is its own condition below.
  const nlohmann::json* update = nullptr;
  if (f.contains("history") && f["history"].is_array())
    for (auto it = f["history"].rbegin(); it != f["history"].rend() && !update; ++it)
      if (it->is_object() && !string_member(*it, "target").empty()) update = &*it;
  if (update) {
    const auto& last = *update;
    const std::string result = string_member(last, "result");
    if (result == "failed")
      return {1, one_line("BallastUpdateFailed: " + string_member(last, "target") + ": " + string_member(last, "error"))};
    if (result == "rolled-back")
      return {1, one_line("BallastRolledBack: " + string_member(last, "target") + " was rolled back to " +
                          string_member(last, "from") + ": " + string_member(last, "error"))};
  }
  if (!repository.contact) return {2, "ballast: the repository's record cannot be read"};
  if (auto unreachable = repository_unreachable(*repository.contact, repository.now, repository.threshold))
    return {1, one_line("BallastRepositoryUnreachable: " + *unreachable)};
  if (!health) return {2, "ballast: the health checks could not run"};
  if (!health->healthy) {
    std::string names;
    for (const auto& n : health->failures()) names += (names.empty() ? "" : ", ") + n;
    return {1, one_line("BallastHealthCheckFailing: " + names)};
  }
  return {0, "ballast: no update problem"};
}

}  // namespace ballast::agent::kubernetes
