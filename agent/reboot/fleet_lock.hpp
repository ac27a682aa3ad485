// The FleetLock protocol as Zincati and airlock speak it: a node takes one of its group's reboot
// slots with POST {base}/v1/pre-reboot before rebooting and gives it back with POST
// {base}/v1/steady-state once healthy. Both carry the header "fleet-lock-protocol: true" and the
// body {"client_params":{"id":…,"group":…}}; only a 2xx is a yes.
#pragma once

#include <string>

#include "common/result.hpp"
#include "repository/http.hpp"

namespace ballast::agent::reboot {

struct FleetLockOptions {
  std::string base_url;  // "http://host:port" or with a path prefix; a trailing '/' is ignored
  std::string node_id;
  std::string group = "default";
};

class FleetLockClient {
 public:
  // Checks the options: a http(s) base URL, a node id, and a group of [A-Za-z0-9.-]
  // (the protocol's group syntax). Errors are "config.bad-value".
  static Result<FleetLockClient> create(repository::HttpClient& http, FleetLockOptions options);

  // ok: the slot is ours (also when we held it already). Otherwise "fleetlock.refused" with the
  // status and the server's {"kind","value"} error (423 when the group is full), or the
  // transport error ("http.transfer").
  Status pre_reboot();
  // ok: whatever slot this node held is released.
  Status steady_state();

  const FleetLockOptions& options() const { return options_; }

 private:
  FleetLockClient(repository::HttpClient& http, FleetLockOptions options) : http_(&http), options_(std::move(options)) {}
  Status call(const char* endpoint);

  repository::HttpClient* http_;
  FleetLockOptions options_;
};

}  // namespace ballast::agent::reboot
