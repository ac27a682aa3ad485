// fleetlock-server.mjs (a server that follows the FleetLock protocol: a semaphore per group, 423
// when full, steady-state releases) in a private directory; the ChildProcess member kills it
// whatever the test does. With `tls` it serves HTTPS with a CA of its own (ca()), and with
// `client_cert` it also wants a client certificate signed by that CA.
#pragma once

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <thread>

#include "common/file.hpp"
#include "repository/http.hpp"
#include "tests/integration/support/http_servers.hpp"

namespace ballast::testing {

struct FleetLockServer {
  struct Options {
    bool tls = false;
    bool client_cert = false;
  };
  std::string dir;
  ChildProcess proc;
  int port = 0;
  bool tls = false;

  explicit FleetLockServer(int slots) : FleetLockServer(slots, Options{}) {}
  FleetLockServer(int slots, Options o) : tls(o.tls) {
    using namespace std::chrono_literals;
    dir = make_temp_dir("ballast-fleetlock").value();
    std::string port_file = dir + "/port";
    std::vector<std::string> argv{"node", BALLAST_SOURCE_ROOT "/tests/integration/agent/reboot/fleetlock-server.mjs",
                                  "--slots", std::to_string(slots), "--port-file", port_file};
    if (o.tls) {
      REQUIRE(make_test_certificates(dir));
      argv.insert(argv.end(), {"--tls-cert", dir + "/server.pem", "--tls-key", dir + "/server.key"});
    }
    if (o.client_cert) {
      argv.insert(argv.end(), {"--client-ca", ca()});
    }
    auto p = ChildProcess::spawn(argv);
    REQUIRE(p);
    proc = std::move(*p);
    auto listening = wait_for_port_file(port_file);
    REQUIRE(listening);
    port = *listening;
  }
  ~FleetLockServer() {
    proc.stop();
    (void)remove_tree(dir);
  }
  std::string url() const { return (tls ? "https://localhost:" : "http://127.0.0.1:") + std::to_string(port); }
  std::string ca() const { return dir + "/ca.pem"; }
  std::string client_cert() const { return dir + "/client.pem"; }
  std::string client_key() const { return dir + "/client.key"; }

  // What another node's request gets: the HTTP status of POST /v1/<endpoint> for `id`.
  long post(const std::string& endpoint, const std::string& id, const std::string& group = "default") const {
    repository::HttpSettings s;
    if (tls) {
      s.ca_bundle = ca();
      s.client_cert = client_cert();
      s.client_key = client_key();
    }
    auto http = repository::make_curl_http_client(s);
    nlohmann::json body = {{"client_params", {{"id", id}, {"group", group}}}};
    auto r = http->post(url() + "/v1/" + endpoint, body.dump(), {"fleet-lock-protocol: true", "Content-Type: application/json"},
                        64 << 10);
    REQUIRE(r);
    return r->status;
  }
};

}  // namespace ballast::testing
