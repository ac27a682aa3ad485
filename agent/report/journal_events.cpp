#include "agent/report/journal_events.hpp"

namespace ballast::agent::report {

namespace {

log::Fields milestone(const char* message_id, const std::string& version, const std::string& from) {
  log::Fields f = {{"MESSAGE_ID", message_id}, {"BALLAST_VERSION", version}};
  if (!from.empty()) f.emplace_back("BALLAST_FROM", from);
  return f;
}

std::string field(const nlohmann::json& data, const char* key) {
  if (data.is_object() && data.contains(key) && data[key].is_string()) return data[key].get<std::string>();
  return {};
}

std::string from_part(const std::string& from) { return from.empty() ? "" : " from " + from; }

}  // namespace

void journal_update_started(const std::string& version, const std::string& from) {
  log::notice("update to " + version + from_part(from) + " started", milestone(kMessageUpdateStarted, version, from));
}

void journal_staged(const std::string& version, const std::string& from) {
  log::notice("update to " + version + " staged; it boots on trial next", milestone(kMessageStaged, version, from));
}

void journal_committed(const std::string& version, const std::string& from) {
  log::notice("update to " + version + from_part(from) + " committed", milestone(kMessageCommitted, version, from));
}

void journal_rolled_back(const std::string& version, const std::string& from, const std::string& reason) {
  auto f = milestone(kMessageRolledBack, version, from);
  if (!reason.empty()) f.emplace_back("BALLAST_REASON", reason);
  log::warning("update to " + version + " rolled back" + (from.empty() ? "" : "; " + from + " runs again") +
                   (reason.empty() ? "" : ": " + reason),
               f);
}

void journal_state_changed(const std::string& from, const std::string& to, const std::string& target) {
  log::Fields f = {{"MESSAGE_ID", kMessageStateChanged}, {"BALLAST_STATE", to}, {"BALLAST_PREVIOUS_STATE", from}};
  if (!target.empty()) f.emplace_back("BALLAST_VERSION", target);
  auto resting = [](const std::string& s) { return s == "idle" || s == "checking"; };
  log::write(resting(from) && resting(to) ? log::Level::debug : log::Level::info,
             "update flow: " + from + " -> " + to + (target.empty() ? "" : " (" + target + ")"), f);
}

void JournalingReporter::report(const std::string& type, const nlohmann::json& data) {
  if (type == "staged") {
    journal_staged(field(data, "version"), field(data, "from"));
  } else if (type == "committed") {
    journal_committed(field(data, "version"), field(data, "from"));
  } else if (type == "rolled-back") {
    // The flow's rolled-back event names the failed version "from" and the one running "to".
    journal_rolled_back(field(data, "from"), field(data, "to"), field(data, "reason"));
  }
  next_.report(type, data);
}

}  // namespace ballast::agent::report
