// The update milestones in the journal, each with a fixed MESSAGE_ID so an operator finds them
// with `journalctl MESSAGE_ID=<id>` and tools can match on them, plus BALLAST_VERSION= (the
// version being updated to) and BALLAST_FROM= (the version the update started from). Records go
// through common/log, which picks journald or stderr.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "agent/update_flow.hpp"
#include "common/log.hpp"

namespace ballast::agent::report {

// Generated once with `systemd-id128 new`; never change them.
inline constexpr const char* kMessageUpdateStarted = "b8673dfb99e846dfa2d528fbcb94ea5e";
inline constexpr const char* kMessageStaged = "d9b301520c9d47eb89fec6315793a762";
inline constexpr const char* kMessageCommitted = "538ff92f94c44f11a8c1fd4652d93e6a";
inline constexpr const char* kMessageRolledBack = "a4bf946c35da4f5aa0b4e8b2c6b8a1ec";
inline constexpr const char* kMessageStateChanged = "155f97c5ab984b90bdce688c1d0e6719";

// The daemon calls this when the flow enters `staging` (the flow reports no event for it).
void journal_update_started(const std::string& version, const std::string& from);
void journal_staged(const std::string& version, const std::string& from);
void journal_committed(const std::string& version, const std::string& from);
// `version` failed and was left; `from` runs again.
void journal_rolled_back(const std::string& version, const std::string& from, const std::string& reason);

// The update flow entered `to` from `from`, for `target` (empty when the flow names none):
// BALLAST_STATE=, BALLAST_PREVIOUS_STATE= and BALLAST_VERSION=. The flow writes it as it saves the
// state, on a step or when a start resumes a written state as another, not when an observer hears
// of it: a state that lasts less than a second and ends in a reboot is still on record. The rest
// between checks (idle to checking and back) is debug.
void journal_state_changed(const std::string& from, const std::string& to, const std::string& target);

// A Reporter in front of another: writes the journal record for "staged", "committed" and
// "rolled-back" events (the data the update flow sends) and passes every event on.
class JournalingReporter final : public Reporter {
 public:
  explicit JournalingReporter(Reporter& next) : next_(next) {}
  void report(const std::string& type, const nlohmann::json& data) override;

 private:
  Reporter& next_;
};

}  // namespace ballast::agent::report
