// FleetLock through the real curl client against fleetlock-server.mjs, a server that follows
// the protocol (a semaphore per group, 423 when full, steady-state releases).
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <thread>

#include "agent/reboot/gate.hpp"
#include "common/file.hpp"
#include "tests/integration/support/http_servers.hpp"

using namespace ballast;
using namespace ballast::agent::reboot;
using namespace std::chrono_literals;

namespace {

// The node server in a private directory; the ChildProcess member kills it whatever the test does.
struct FleetLockServer {
  std::string dir;
  ballast::testing::ChildProcess proc;
  int port = 0;

  explicit FleetLockServer(int slots) {
    dir = make_temp_dir("ballast-fleetlock").value();
    std::string port_file = dir + "/port";
    auto p = ballast::testing::ChildProcess::spawn(
        {"node", BALLAST_SOURCE_ROOT "/tests/integration/agent/reboot/fleetlock-server.mjs", "--slots",
         std::to_string(slots), "--port-file", port_file});
    REQUIRE(p);
    proc = std::move(*p);
    for (int i = 0; i < 1000 && !path_exists(port_file); ++i) std::this_thread::sleep_for(10ms);
    auto text = read_file(port_file);
    REQUIRE(text);
    port = std::stoi(*text);
  }
  ~FleetLockServer() {
    proc.stop();
    (void)remove_tree(dir);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port); }
};

FleetLockGate gate(repository::HttpClient& http, const Clock& clock, const std::string& base, const std::string& id,
                   const std::string& group) {
  auto c = FleetLockClient::create(http, FleetLockOptions{base, id, group});
  REQUIRE(c);
  return FleetLockGate(std::move(*c), clock, Backoff{1s, 1s});
}

nlohmann::json params(const std::string& id, const std::string& group) {
  return {{"client_params", {{"id", id}, {"group", group}}}};
}

}  // namespace

TEST_CASE("two nodes and one slot: the second waits with 423 until the first reports steady-state") {
  FleetLockServer server(1);
  auto http = repository::make_curl_http_client();
  FakeClock clock;
  auto a = gate(*http, clock, server.url(), "node-a", "workers");
  auto b = gate(*http, clock, server.url(), "node-b", "workers");
  auto other = gate(*http, clock, server.url(), "node-c", "databases");

  CHECK(a.may_reboot_now().value());
  CHECK_FALSE(b.may_reboot_now().value());
  CHECK(b.last_refusal().find("HTTP 423") != std::string::npos);
  CHECK(b.last_refusal().find("failed_lock") != std::string::npos);
  // The holder asking again keeps its slot; another group has a semaphore of its own.
  CHECK(a.may_reboot_now().value());
  CHECK(other.may_reboot_now().value());
  clock.advance(1s);
  CHECK_FALSE(b.may_reboot_now().value());

  REQUIRE(a.steady_state());
  clock.advance(1s);
  CHECK(b.may_reboot_now().value());
  clock.advance(1s);
  CHECK_FALSE(a.may_reboot_now().value());
  REQUIRE(b.steady_state());
  clock.advance(1s);
  CHECK(a.may_reboot_now().value());
}

TEST_CASE("the FleetLock server refuses a request without the protocol header or with a bad id or group") {
  FleetLockServer server(1);
  auto http = repository::make_curl_http_client();
  const std::vector<std::string> proto = {"fleet-lock-protocol: true", "Content-Type: application/json"};
  auto post = [&](const std::string& endpoint, const nlohmann::json& body, const std::vector<std::string>& headers) {
    auto r = http->post(server.url() + "/v1/" + endpoint, body.dump(), headers);
    REQUIRE(r);
    return *r;
  };
  auto no_header = post("pre-reboot", params("node-a", "workers"), {"Content-Type: application/json"});
  CHECK(no_header.status == 400);
  CHECK(nlohmann::json::parse(no_header.body)["kind"] == "missing_header");
  CHECK(post("pre-reboot", params("", "workers"), proto).status == 400);
  CHECK(post("pre-reboot", params("node-a", "bad group!"), proto).status == 400);
  CHECK(post("pre-reboot", nlohmann::json{{"id", "node-a"}}, proto).status == 400);
  // None of the refused requests took the slot.
  CHECK(post("pre-reboot", params("node-b", "workers"), proto).status == 200);
  CHECK(post("pre-reboot", params("node-a", "workers"), proto).status == 423);
}

TEST_CASE("steady-state at start-up is retried until the FleetLock server answers") {
  auto http = repository::make_curl_http_client();
  FakeClock clock;
  std::string base;
  {
    // A port where nothing listens: the server is not up yet.
    FleetLockServer gone(1);
    base = gone.url();
  }
  auto g = gate(*http, clock, base, "node-a", "workers");
  auto again = retry_steady_state(g, clock);
  REQUIRE(again);
  CHECK(g.last_refusal().find("http.transfer") != std::string::npos);
  CHECK_FALSE(g.may_reboot_now().value());

  FleetLockServer server(1);
  auto up = gate(*http, clock, server.url(), "node-a", "workers");
  CHECK(up.may_reboot_now().value());  // a lock left over from before the reboot
  auto other = gate(*http, clock, server.url(), "node-b", "workers");
  CHECK_FALSE(other.may_reboot_now().value());
  CHECK_FALSE(retry_steady_state(up, clock));
  clock.advance(1s);
  CHECK(other.may_reboot_now().value());
}
