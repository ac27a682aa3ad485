#include "agent/api.hpp"

namespace ballast::agent {

nlohmann::json to_json(const Progress& p) {
  return {{"percent", p.percent}, {"bytes", p.bytes}, {"totalBytes", p.total_bytes}, {"rate", p.rate},
          {"message", p.message}};
}

void add_to_json(nlohmann::json& j, const BootSecurity& b) {
  j["secureBoot"] = b.secure_boot;
  j["bootEntryType"] = b.entry_type.empty() ? nlohmann::json(nullptr) : nlohmann::json(b.entry_type);
  j["ukiSigned"] = b.uki_signed;
  j["tpm"] = b.tpm;
  j["measuredBoot"] = b.measured_boot;
}

nlohmann::json to_json(const AgentStatus& s) {
  nlohmann::json j = {{"state", s.state},   {"booted", s.booted},         {"staged", s.staged},        {"target", s.target},
          {"pinned", s.pinned}, {"lastError", s.last_error}, {"lastCheck", s.last_check}, {"progress", to_json(s.progress)},
          {"droppedEvents", s.dropped_events}};
  if (s.boot) add_to_json(j, *s.boot);
  if (!s.scheduled_events.empty()) j["scheduledEvents"] = s.scheduled_events;
  if (!s.scheduled_events.empty() || !s.reboot_hold.empty()) j["rebootHold"] = s.reboot_hold;
  if (s.azure) {
    j["azure"] = {{"vmId", s.azure->vm_id}, {"name", s.azure->name}, {"resourceId", s.azure->resource_id},
                  {"location", s.azure->location}, {"zone", s.azure->zone}, {"vmSize", s.azure->vm_size},
                  {"securityProfile", {{"secureBootEnabled", s.azure->secure_boot}, {"virtualTpmEnabled", s.azure->virtual_tpm}}}};
  }
  return j;
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
    if (j.contains("measuredBoot")) {
      BootSecurity b;
      b.secure_boot = j.value("secureBoot", false);
      if (j.contains("bootEntryType") && j["bootEntryType"].is_string()) b.entry_type = j["bootEntryType"];
      b.uki_signed = j.value("ukiSigned", false);
      b.tpm = j.value("tpm", false);
      b.measured_boot = j.value("measuredBoot", "unavailable");
      s.boot = b;
    }
    s.scheduled_events = j.value("scheduledEvents", "");
    s.reboot_hold = j.value("rebootHold", "");
    if (j.contains("azure")) {
      const auto& a = j.at("azure");
      azure::InstanceIdentity id;
      id.vm_id = a.value("vmId", "");
      id.name = a.value("name", "");
      id.resource_id = a.value("resourceId", "");
      id.location = a.value("location", "");
      id.zone = a.value("zone", "");
      id.vm_size = a.value("vmSize", "");
      const auto sp = a.value("securityProfile", nlohmann::json::object());
      id.secure_boot = sp.value("secureBootEnabled", false);
      id.virtual_tpm = sp.value("virtualTpmEnabled", false);
      s.azure = id;
    }
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
