// The agent's D-Bus server: exposes any AgentApi as object kObjectPath, interface kInterface, and
// owns the name kBusName (see names.hpp). Properties State, BootedVersion, StagedVersion,
// TargetVersion, Pinned, LastError, LastCheck (x, unix seconds), Progress
// ((dttds) percent, bytes, total bytes, rate in bytes/s, message) and DroppedEvents (t); methods Check() → s (JSON),
// Update(a{sv} "download-only", "apply"), Rollback(b reboot), Pin(s), Unpin(), Bless(),
// History() → s (JSON); signal StateChanged(s from, s to), and PropertiesChanged on every
// transition and progress change (the server is the AgentObserver that emits them).
//
// Reads are open to everyone the bus policy lets through; mutating methods only to uid 0 and
// members of the admin group, refused with kAccessDenied. Check() asks the repository and reports
// a `checked` event, so anyone else is answered with the last check's result (success or error)
// while it is younger than kUnprivilegedCheckInterval: a local user cannot flood the repository
// or the event outbox. AgentApi errors become D-Bus errors
// named after their code (error_name_for_code) carrying Error::describe().
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "agent/api.hpp"
#include "common/clock.hpp"
#include "common/result.hpp"

namespace ballast::agent::dbus {

struct ServerOptions {
  std::string bus_address;   // empty: the system bus
  std::string admin_group;   // members may call mutating methods besides root; empty: root only
  bool request_name = true;  // own kBusName (off only for tests that run two servers)
  const Clock* clock = nullptr;  // for Check()'s interval; null: the system clock
};

// How long a check answers unprivileged callers of Check() instead of a new one.
inline constexpr std::chrono::seconds kUnprivilegedCheckInterval{60};

class Server : public AgentObserver {
 public:
  // Connects and registers the object; `api` must outlive the server. Messages are handled once
  // the server is attached to an event loop (or by process()).
  static Result<std::unique_ptr<Server>> open(AgentApi& api, const ServerOptions& options);
  ~Server() override;
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Runs the server on the daemon's event loop (the thread the observer is called on).
  Status attach(sd_event* event);
  // Handles the queued messages without an event loop; returns whether any was handled.
  Result<bool> process();

  // Each emits the agent's status as it is now, never an older value the event carried: events
  // reach the server from a queue, after the status may have moved on, and a property's change
  // signal must agree with what Get returns. Once the bus is closed (the event loop closes it as
  // it exits, and a simulated reboot's last steps are dispatched after that) nothing is sent.
  void on_transition(const std::string& from, const std::string& to) override;
  void on_progress(const Progress& progress) override;
  // Emits PropertiesChanged for a change that is no transition (a reboot hold that comes or goes).
  void on_status_changed();

  sd_bus* bus() const { return bus_; }
  // The unique name of the server's connection (":1.N").
  std::string unique_name() const;

 private:
  Server(AgentApi& api, ServerOptions options);
  // uid 0 or a member of options_.admin_group, from the bus daemon's credentials of the sender.
  Result<bool> caller_is_admin(sd_bus_message* m);
  // False once the connection is closed; says so in the debug log with what was not sent
  // (a transition's states when given). Builds no text while the bus is open.
  bool can_emit(std::string_view signal, std::string_view from = {}, std::string_view to = {}) const;
  // PropertiesChanged for `names` (ending in nullptr) with the status as it is now.
  void emit_properties_changed(std::string_view what, const char* const* names);
  static const sd_bus_vtable* vtable();

  static int method_check(sd_bus_message* m, void* userdata, sd_bus_error* error);
  static int method_update(sd_bus_message* m, void* userdata, sd_bus_error* error);
  static int method_rollback(sd_bus_message* m, void* userdata, sd_bus_error* error);
  static int method_pin(sd_bus_message* m, void* userdata, sd_bus_error* error);
  static int method_unpin(sd_bus_message* m, void* userdata, sd_bus_error* error);
  static int method_bless(sd_bus_message* m, void* userdata, sd_bus_error* error);
  static int method_history(sd_bus_message* m, void* userdata, sd_bus_error* error);
  static int get_property(sd_bus* bus, const char* path, const char* interface, const char* property,
                          sd_bus_message* reply, void* userdata, sd_bus_error* error);
  // Runs a mutating AgentApi call after the access check and answers with an empty reply.
  static int mutate(sd_bus_message* m, void* userdata, sd_bus_error* error, Status (*call)(Server&, sd_bus_message*));

  struct LastCheck {
    std::chrono::steady_clock::time_point at;
    Result<nlohmann::json> result;
  };
  AgentApi& api_;
  ServerOptions options_;
  SystemClock system_clock_;
  const Clock& clock_;
  std::optional<LastCheck> last_check_;
  sd_bus* bus_ = nullptr;
  sd_bus_slot* slot_ = nullptr;
};

}  // namespace ballast::agent::dbus
