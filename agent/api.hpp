// What the running agent offers its clients. The daemon (agent/daemon) implements AgentApi; the
// D-Bus server (agent/dbus) exposes any AgentApi on the system bus and the CLI reaches it through
// a D-Bus proxy that implements the same interface. Tests use FakeAgentApi-style fakes of their own.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "agent/azure/imds.hpp"
#include "common/result.hpp"

namespace ballast::agent {

// Progress of the current long step (staging): what a progress bar shows.
struct Progress {
  double percent = 0;        // 0..100
  uint64_t bytes = 0;        // bytes fetched so far
  uint64_t total_bytes = 0;  // bytes to fetch; 0 when unknown
  double rate = 0;           // bytes per second, smoothed
  std::string message;       // what is happening, one line
};

// How the host booted (agent/measured_boot.hpp reads it): status and heartbeats carry it.
struct BootSecurity {
  bool secure_boot = false;     // the SecureBoot EFI variable is 1
  std::string entry_type;       // "type1" or "uki": the booted entry's; empty when unknown
  bool uki_signed = false;      // the booted UKI carries an Authenticode signature
  bool tpm = false;             // a TPM sha256 bank is readable
  std::string measured_boot = "unavailable";  // "match", "mismatch" or "unavailable"
};

// Adds secureBoot, bootEntryType, ukiSigned, tpm and measuredBoot to a status object.
void add_to_json(nlohmann::json& j, const BootSecurity& b);

struct AgentStatus {
  std::string state;       // the FlowState name ("idle", "staging", …)
  std::string booted;      // version running now
  std::string staged;      // version staged for the next boot; empty when none
  std::string target;      // version the flow is updating to; empty when idle
  std::string pinned;      // pinned version; empty when not pinned
  std::string last_error;  // the last failure, empty when none
  int64_t last_check = 0;  // unix seconds of the last check; 0 when never
  Progress progress;
  uint64_t dropped_events = 0;  // reports the outbox dropped to stay in its bounds, ever
  std::optional<BootSecurity> boot;  // set by whoever can read the host (heartbeats, status)
  // reboot.azure_scheduled_events: the last decision ("clear", "waiting", "approved",
  // "imds-unreachable"; empty: off or not asked yet) and why (the event that holds the reboot,
  // or that IMDS was not reached).
  std::string scheduled_events, reboot_hold;
  std::optional<azure::InstanceIdentity> azure;  // azure.instance_metadata, when IMDS answered
};

nlohmann::json to_json(const Progress& p);
nlohmann::json to_json(const AgentStatus& s);
Result<AgentStatus> agent_status_from_json(const nlohmann::json& j);

struct UpdateOptions {
  bool download_only = false;  // stage, no reboot for this update
  bool apply = false;          // reboot once staged, as RebootPolicy::allow_once (FleetLock still needs the lock)
};

class AgentApi {
 public:
  virtual ~AgentApi() = default;
  virtual Result<AgentStatus> status() = 0;
  // Asks the repository now; returns {"available": "<version>"|null, "reason": "..."}.
  virtual Result<nlohmann::json> check() = 0;
  // Starts an update in the background; progress shows in status() and in transition signals.
  virtual Status update(const UpdateOptions& options) = 0;
  // Makes the previous good deployment the default (and reboots into it when `reboot`, as the
  // reboot policy allows once: under FleetLock once the lock is granted).
  virtual Status rollback(bool reboot) = 0;
  virtual Status pin(const std::string& version) = 0;
  virtual Status unpin() = 0;
  // Blesses the booted trial entry by hand (the health check does it on its own).
  virtual Status bless() = 0;
  // One JSON object per finished update, oldest first.
  virtual Result<nlohmann::json> history() = 0;
};

// Told of every transition and progress change, on the daemon's event-loop thread: the D-Bus
// server turns these into signals and property changes, the metrics into counters.
class AgentObserver {
 public:
  virtual ~AgentObserver() = default;
  virtual void on_transition(const std::string& from, const std::string& to) = 0;
  virtual void on_progress(const Progress& progress) = 0;
  // An update enters staging: its target and the version it leaves, as the flow recorded them at
  // that moment (a status read later may already belong to the next step, or be empty).
  virtual void on_update_started(const std::string& /*target*/, const std::string& /*from*/) {}
};

}  // namespace ballast::agent
