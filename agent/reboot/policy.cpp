#include "agent/reboot/policy.hpp"

namespace ballast::agent::reboot {

Result<bool> StrategyPolicy::may_reboot_now() {
  switch (override_.load()) {
    case Override::hold: return false;
    case Override::allow_once:
      if (gate_->takes_lock()) break;
      // One reboot: a second question (the reboot failed and the flow asks again) goes to the strategy.
      override_ = Override::none;
      return true;
    case Override::none: break;
  }
  return gate_->may_reboot_now();
}

std::optional<TimePoint> StrategyPolicy::next_attempt() const {
  if (override_.load() == Override::hold) return std::nullopt;
  return gate_->next_attempt();
}

repository::HttpSettings fleet_lock_http_settings(const Config& config) {
  repository::HttpSettings s;
  s.ca_bundle = config.get_string("reboot.fleet_lock_ca_bundle");
  s.client_cert = config.get_string("reboot.fleet_lock_client_cert");
  s.client_key = config.get_string("reboot.fleet_lock_client_key");
  return s;
}

Result<std::unique_ptr<RebootPolicy>> make_reboot_policy(const Config& config, const Clock& clock,
                                                         const std::string& node_id, const std::string& zoneinfo_dir) {
  auto http = repository::make_curl_http_client(fleet_lock_http_settings(config));
  auto gate = BALLAST_TRY(make_reboot_gate(config, *http, clock, node_id, zoneinfo_dir));
  return std::unique_ptr<RebootPolicy>(std::make_unique<StrategyPolicy>(std::move(gate), std::move(http)));
}

}  // namespace ballast::agent::reboot
