#include "agent/reboot/fleet_lock.hpp"

#include <cctype>

#include <nlohmann/json.hpp>

namespace ballast::agent::reboot {

namespace {

bool valid_group(const std::string& g) {
  if (g.empty() || g.size() > 253) return false;
  for (char ch : g)
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '.' && ch != '-') return false;
  return true;
}

}  // namespace

Result<FleetLockClient> FleetLockClient::create(repository::HttpClient& http, FleetLockOptions options) {
  while (!options.base_url.empty() && options.base_url.back() == '/') options.base_url.pop_back();
  if (options.base_url.rfind("http://", 0) != 0 && options.base_url.rfind("https://", 0) != 0)
    return fail("config.bad-value", "reboot.fleet_lock_url: \"" + options.base_url + "\" is not an http(s) URL");
  if (options.node_id.empty()) return fail("config.bad-value", "fleet_lock needs a node id (node.id)");
  if (!valid_group(options.group))
    return fail("config.bad-value", "reboot.fleet_lock_group: \"" + options.group + "\" may hold only letters, digits, '.' and '-'");
  return FleetLockClient(http, std::move(options));
}

Status FleetLockClient::pre_reboot() { return call("pre-reboot"); }
Status FleetLockClient::steady_state() { return call("steady-state"); }

Status FleetLockClient::call(const char* endpoint) {
  std::string url = options_.base_url + "/v1/" + endpoint;
  nlohmann::json body = {{"client_params", {{"id", options_.node_id}, {"group", options_.group}}}};
  auto r = http_->post(url, body.dump(), {"fleet-lock-protocol: true", "Content-Type: application/json"}, 64 << 10);
  if (!r) return with_context(Status(tl::unexpected(r.error())), std::string("FleetLock ") + endpoint);
  if (r->status >= 200 && r->status < 300) return ok();
  std::string why = "HTTP " + std::to_string(r->status);
  // The protocol's error body is {"kind": …, "value": …}; anything else is quoted as text.
  auto err = nlohmann::json::parse(r->body, nullptr, false);
  if (err.is_object() && err.contains("kind") && err["kind"].is_string()) {
    why += " " + err["kind"].get<std::string>();
    if (err.contains("value") && err["value"].is_string()) why += ": " + err["value"].get<std::string>();
  } else if (!r->body.empty()) {
    why += " " + r->body.substr(0, 200);
  }
  return fail("fleetlock.refused", std::string("FleetLock ") + endpoint + " refused: " + why);
}

}  // namespace ballast::agent::reboot
