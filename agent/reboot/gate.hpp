// The reboot strategies (reboot.strategy): immediate, manual, periodic maintenance windows and
// FleetLock, each a Gate that RebootPolicy (policy.hpp) asks; the policy adds the operator's
// override, so a gate answers for the strategy alone.
//
// - next_attempt(): when to ask again by itself (a window opens, a FleetLock backoff ends), so
//   the daemon arms a timer instead of polling; nullopt means only an operator can change the answer.
// - takes_lock(): whether the gate holds something other nodes count on (FleetLock's slot), which
//   an operator's "reboot now" must still take.
// At start-up the daemon sends steady_state() (FleetLock: a slot a previous boot took is given
// back; the other strategies have nothing to send); retry_steady_state() says when to send it again.
//
// Not thread-safe: the flow's thread asks.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "agent/reboot/fleet_lock.hpp"
#include "agent/reboot/window.hpp"
#include "agent/update_flow.hpp"
#include "common/clock.hpp"
#include "common/config.hpp"
#include "repository/http.hpp"

namespace ballast::agent::reboot {

using TimePoint = std::chrono::system_clock::time_point;

class Gate : public RebootGate {
 public:
  virtual const char* strategy() const = 0;
  virtual std::optional<TimePoint> next_attempt() const { return std::nullopt; }
  virtual bool takes_lock() const { return false; }
  Status steady_state() override { return ok(); }
};

class ImmediateGate final : public Gate {
 public:
  const char* strategy() const override { return "immediate"; }
  Result<bool> may_reboot_now() override { return true; }
};

// Stage and wait: only the operator (RebootPolicy::allow_once) reboots.
class ManualGate final : public Gate {
 public:
  const char* strategy() const override { return "manual"; }
  Result<bool> may_reboot_now() override { return false; }
};

class PeriodicGate final : public Gate {
 public:
  PeriodicGate(MaintenanceWindow window, const Clock& clock) : window_(std::move(window)), clock_(clock) {}
  const char* strategy() const override { return "periodic"; }
  Result<bool> may_reboot_now() override;
  std::optional<TimePoint> next_attempt() const override { return window_.next_opening(clock_.now()); }
  const MaintenanceWindow& window() const { return window_; }

 private:
  MaintenanceWindow window_;
  const Clock& clock_;
};

struct Backoff {
  std::chrono::milliseconds first{std::chrono::seconds{15}};
  std::chrono::milliseconds max{std::chrono::minutes{10}};
};

// A refusal or a transport failure is "not now" (false), never an error of the flow: the next
// request waits out a doubling backoff, and may_reboot_now() answers false without asking the
// server until then.
class FleetLockGate final : public Gate {
 public:
  FleetLockGate(FleetLockClient client, const Clock& clock, Backoff backoff = {})
      : client_(std::move(client)), clock_(clock), backoff_(backoff) {}
  const char* strategy() const override { return "fleet_lock"; }
  Result<bool> may_reboot_now() override;
  // Sent at once even during a backoff (the flow calls it once, when healthy); a failure is
  // returned so the caller retries at next_attempt().
  Status steady_state() override;
  std::optional<TimePoint> next_attempt() const override { return retry_at_; }
  bool takes_lock() const override { return true; }
  // Why the last request failed; empty after a success.
  const std::string& last_refusal() const { return last_refusal_; }
  const FleetLockClient& client() const { return client_; }

 private:
  void failed(const Error& e);
  void succeeded();

  FleetLockClient client_;
  const Clock& clock_;
  Backoff backoff_;
  int failures_ = 0;
  std::optional<TimePoint> retry_at_;
  std::string last_refusal_;
};

// Sends steady-state (as at start-up): nullopt when done, else when to try again.
std::optional<TimePoint> retry_steady_state(Gate& gate, const Clock& clock);

// The gate reboot.strategy names, from the reboot.* keys. Errors name the key
// ("config.bad-value", "reboot.bad-window", "reboot.bad-time-zone"). `node_id` is node.id or
// the id derived from the machine id; `http` and `clock` must outlive the gate.
Result<std::unique_ptr<Gate>> make_reboot_gate(const Config& config, repository::HttpClient& http, const Clock& clock,
                                               const std::string& node_id,
                                               const std::string& zoneinfo_dir = "/usr/share/zoneinfo");

}  // namespace ballast::agent::reboot
