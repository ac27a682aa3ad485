#include "agent/api.hpp"

namespace ballast::agent {

nlohmann::json to_json(const Progress& p) {
  return {{"percent", p.percent}, {"bytes", p.bytes}, {"totalBytes", p.total_bytes}, {"rate", p.rate},
          {"message", p.message}};
}

nlohmann::json to_json(const AgentStatus& s) {
  return {{"state", s.state},   {"booted", s.booted},         {"staged", s.staged},        {"target", s.target},
          {"pinned", s.pinned}, {"lastError", s.last_error}, {"lastCheck", s.last_check}, {"progress", to_json(s.progress)},
          {"droppedEvents", s.dropped_events}};
}

Result<AgentStatus> agent_status_from_json(const nlohmann::json& j) {
  if (!j.is_object()) return fail("agent.bad-status", "agent status is not a JSON object");
  try {
    AgentStatus s;
    s.state = j.at("state").get<std::string>();
    s.booted = j.value("booted", "");
    s.staged = j.value("staged", "");
    s.target = j.value("target", "");
    s.pinned = j.value("pinned", "");
    s.last_error = j.value("lastError", "");
    s.last_check = j.value("lastCheck", int64_t{0});
    s.dropped_events = j.value("droppedEvents", uint64_t{0});
    if (j.contains("progress")) {
      const auto& p = j.at("progress");
      s.progress.percent = p.value("percent", 0.0);
      s.progress.bytes = p.value("bytes", uint64_t{0});
      s.progress.total_bytes = p.value("totalBytes", uint64_t{0});
      s.progress.rate = p.value("rate", 0.0);
      s.progress.message = p.value("message", "");
    }
    return s;
  } catch (const nlohmann::json::exception& e) {
    return fail("agent.bad-status", std::string("agent status: ") + e.what());
  }
}

}  // namespace ballast::agent
