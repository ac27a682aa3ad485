// The agent's D-Bus server: exposes any AgentApi as object kObjectPath, interface kInterface, and
// owns the name kBusName (see names.hpp). Properties State, BootedVersion, StagedVersion,
// TargetVersion, Pinned, LastError, LastCheck (x, unix seconds) and Progress
// ((dttds) percent, bytes, total bytes, rate in bytes/s, message); methods Check() → s (JSON),
// Update(a{sv} "download-only", "apply"), Rollback(b reboot), Pin(s), Unpin(), Bless(),
// History() → s (JSON); signal StateChanged(s from, s to), and PropertiesChanged on every
// transition and progress change (the server is the AgentObserver that emits them).
//
// Reads are open to everyone the bus policy lets through; mutating methods only to uid 0 and
// members of the admin group, refused with kAccessDenied. AgentApi errors become D-Bus errors
// named after their code (error_name_for_code) carrying Error::describe().
#pragma once

#include <memory>
#include <string>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "agent/api.hpp"
#include "common/result.hpp"

namespace ballast::agent::dbus {

struct ServerOptions {
  std::string bus_address;   // empty: the system bus
  std::string admin_group;   // members may call mutating methods besides root; empty: root only
  bool request_name = true;  // own kBusName (off only for tests that run two servers)
};

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

  void on_transition(const std::string& from, const std::string& to) override;
  void on_progress(const Progress& progress) override;

  sd_bus* bus() const { return bus_; }
  // The unique name of the server's connection (":1.N").
  std::string unique_name() const;

 private:
  Server(AgentApi& api, ServerOptions options) : api_(api), options_(std::move(options)) {}
  Result<bool> caller_may_mutate(sd_bus_message* m);
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

  AgentApi& api_;
  ServerOptions options_;
  sd_bus* bus_ = nullptr;
  sd_bus_slot* slot_ = nullptr;
};

}  // namespace ballast::agent::dbus
