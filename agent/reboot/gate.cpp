#include "agent/reboot/gate.hpp"

#include <algorithm>

#include "common/log.hpp"

namespace ballast::agent::reboot {

Result<bool> PeriodicGate::may_reboot_now() { return window_.is_open(clock_.now()); }

Result<bool> FleetLockGate::may_reboot_now() {
  if (retry_at_ && clock_.now() < *retry_at_) return false;
  if (auto st = client_.pre_reboot(); !st) {
    failed(st.error());
    return false;
  }
  succeeded();
  return true;
}

Status FleetLockGate::steady_state() {
  auto st = client_.steady_state();
  if (!st) {
    failed(st.error());
    return st;
  }
  succeeded();
  return ok();
}

void FleetLockGate::failed(const Error& e) {
  last_refusal_ = e.describe();
  ++failures_;
  auto delay = backoff_.first;
  for (int i = 1; i < failures_ && delay < backoff_.max; ++i) delay *= 2;
  delay = std::min(delay, backoff_.max);
  retry_at_ = clock_.now() + delay;
  log::info("FleetLock: no, next attempt in " + std::to_string(delay.count() / 1000) + "s: " + last_refusal_);
}

void FleetLockGate::succeeded() {
  failures_ = 0;
  retry_at_.reset();
  last_refusal_.clear();
}

std::optional<TimePoint> retry_steady_state(Gate& gate, const Clock& clock) {
  if (gate.steady_state()) return std::nullopt;
  // A gate without a backoff of its own gets a modest retry delay rather than a busy loop.
  return gate.next_attempt().value_or(clock.now() + std::chrono::minutes{1});
}

Result<std::unique_ptr<Gate>> make_reboot_gate(const Config& config, repository::HttpClient& http, const Clock& clock,
                                               const std::string& node_id, const std::string& zoneinfo_dir) {
  const std::string& strategy = config.get_string("reboot.strategy");
  if (strategy == "immediate") return std::unique_ptr<Gate>(std::make_unique<ImmediateGate>());
  if (strategy == "manual") return std::unique_ptr<Gate>(std::make_unique<ManualGate>());
  if (strategy == "periodic") {
    auto zone = TimeZone::load(config.get_string("reboot.time_zone"), zoneinfo_dir);
    if (!zone) return with_context(Result<std::unique_ptr<Gate>>(tl::unexpected(zone.error())), "reboot.time_zone");
    auto window = MaintenanceWindow::parse(config.get_list("reboot.window_days"), config.get_string("reboot.window_start"),
                                           config.get_duration("reboot.window_length"), std::move(*zone));
    if (!window) return tl::unexpected(window.error());
    return std::unique_ptr<Gate>(std::make_unique<PeriodicGate>(std::move(*window), clock));
  }
  if (strategy == "fleet_lock") {
    if (!config.has("reboot.fleet_lock_url"))
      return fail("config.bad-value", "reboot.strategy = \"fleet_lock\" needs reboot.fleet_lock_url");
    auto client = FleetLockClient::create(
        http, FleetLockOptions{config.get_string("reboot.fleet_lock_url"), node_id, config.get_string("reboot.fleet_lock_group")});
    if (!client) return tl::unexpected(client.error());
    return std::unique_ptr<Gate>(std::make_unique<FleetLockGate>(std::move(*client), clock));
  }
  return fail("config.bad-value", "reboot.strategy: unknown strategy \"" + strategy +
                                      "\" (immediate, periodic, fleet_lock or manual)");
}

}  // namespace ballast::agent::reboot
