#include "agent/reboot/gate.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tests/unit/agent/reboot/time_support.hpp"

using namespace ballast;
using namespace ballast::agent::reboot;
using ballast::testing::utc;
using namespace std::chrono_literals;
using repository::FakeHttpClient;
using repository::HttpResponse;

namespace {

Config config(const std::string& toml) {
  Config c;
  auto st = c.merge_text(toml, "test.toml");
  INFO((st ? std::string() : st.error().describe()));
  REQUIRE(st);
  return c;
}

FleetLockClient lock_client(FakeHttpClient& http, std::string base = "http://locks.example:8080/") {
  auto c = FleetLockClient::create(http, FleetLockOptions{std::move(base), "node-a", "workers"});
  REQUIRE(c);
  return std::move(*c);
}

bool has_header(const FakeHttpClient::Post& p, const std::string& h) {
  return std::find(p.headers.begin(), p.headers.end(), h) != p.headers.end();
}

}  // namespace

TEST_CASE("the immediate strategy always allows the reboot") {
  ImmediateGate g;
  CHECK(g.may_reboot_now().value());
  CHECK(g.may_reboot_now().value());
  CHECK_FALSE(g.next_attempt());
  CHECK(g.steady_state());
}

TEST_CASE("the manual strategy never allows the reboot by itself") {
  ManualGate g;
  CHECK_FALSE(g.may_reboot_now().value());
  CHECK_FALSE(g.may_reboot_now().value());
  CHECK_FALSE(g.next_attempt());
  CHECK_FALSE(g.takes_lock());
}

TEST_CASE("the periodic strategy opens within the window and names the next opening for the daemon's timer") {
  auto window = MaintenanceWindow::parse({"Sat-Sun"}, "03:00", 2h, TimeZone::utc());
  REQUIRE(window);
  FakeClock clock(utc(2026, 1, 2, 12));  // a Friday
  PeriodicGate g(std::move(*window), clock);
  CHECK_FALSE(g.may_reboot_now().value());
  REQUIRE(g.next_attempt());
  CHECK(*g.next_attempt() == utc(2026, 1, 3, 3));
  clock.set_wall(*g.next_attempt());
  CHECK(g.may_reboot_now().value());
  clock.set_wall(utc(2026, 1, 3, 5));
  CHECK_FALSE(g.may_reboot_now().value());
  CHECK(*g.next_attempt() == utc(2026, 1, 4, 3));
}

TEST_CASE("FleetLock pre-reboot posts the protocol's header and body to {base}/v1/pre-reboot and 200 allows the reboot") {
  FakeHttpClient http;
  http.on_post = [](const FakeHttpClient::Post&) -> Result<HttpResponse> { return HttpResponse{200, "{}"}; };
  FakeClock clock;
  FleetLockGate g(lock_client(http), clock);
  CHECK(g.may_reboot_now().value());
  REQUIRE(http.posts.size() == 1);
  CHECK(http.posts[0].url == "http://locks.example:8080/v1/pre-reboot");
  CHECK(has_header(http.posts[0], "fleet-lock-protocol: true"));
  auto body = nlohmann::json::parse(http.posts[0].body);
  CHECK(body == nlohmann::json{{"client_params", {{"id", "node-a"}, {"group", "workers"}}}});
  CHECK(g.steady_state());
  REQUIRE(http.posts.size() == 2);
  CHECK(http.posts[1].url == "http://locks.example:8080/v1/steady-state");
  CHECK(has_header(http.posts[1], "fleet-lock-protocol: true"));
  CHECK(nlohmann::json::parse(http.posts[1].body) == body);
}

TEST_CASE("FleetLock refusals and transport failures mean not now, retried after a doubling backoff") {
  FakeHttpClient http;
  long status = 423;
  bool transport_down = false;
  http.on_post = [&](const FakeHttpClient::Post&) -> Result<HttpResponse> {
    if (transport_down) return fail("http.transfer", "connection refused");
    return HttpResponse{status, R"({"kind":"failed_lock","value":"semaphore full"})"};
  };
  FakeClock clock;
  FleetLockGate g(lock_client(http), clock, Backoff{10s, 40s});
  CHECK_FALSE(g.may_reboot_now().value());
  CHECK(g.last_refusal().find("423") != std::string::npos);
  CHECK(g.last_refusal().find("semaphore full") != std::string::npos);
  REQUIRE(g.next_attempt());
  CHECK(*g.next_attempt() == clock.now() + 10s);
  // During the backoff the server is not asked.
  CHECK_FALSE(g.may_reboot_now().value());
  CHECK(http.posts.size() == 1);
  clock.advance(10s);
  status = 503;
  CHECK_FALSE(g.may_reboot_now().value());
  CHECK(http.posts.size() == 2);
  CHECK(*g.next_attempt() == clock.now() + 20s);
  clock.advance(20s);
  transport_down = true;
  CHECK_FALSE(g.may_reboot_now().value());
  CHECK(g.last_refusal().find("http.transfer") != std::string::npos);
  CHECK(*g.next_attempt() == clock.now() + 40s);
  clock.advance(40s);
  CHECK_FALSE(g.may_reboot_now().value());
  CHECK(*g.next_attempt() == clock.now() + 40s);  // capped
  clock.advance(40s);
  transport_down = false;
  status = 200;
  CHECK(g.may_reboot_now().value());
  CHECK_FALSE(g.next_attempt());
  CHECK(g.last_refusal().empty());
}

