#include "agent/kubernetes/npd.hpp"

namespace ballast::agent::kubernetes {

namespace {
std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s.size() > 500 ? s.substr(0, 500) : s;
}
}  // namespace

NpdVerdict npd_verdict(const std::optional<nlohmann::json>& flow, const std::optional<HealthReport>& health) {
  if (!flow || !flow->is_object()) return {2, "ballast: the update state cannot be read"};
  const nlohmann::json& f = *flow;
  if (f.value("state", "") == "failed")
    return {1, one_line("BallastUpdateFailed: " + f.value("lastError", std::string("the update failed")))};
  if (f.contains("history") && f["history"].is_array() && !f["history"].empty()) {
    const auto& last = f["history"].back();
    const std::string result = last.value("result", "");
    if (result == "failed")
      return {1, one_line("BallastUpdateFailed: " + last.value("target", std::string()) + ": " + last.value("error", std::string()))};
    if (result == "rolled-back")
      return {1, one_line("BallastRolledBack: " + last.value("target", std::string()) + " was rolled back to " +
                          last.value("from", std::string()) + ": " + last.value("error", std::string()))};
  }
  if (!health) return {2, "ballast: the health checks could not run"};
  if (!health->healthy) {
    std::string names;
    for (const auto& n : health->failures()) names += (names.empty() ? "" : ", ") + n;
    return {1, one_line("BallastHealthCheckFailing: " + names)};
  }
  return {0, "ballast: no update problem"};
}

}  // namespace ballast::agent::kubernetes
