// RebootPolicy: every decision about rebooting into a staged update, in one place. The update
// flow asks it (it is the flow's RebootGate); the daemon tells it what the operator asked and
// asks it when to wake up again.
//
// - The strategy (reboot.strategy, a Gate) answers by default.
// - The operator's override lasts for one update, until end_of_update():
//   allow_once() (`update --apply`, `rollback --reboot`) opens a maintenance window or a manual
//   gate for one reboot, but FleetLock's lock is still taken: other nodes count on it.
//   hold() (`update --download-only`) means no reboot for this update, whatever the strategy.
// - next_attempt(): when the answer may change by itself (a window opens, a FleetLock backoff
//   ends), so the daemon arms a timer for it instead of polling; nullopt: only an operator can.
// - Rebooting back after a failed health check is not gated (the flow's reverting step calls the
//   rebooter directly): the host runs a release known to be broken, and the trial entry is
//   already marked bad, so waiting for a window or a lock would only keep it running longer. Under
//   FleetLock this node still holds the lock it took to boot the trial, so the reboot back is
//   covered by it.
//
// allow_once(), hold() and end_of_update() may be called from another thread than the flow's.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "agent/api.hpp"
#include "agent/reboot/gate.hpp"
#include "agent/update_flow.hpp"
#include "common/clock.hpp"
#include "common/config.hpp"
#include "repository/http.hpp"

namespace ballast::agent::reboot {

class RebootPolicy : public RebootGate {
 public:
  virtual const char* strategy() const = 0;
  virtual void allow_once() = 0;
  virtual void hold() = 0;
  // The update under way is over (the flow rests idle): the strategy alone answers again.
  virtual void end_of_update() = 0;
  virtual std::optional<TimePoint> next_attempt() const = 0;
  // Adds what a layer over the strategy knows to the status (the Scheduled Events layer: why the
  // reboot is held); the strategy alone adds nothing.
  virtual void describe(AgentStatus&) const {}
};

// The policy over the configured strategy.
class StrategyPolicy final : public RebootPolicy {
 public:
  // `http` is the FleetLock client's own HTTP client (nullptr for the other strategies); the
  // gate refers to it, so the policy keeps both.
  StrategyPolicy(std::unique_ptr<Gate> gate, std::unique_ptr<repository::HttpClient> http = nullptr)
      : http_(std::move(http)), gate_(std::move(gate)) {}

  Result<bool> may_reboot_now() override;
  Status steady_state() override { return gate_->steady_state(); }
  const char* strategy() const override { return gate_->strategy(); }
  void allow_once() override { override_ = Override::allow_once; }
  void hold() override { override_ = Override::hold; }
  void end_of_update() override { override_ = Override::none; }
  // nullopt while held: only the operator ends a hold.
  std::optional<TimePoint> next_attempt() const override;
  Gate& gate() { return *gate_; }

 private:
  enum class Override { none, allow_once, hold };
  std::unique_ptr<repository::HttpClient> http_;
  std::unique_ptr<Gate> gate_;
  std::atomic<Override> override_{Override::none};
};

// For unit tests of the daemon: answers `open`, records what it was told.
class FakeRebootPolicy final : public RebootPolicy {
 public:
  bool open = true;
  std::optional<TimePoint> next;
  int asked = 0, steady = 0, allowed_once = 0, held = 0, ended = 0;

  Result<bool> may_reboot_now() override {
    ++asked;
    return open;
  }
  Status steady_state() override {
    ++steady;
    return ok();
  }
  const char* strategy() const override { return "fake"; }
  void allow_once() override { ++allowed_once; }
  void hold() override { ++held; }
  void end_of_update() override { ++ended; }
  std::optional<TimePoint> next_attempt() const override { return next; }
};

// The FleetLock server's own TLS settings (reboot.fleet_lock_ca_bundle, _client_cert,
// _client_key): empty means the system's CA store and no client certificate, never the
// repository's settings.
repository::HttpSettings fleet_lock_http_settings(const Config& config);

// The policy over make_reboot_gate(), with FleetLock's HTTP client built from
// fleet_lock_http_settings(). `clock` must outlive it.
Result<std::unique_ptr<RebootPolicy>> make_reboot_policy(const Config& config, const Clock& clock,
                                                         const std::string& node_id,
                                                         const std::string& zoneinfo_dir = "/usr/share/zoneinfo");

}  // namespace ballast::agent::reboot
