// FleetLock through the real curl client against fleetlock-server.mjs, a server that follows
// the protocol (a semaphore per group, 423 when full, steady-state releases).
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <thread>

#include "agent/reboot/gate.hpp"
#include "agent/reboot/policy.hpp"
#include "common/file.hpp"
#include "tests/integration/agent/reboot/fleet_lock_server.hpp"

using namespace ballast;
using namespace ballast::agent::reboot;
using namespace std::chrono_literals;
using ballast::testing::FleetLockServer;

namespace {

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

namespace {

// The policy `ballast daemon` builds from `toml` on top of reboot.strategy = "fleet_lock".
std::unique_ptr<RebootPolicy> lock_policy(const Clock& clock, const FleetLockServer& server, const std::string& toml) {
  Config config;
  REQUIRE(config.merge_text("[reboot]\nstrategy = \"fleet_lock\"\nfleet_lock_url = \"" + server.url() + "\"\n" + toml,
                            "10-test.toml"));
  auto p = make_reboot_policy(config, clock, "node-a");
  REQUIRE(p);
  return std::move(*p);
}

std::string refusal(RebootPolicy& p) {
  return dynamic_cast<FleetLockGate&>(dynamic_cast<StrategyPolicy&>(p).gate()).last_refusal();
}

}  // namespace

TEST_CASE("FleetLock over HTTPS with a CA of its own works with reboot.fleet_lock_ca_bundle, and not with the repository's settings") {
  FleetLockServer server(1, {.tls = true});
  FakeClock clock;
  SECTION("the repository's CA bundle is not the FleetLock server's") {
    auto p = lock_policy(clock, server, "[repository]\nca_bundle = \"" + server.ca() + "\"\n");
    CHECK_FALSE(p->may_reboot_now().value());
    CHECK_THAT(refusal(*p), Catch::Contains("http.transfer"));
    CHECK(server.post("pre-reboot", "node-b") == 200);  // the refusal took no slot
  }
  SECTION("reboot.fleet_lock_ca_bundle trusts it") {
    auto p = lock_policy(clock, server, "fleet_lock_ca_bundle = \"" + server.ca() + "\"\n");
    CHECK(p->may_reboot_now().value());
    CHECK(server.post("pre-reboot", "node-b") == 423);  // node-a holds the slot
    CHECK(p->steady_state());
    CHECK(server.post("pre-reboot", "node-b") == 200);
  }
}

TEST_CASE("a FleetLock server that wants a client certificate gets reboot.fleet_lock_client_cert and _key") {
  FleetLockServer server(1, {.tls = true, .client_cert = true});
  FakeClock clock;
  const std::string ca = "fleet_lock_ca_bundle = \"" + server.ca() + "\"\n";
  auto without = lock_policy(clock, server, ca);
  CHECK_FALSE(without->may_reboot_now().value());
  CHECK_THAT(refusal(*without), Catch::Contains("http.transfer"));
  auto with = lock_policy(clock, server, ca + "fleet_lock_client_cert = \"" + server.client_cert() + "\"\n" +
                                             "fleet_lock_client_key = \"" + server.client_key() + "\"\n");
  CHECK(with->may_reboot_now().value());
  CHECK(server.post("pre-reboot", "node-b") == 423);
}
