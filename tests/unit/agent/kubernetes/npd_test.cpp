#include <catch2/catch.hpp>

#include "agent/kubernetes/npd.hpp"
#include "common/clock.hpp"

using namespace ballast;
using namespace ballast::agent;
using namespace ballast::agent::kubernetes;
using nlohmann::json;

namespace {
HealthReport healthy() { return HealthReport{}; }
HealthReport failing() {
  HealthReport r;
  r.healthy = false;
  HealthCheckResult c;
  c.name = "required/50-web";
  c.required = true;
  c.passed = false;
  r.checks.push_back(c);
  return r;
}
}  // namespace

TEST_CASE("the NPD plugin says OK for a host that never updated or whose last update committed") {
  CHECK(npd_verdict(json::object(), healthy()).exit_code == 0);
  json committed{{"state", "idle"}, {"history", json::array({{{"result", "committed"}, {"target", "2.0"}}})}};
  auto v = npd_verdict(committed, healthy());
  CHECK(v.exit_code == 0);
  CHECK(v.message == "ballast: no update problem");
}

TEST_CASE("the NPD plugin reports a failed update, a rollback and a failing health check as a problem, with one line") {
  json failed{{"state", "idle"}, {"history", json::array({{{"result", "failed"}, {"target", "2.0"}, {"error", "no space\nleft"}}})}};
  auto f = npd_verdict(failed, healthy());
  CHECK(f.exit_code == 1);
  CHECK(f.message == "BallastUpdateFailed: 2.0: no space left");
  json rolled{{"state", "idle"},
              {"history", json::array({{{"result", "rolled-back"}, {"target", "2.0"}, {"from", "1.0"}, {"error", "health"}}})}};
  auto r = npd_verdict(rolled, healthy());
  CHECK(r.exit_code == 1);
  CHECK(r.message == "BallastRolledBack: 2.0 was rolled back to 1.0: health");
  auto h = npd_verdict(json::object(), failing());
  CHECK(h.exit_code == 1);
  CHECK_THAT(h.message, Catch::StartsWith("BallastHealthCheckFailing: required/50-web"));
}

TEST_CASE("the NPD plugin answers unknown when the state or the checks cannot be read") {
  CHECK(npd_verdict(std::nullopt, healthy()).exit_code == 2);
  CHECK(npd_verdict(json::object(), std::nullopt).exit_code == 2);
}

TEST_CASE("the NPD plugin reports a repository unreachable for longer than the threshold, with since when and the error code") {
  using namespace std::chrono_literals;
  FakeClock clock;
  RepositoryContact failing;
  failing.failing_since = clock.now();
  failing.last_error = "http.transfer";
  auto under = npd_verdict(json::object(), healthy(), {failing, clock.now() + 59min, 1h});
  CHECK(under.exit_code == 0);
  auto over = npd_verdict(json::object(), healthy(), {failing, clock.now() + 90min, 1h});
  CHECK(over.exit_code == 1);
  CHECK(over.message == "BallastRepositoryUnreachable: repository unreachable since 2026-01-01T00:00:00Z (90 min): http.transfer");
  auto reached = npd_verdict(json::object(), healthy(), {next_contact(failing, std::nullopt, clock.now() + 80min), clock.now() + 90min, 1h});
  CHECK(reached.exit_code == 0);
  CHECK(npd_verdict(json::object(), healthy(), {std::nullopt, clock.now(), 1h}).exit_code == 2);
}

TEST_CASE("the NPD plugin does not count a check that failed before choosing a target as a failed update") {
  json check_failed{{"state", "idle"},
                    {"history", json::array({{{"result", "rolled-back"}, {"target", "2.0"}, {"from", "1.0"}, {"error", "health"}},
                                             {{"result", "failed"}, {"target", ""}, {"error", "refresh failed [http.transfer]"}}})}};
  CHECK_THAT(npd_verdict(check_failed, healthy()).message, Catch::StartsWith("BallastRolledBack: 2.0"));
  json only_checks{{"state", "idle"}, {"history", json::array({{{"result", "failed"}, {"target", ""}, {"error", "refused"}}})}};
  CHECK(npd_verdict(only_checks, healthy()).exit_code == 0);
}

TEST_CASE("a flow record whose members have other types than the agent writes gives a verdict, never an exception") {
  const json odd = json::parse(R"({"state":5,"lastError":7,"history":[5,{"target":3,"result":"failed"},{"result":["x"]}]})");
  NpdVerdict v{};
  REQUIRE_NOTHROW(v = npd_verdict(odd, healthy()));
  CHECK(v.exit_code == 0);  // no failed state, and no history line names a target
  const json failed = json::parse(R"({"state":"failed","lastError":7})");
  REQUIRE_NOTHROW(v = npd_verdict(failed, healthy()));
  CHECK(v.exit_code == 1);
  CHECK(v.message == "BallastUpdateFailed: the update failed");
}
