// A private dbus-daemon with the real dev.ballast.Agent1 policy (units/), a fake AgentApi and the
// real Server running on its own sd-event loop thread: what the D-Bus tests talk to.
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "agent/api.hpp"
#include "agent/dbus/server.hpp"

namespace ballast::test {

// dbus-daemon --nofork on a socket in a fresh directory; killed and reaped in the destructor.
class PrivateBus {
 public:
  static std::unique_ptr<PrivateBus> start();
  ~PrivateBus();
  const std::string& address() const { return address_; }

 private:
  PrivateBus() = default;
  std::string dir_;
  std::string address_;
  pid_t pid_ = -1;
};

// Records every call; update() walks the flow through observer transitions and progress the way
// the daemon does, synchronously, on the server's thread.
class FakeAgent : public agent::AgentApi {
 public:
  agent::AgentObserver* observer = nullptr;
  // update() also delivers an older progress event after the newest, as a queue can.
  bool late_progress_event = false;

  Result<agent::AgentStatus> status() override;
  Result<nlohmann::json> check() override;
  Status update(const agent::UpdateOptions& options) override;
  Status rollback(bool reboot) override;
  Status pin(const std::string& version) override;
  Status unpin() override;
  Status bless() override;
  Result<nlohmann::json> history() override;

  std::vector<std::string> calls() const;
  agent::AgentStatus snapshot() const;

 private:
  void record(const std::string& call);
  void move_to(const std::string& to);
  mutable std::mutex mutex_;
  std::vector<std::string> calls_;
  agent::AgentStatus status_ = initial();
  static agent::AgentStatus initial();
};

// The Server attached to an sd-event loop on its own thread; stopped and joined in the destructor.
class ServerThread {
 public:
  static std::unique_ptr<ServerThread> start(agent::AgentApi& api, agent::dbus::ServerOptions options);
  ~ServerThread();
  agent::dbus::Server& server() { return *server_; }
  // Ends the event loop (which closes the bus, as the daemon's does when it exits) and joins its
  // thread; the server stays, so what is dispatched after can be called on it from here.
  void stop_loop();

 private:
  ServerThread() = default;
  std::unique_ptr<agent::dbus::Server> server_;
  int stop_fd_ = -1;
  std::thread thread_;
};

// Runs `body` in a forked child as uid/gid 65534 (nobody/nogroup); returns its exit status
// (or 128 + signal). The child must not touch the parent's sd-bus connections.
int run_as_nobody(const std::function<int()>& body);

// argv prefixed to run a command as nobody/nogroup (setpriv), for run_process.
std::vector<std::string> as_nobody(std::vector<std::string> argv, bool with_nogroup_supplementary = false);

}  // namespace ballast::test
