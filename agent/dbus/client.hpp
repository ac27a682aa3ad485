// A proxy that implements AgentApi over D-Bus (the CLI's way to the daemon), and the way to follow
// the daemon's StateChanged signals and Progress changes while a call's effects unfold.
//
// Errors: "dbus.connect" when no bus answers, "dbus.no-daemon" when nobody owns kBusName (both
// mean "the agent is not running": see is_not_running), "agent.access-denied" when the daemon
// refused a mutating call, and the daemon's own codes for AgentApi errors.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include <systemd/sd-bus.h>

#include "agent/api.hpp"
#include "common/result.hpp"

namespace ballast::agent::dbus {

struct AgentEvent {
  enum class Kind { transition, progress };
  Kind kind = Kind::transition;
  std::string from, to;  // transition
  Progress progress;     // progress
};

class Client : public AgentApi {
 public:
  // `address` empty: the system bus.
  static Result<std::unique_ptr<Client>> connect(const std::string& address);
  ~Client() override;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  Result<AgentStatus> status() override;
  Result<nlohmann::json> check() override;
  Status update(const UpdateOptions& options) override;
  Status rollback(bool reboot) override;
  Status pin(const std::string& version) override;
  Status unpin() override;
  Status bless() override;
  Result<nlohmann::json> history() override;

  // Delivers every later StateChanged signal and Progress change to `handler`. Subscribe before
  // the call whose effects you follow: events the daemon emits while answering are kept.
  using EventHandler = std::function<void(const AgentEvent&)>;
  Status subscribe(EventHandler handler);
  // Dispatches events until `done()` holds. Fails with "dbus.no-daemon" when the daemon leaves
  // the bus meanwhile, "dbus.timeout" after `timeout` (zero: wait for ever).
  Status wait_until(const std::function<bool()>& done, std::chrono::milliseconds timeout = {});

 private:
  explicit Client(sd_bus* bus) : bus_(bus) {}
  Status call(const char* method, sd_bus_message** reply, const char* types, ...);
  Result<std::string> call_for_string(const char* method);
  static int on_signal(sd_bus_message* m, void* userdata, sd_bus_error* error);
  static int on_properties(sd_bus_message* m, void* userdata, sd_bus_error* error);
  static int on_owner(sd_bus_message* m, void* userdata, sd_bus_error* error);

  sd_bus* bus_ = nullptr;
  sd_bus_slot* signal_slot_ = nullptr;
  sd_bus_slot* properties_slot_ = nullptr;
  sd_bus_slot* owner_slot_ = nullptr;
  EventHandler handler_;
  bool daemon_left_ = false;
};

// The daemon is not there to ask: no bus, or nobody owns the name.
bool is_not_running(const Error& e);

// Reads the (dttds) Progress struct at the message's read position.
Result<Progress> read_progress(sd_bus_message* m);

}  // namespace ballast::agent::dbus
