#include <catch2/catch.hpp>

#include "agent/kubernetes/contract.hpp"

using namespace ballast;
using namespace ballast::agent;
using namespace ballast::agent::kubernetes;

TEST_CASE("a request names its operation, its operationId and a version where one belongs") {
  auto r = parse_request(R"({"schemaVersion":1,"operationId":"op-1","operation":"stage","version":"2.0"})");
  REQUIRE(r);
  CHECK(r->operation == Operation::stage);
  CHECK(r->operation_id == "op-1");
  CHECK(r->version->str() == "2.0");
  auto rollback = parse_request(R"({"schemaVersion":1,"operationId":"op-2","operation":"rollback"})");
  REQUIRE(rollback);
  CHECK(rollback->operation == Operation::rollback);
  CHECK_FALSE(rollback->version);
  CHECK(parse_request(R"({"schemaVersion":1,"operationId":"op-3","operation":"reboot"})"));
}

TEST_CASE("a bad request is refused with kubernetes.bad-request saying which field is wrong") {
  auto why = [](const std::string& text) {
    auto r = parse_request(text);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == "kubernetes.bad-request");
    return r.error().message;
  };
  CHECK_THAT(why("stage please"), Catch::Contains("not a JSON object"));
  CHECK_THAT(why(R"({"schemaVersion":2,"operationId":"a","operation":"stage"})"), Catch::Contains("schemaVersion must be 1"));
  CHECK_THAT(why(R"({"schemaVersion":1,"operation":"stage"})"), Catch::Contains("operationId is missing"));
  CHECK_THAT(why(R"({"schemaVersion":1,"operationId":"a b","operation":"stage"})"), Catch::Contains("printable"));
  CHECK_THAT(why(R"({"schemaVersion":1,"operationId":"a","operation":"upgrade"})"), Catch::Contains("\"upgrade\" is not one of"));
  CHECK_THAT(why(R"({"schemaVersion":1,"operationId":"a","operation":"stage","version":"../x"})"), Catch::Contains("version:"));
  CHECK_THAT(why(R"({"schemaVersion":1,"operationId":"a","operation":"pin"})"), Catch::Contains("pin needs a version"));
  CHECK_THAT(why(R"({"schemaVersion":1,"operationId":"a","operation":"rollback","version":"1.0"})"),
             Catch::Contains("rollback takes no version"));
}

TEST_CASE("flow states map to phases; idle keeps a terminal answer and a held stage is Staged") {
  using F = FlowState;
  CHECK(phase_after(F::checking, Phase::Idle, Operation::stage) == Phase::Checking);
  CHECK(phase_after(F::staging, Phase::Checking, Operation::stage) == Phase::Staging);
  CHECK(phase_after(F::waiting_to_reboot, Phase::Staged, Operation::stage) == Phase::Staged);
  CHECK(phase_after(F::waiting_to_reboot, Phase::Staged, Operation::reboot) == Phase::WaitingToReboot);
  CHECK(phase_after(F::waiting_to_reboot, Phase::Staged, std::nullopt) == Phase::WaitingToReboot);
  CHECK(phase_after(F::rebooting, Phase::Staged, Operation::reboot) == Phase::Rebooting);
  CHECK(phase_after(F::verifying, Phase::Rebooting, Operation::reboot) == Phase::Verifying);
  CHECK(phase_after(F::committed, Phase::Verifying, Operation::reboot) == Phase::Committed);
  CHECK(phase_after(F::idle, Phase::Committed, Operation::reboot) == Phase::Committed);
  CHECK(phase_after(F::idle, Phase::RolledBack, Operation::reboot) == Phase::RolledBack);
  CHECK(phase_after(F::idle, Phase::Failed, Operation::stage) == Phase::Failed);
  CHECK(phase_after(F::idle, Phase::Checking, Operation::stage) == Phase::Idle);
  CHECK(phase_after(F::rolled_back, Phase::Rebooting, std::nullopt) == Phase::RolledBack);
  CHECK(phase_after(F::failed, Phase::Verifying, std::nullopt) == Phase::Failed);
}

TEST_CASE("the last error's stable code is taken from its description") {
  auto e = error_json("verifying: health checks failed: sshd [health.failed] (2.0 is denylisted: not retried automatically)");
  CHECK(e["code"] == "health.failed");
  CHECK(error_json("health checks failed: sshd")["code"] == "flow.failed");
}
