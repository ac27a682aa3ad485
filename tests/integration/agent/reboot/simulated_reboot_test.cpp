// `ballast daemon --simulate-reboot` as a process on a sandbox host: real Btrfs, a file://
// repository made by `ballast repo`, the systemd-boot backend on a directory ESP. Each simulated
// reboot must end the daemon by itself, and the next start must see what the simulator booted.
#include <catch2/catch.hpp>

#include "common/file.hpp"
#include "common/process.hpp"
#include "tests/integration/agent/reboot/simulated_host.hpp"
#include "tests/version_literal.hpp"

using namespace ballast;
using namespace ballast::version_literals;
using ballast::testing::kBallast;
using ballast::testing::SimulatedHost;

TEST_CASE("`ballast daemon --simulate-reboot` reboots a sandbox host into the update and exits; the next start blesses it") {
  SimulatedHost s;
  s.update_to_2();
  auto argv = s.host_args();
  for (auto a : {"--json", "daemon", "--once", "--simulate-reboot", "--no-dbus", "--run-dir"}) argv.push_back(a);
  argv.push_back(s.run);
  auto r = run_process(argv);
  REQUIRE(r);
  INFO(r->err);
  REQUIRE(r->exit_code == 0);
  CHECK(nlohmann::json::parse(r->out)["state"] == "idle");
  CHECK(s.booted() == "2.0");
  CHECK(s.entry("2.0").state == boot::EntryState::good);
  CHECK(s.flow()["history"].back()["result"] == "committed");
}

TEST_CASE("under --sysroot the daemon runs the booted deployment's health checks: a failing one falls back and is rolled back") {
  SimulatedHost s;
  s.update_to_2();
  // A required check that fails, in 2.0's own writable /etc: only 2.0 booted runs it.
  std::string check = s.h.layout().deployment("2.0"_v) + "/etc/ballast/health.d/required/50-local";
  REQUIRE(make_dirs(s.h.layout().deployment("2.0"_v) + "/etc/ballast/health.d/required"));
  REQUIRE(write_file_atomic(check, "#!/bin/sh\necho broken >&2\nexit 1\n", 0755));

  auto r = s.daemon();  // resumes at verifying: unhealthy, marked bad, rebooted
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(s.booted() == "1.0");
  CHECK(s.entry("2.0").state == boot::EntryState::bad);
  CHECK_THAT(r.err, Catch::Contains("simulated reboot: booted 1.0"));

  auto argv = s.host_args();
  for (auto a : {"--json", "daemon", "--once", "--simulate-reboot", "--no-dbus", "--run-dir"}) argv.push_back(a);
  argv.push_back(s.run);
  auto after = run_process(argv);
  REQUIRE(after);
  INFO(after->err);
  REQUIRE(after->exit_code == 0);
  auto flow = s.flow();
  CHECK(flow["denylist"] == nlohmann::json{"2.0"});
  CHECK(flow["history"].back()["result"] == "rolled-back");
  CHECK_THAT(flow["history"].back()["error"].get<std::string>(), Catch::Contains("required/50-local"));
  CHECK(s.booted() == "1.0");
}

TEST_CASE("`ballast daemon --simulate-reboot` is refused on the machine's own boot paths and changes nothing") {
  SimulatedHost s;
  auto r = run_process({kBallast, "--sysroot", s.h.top(), "--state-dir", s.h.state, "--config-dir", s.config, "daemon",
                        "--simulate-reboot", "--no-dbus", "--run-dir", s.run});
  REQUIRE(r);
  CHECK(r->exit_code == 2);
  CHECK_THAT(r->err, Catch::Contains("--simulate-reboot is for sandbox hosts"));
  CHECK_FALSE(path_exists(s.h.state + "/flow.json"));
  CHECK(s.booted() == "1.0");
}
