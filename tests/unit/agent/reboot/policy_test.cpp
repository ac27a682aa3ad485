// RebootPolicy for each strategy × {the strategy alone, allow_once, hold (download-only)}.
#include "agent/reboot/policy.hpp"

#include <catch2/catch.hpp>

#include "tests/unit/agent/reboot/time_support.hpp"

using namespace ballast;
using namespace ballast::agent::reboot;
using ballast::testing::utc;
using namespace std::chrono_literals;
using repository::FakeHttpClient;
using repository::HttpResponse;

namespace {

StrategyPolicy periodic_policy(const Clock& clock) {
  auto window = MaintenanceWindow::parse({"Sat-Sun"}, "03:00", 2h, TimeZone::utc());
  REQUIRE(window);
  return StrategyPolicy(std::make_unique<PeriodicGate>(std::move(*window), clock));
}

// A FleetLock server that grants the lock while `granted`.
struct LockServer {
  FakeHttpClient http;
  bool granted = false;
  LockServer() {
    http.on_post = [this](const FakeHttpClient::Post&) -> Result<HttpResponse> {
      if (granted) return HttpResponse{200, "{}"};
      return HttpResponse{423, R"({"kind":"failed_lock","value":"held by node-b"})"};
    };
  }
  StrategyPolicy policy(const Clock& clock) {
    auto c = FleetLockClient::create(http, FleetLockOptions{"http://locks", "node-a", "default"});
    REQUIRE(c);
    return StrategyPolicy(std::make_unique<FleetLockGate>(std::move(*c), clock, Backoff{1s, 1s}));
  }
};

Config config(const std::string& toml) {
  Config c;
  REQUIRE(c.merge_text(toml, "test.toml"));
  return c;
}

}  // namespace

TEST_CASE("immediate: the policy reboots, also on allow_once, and not while held for a download-only update") {
  StrategyPolicy p(std::make_unique<ImmediateGate>());
  CHECK(std::string(p.strategy()) == "immediate");
  CHECK(p.may_reboot_now().value());
  p.allow_once();
  CHECK(p.may_reboot_now().value());
  p.hold();
  CHECK_FALSE(p.may_reboot_now().value());
  CHECK_FALSE(p.next_attempt());
  p.end_of_update();
  CHECK(p.may_reboot_now().value());
}

TEST_CASE("manual: only allow_once reboots, for one reboot; a hold keeps it shut") {
  StrategyPolicy p(std::make_unique<ManualGate>());
  CHECK_FALSE(p.may_reboot_now().value());
  CHECK_FALSE(p.next_attempt());
  p.allow_once();
  CHECK(p.may_reboot_now().value());
  CHECK_FALSE(p.may_reboot_now().value());
  p.hold();
  CHECK_FALSE(p.may_reboot_now().value());
  SECTION("an allowance not used by the end of the update does not carry over to the next one") {
    p.allow_once();
    p.end_of_update();
    CHECK_FALSE(p.may_reboot_now().value());
  }
  SECTION("allow_once after a hold reboots") {
    p.allow_once();
    CHECK(p.may_reboot_now().value());
  }
}

TEST_CASE("periodic: the window opens it and names the next opening; allow_once opens it outside; a hold shuts it") {
  FakeClock clock(utc(2026, 1, 2, 12));  // a Friday
  auto p = periodic_policy(clock);
  CHECK_FALSE(p.may_reboot_now().value());
  CHECK(p.next_attempt() == utc(2026, 1, 3, 3));
  p.allow_once();
  CHECK(p.may_reboot_now().value());
  CHECK_FALSE(p.may_reboot_now().value());
  p.hold();
  clock.set_wall(utc(2026, 1, 3, 3, 30));
  CHECK_FALSE(p.may_reboot_now().value());
  CHECK_FALSE(p.next_attempt());  // only the operator ends a hold
  p.end_of_update();
  CHECK(p.may_reboot_now().value());
}

TEST_CASE("fleet_lock: the lock decides, allow_once still takes the lock, a hold does not even ask") {
  FakeClock clock;
  LockServer server;
  auto p = server.policy(clock);
  CHECK_FALSE(p.may_reboot_now().value());
  CHECK(server.http.posts.size() == 1);
  CHECK(p.next_attempt() == clock.now() + 1s);
  clock.advance(1s);

  p.allow_once();
  CHECK_FALSE(p.may_reboot_now().value());  // the operator cannot skip the cluster's lock
  REQUIRE(server.http.posts.size() == 2);
  CHECK(server.http.posts[1].url == "http://locks/v1/pre-reboot");
  clock.advance(1s);
  server.granted = true;
  CHECK(p.may_reboot_now().value());
  CHECK(server.http.posts.size() == 3);

  p.hold();
  CHECK_FALSE(p.may_reboot_now().value());
  CHECK(server.http.posts.size() == 3);
  CHECK_FALSE(p.next_attempt());
}

TEST_CASE("FleetLock's TLS settings come from the reboot.fleet_lock_* keys, never from the repository's") {
  auto s = fleet_lock_http_settings(config("[repository]\nca_bundle = \"/repo-ca.pem\"\nclient_cert = \"/repo.pem\"\n"
                                           "client_key = \"/repo.key\"\n"));
  CHECK(s.ca_bundle.empty());
  CHECK(s.client_cert.empty());
  CHECK(s.client_key.empty());
  s = fleet_lock_http_settings(config("[reboot]\nfleet_lock_ca_bundle = \"/lock-ca.pem\"\n"
                                      "fleet_lock_client_cert = \"/node.pem\"\nfleet_lock_client_key = \"/node.key\"\n"));
  CHECK(s.ca_bundle == "/lock-ca.pem");
  CHECK(s.client_cert == "/node.pem");
  CHECK(s.client_key == "/node.key");
}

TEST_CASE("make_reboot_policy builds the configured strategy and refuses a bad one") {
  FakeClock clock;
  auto p = make_reboot_policy(config("[reboot]\nstrategy = \"manual\"\n"), clock, "node-7");
  REQUIRE(p);
  CHECK(std::string((*p)->strategy()) == "manual");
  auto bad = make_reboot_policy(config("[reboot]\nstrategy = \"fleet_lock\"\n"), clock, "node-7");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().code == "config.bad-value");
}