TEST_CASE("FleetLock steady-state at start-up is retried until it succeeds") {
  FakeHttpClient http;
  int answers = 0;
  http.on_post = [&](const FakeHttpClient::Post&) -> Result<HttpResponse> {
    return HttpResponse{++answers < 3 ? 500L : 200L, ""};
  };
  FakeClock clock;
  FleetLockGate g(lock_client(http), clock, Backoff{5s, 60s});
  auto again = retry_steady_state(g, clock);
  REQUIRE(again);
  CHECK(*again == clock.now() + 5s);
  clock.set_wall(*again);
  again = retry_steady_state(g, clock);
  REQUIRE(again);
  CHECK(*again == clock.now() + 10s);
  clock.set_wall(*again);
  CHECK_FALSE(retry_steady_state(g, clock));
  CHECK(http.posts.size() == 3);
  for (const auto& p : http.posts) CHECK(p.url == "http://locks.example:8080/v1/steady-state");
  SECTION("the other strategies have nothing to send") {
    ManualGate m;
    CHECK_FALSE(retry_steady_state(m, clock));
  }
}

TEST_CASE("FleetLock options are checked: URL scheme, node id and group syntax") {
  FakeHttpClient http;
  CHECK_FALSE(FleetLockClient::create(http, {"ftp://locks", "a", "g"}));
  CHECK_FALSE(FleetLockClient::create(http, {"", "a", "g"}));
  CHECK_FALSE(FleetLockClient::create(http, {"http://locks", "", "g"}));
  CHECK_FALSE(FleetLockClient::create(http, {"http://locks", "a", "bad group"}));
  CHECK_FALSE(FleetLockClient::create(http, {"http://locks", "a", "under_score"}));
  CHECK_FALSE(FleetLockClient::create(http, {"http://locks", "a", ""}));
  auto c = FleetLockClient::create(http, {"https://locks/prefix//", "a", "g-1.x"});
  REQUIRE(c);
  CHECK(c->options().base_url == "https://locks/prefix");
}

TEST_CASE("make_reboot_gate builds the configured strategy") {
  FakeHttpClient http;
  FakeClock clock;
  auto make = [&](const std::string& toml) { return make_reboot_gate(config(toml), http, clock, "node-7"); };

  auto dflt = make("");
  REQUIRE(dflt);
  CHECK(std::string((*dflt)->strategy()) == "immediate");

  auto manual = make("[reboot]\nstrategy = \"manual\"\n");
  REQUIRE(manual);
  CHECK(std::string((*manual)->strategy()) == "manual");
  CHECK_FALSE((*manual)->may_reboot_now().value());

  auto periodic = make("[reboot]\nstrategy = \"periodic\"\nwindow_days = [\"Sun\"]\nwindow_start = \"04:15\"\n"
                       "window_length = \"30m\"\ntime_zone = \"America/New_York\"\n");
  REQUIRE(periodic);
  CHECK(std::string((*periodic)->strategy()) == "periodic");
  // 2026-01-04 is a Sunday; 04:15 EST is 09:15 UTC.
  CHECK((*periodic)->next_attempt() == utc(2026, 1, 4, 9, 15));

  auto locks = make("[reboot]\nstrategy = \"fleet_lock\"\nfleet_lock_url = \"http://locks:9000\"\nfleet_lock_group = \"db\"\n");
  REQUIRE(locks);
  CHECK(std::string((*locks)->strategy()) == "fleet_lock");
  http.on_post = [](const FakeHttpClient::Post&) -> Result<HttpResponse> { return HttpResponse{200, ""}; };
  CHECK((*locks)->may_reboot_now().value());
  REQUIRE(http.posts.size() == 1);
  CHECK(http.posts[0].url == "http://locks:9000/v1/pre-reboot");
  CHECK(nlohmann::json::parse(http.posts[0].body)["client_params"] == nlohmann::json{{"id", "node-7"}, {"group", "db"}});
}

TEST_CASE("make_reboot_gate refuses incomplete or wrong strategy settings with a clear error") {
  FakeHttpClient http;
  FakeClock clock;
  auto err = [&](const std::string& toml, const std::string& code, const std::string& mention) {
    auto g = make_reboot_gate(config(toml), http, clock, "node-7");
    REQUIRE_FALSE(g);
    CHECK(g.error().code == code);
    CHECK(g.error().describe().find(mention) != std::string::npos);
  };
  err("[reboot]\nstrategy = \"fleet_lock\"\n", "config.bad-value", "fleet_lock_url");
  err("[reboot]\nstrategy = \"fleet_lock\"\nfleet_lock_url = \"locks:9000\"\n", "config.bad-value", "fleet_lock_url");
  err("[reboot]\nstrategy = \"periodic\"\ntime_zone = \"Mars/Olympus_Mons\"\n", "reboot.bad-time-zone", "Mars/Olympus_Mons");
  err("[reboot]\nstrategy = \"periodic\"\nwindow_start = \"noon\"\n", "reboot.bad-window", "window_start");
  err("[reboot]\nstrategy = \"periodic\"\nwindow_days = [\"Someday\"]\n", "reboot.bad-window", "window_days");
  auto no_id = make_reboot_gate(config("[reboot]\nstrategy = \"fleet_lock\"\nfleet_lock_url = \"http://l\"\n"), http, clock, "");
  REQUIRE_FALSE(no_id);
  CHECK(no_id.error().message.find("node id") != std::string::npos);
}
