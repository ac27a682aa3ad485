#include <catch2/catch.hpp>

#include "agent/kubernetes/npd.hpp"

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
