// The operator's reboots under reboot.strategy = "fleet_lock", through the real daemon on a
// sandbox host (`ballast daemon --simulate-reboot` on a private bus), the real verbs and
// fleetlock-server.mjs: `update --apply` and `rollback --reboot` still take the cluster's lock.
#include <future>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "common/file.hpp"
#include "common/process.hpp"
#include "tests/integration/agent/dbus/bus_fixture.hpp"
#include "tests/integration/agent/reboot/fleet_lock_server.hpp"
#include "tests/integration/agent/reboot/simulated_host.hpp"

using namespace ballast;
using namespace std::chrono_literals;
using ballast::testing::FleetLockServer;
using ballast::testing::SimulatedHost;
using ballast::testing::require_ended_cleanly;

namespace {

// The sandbox host as node-a of the FleetLock server's default group; no check by the timer
// during a test (the operator's verbs start the updates).
struct LockedHost {
  SimulatedHost s;
  FleetLockServer server{1};
  std::unique_ptr<test::PrivateBus> bus = test::PrivateBus::start();

  LockedHost() {
    s.drop_in("[update]\ncheck_interval = \"1h\"\n[reboot]\nstrategy = \"fleet_lock\"\nfleet_lock_url = \"" + server.url() +
              "\"\n[node]\nid = \"node-a\"\n");
  }
  std::vector<std::string> ballast(std::vector<std::string> args) const {
    auto argv = s.host_args();
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }
  // The daemon on the bus until it ends by itself (a simulated reboot); the timeout only guards a hang.
  std::future<Result<ProcessResult>> start_daemon() {
    auto argv = ballast({"daemon", "--simulate-reboot", "--run-dir", s.run, "--bus-address", bus->address()});
    auto running = std::async(std::launch::async, [argv] {
      SpawnOptions o;
      o.timeout = std::chrono::minutes(2);
      return run_process(argv, o);
    });
    // Ready once it answers on the bus.
    for (int i = 0; i < 500; ++i) {
      auto r = run_process(ballast({"--json", "status", "--bus-address", bus->address()}));
      if (r && r->exit_code == 0 && nlohmann::json::parse(r->out)["daemon"] == true) break;
      REQUIRE(running.wait_for(0s) == std::future_status::timeout);
      std::this_thread::sleep_for(20ms);
    }
    return running;
  }
  ProcessResult verb(std::vector<std::string> args) {
    args.push_back("--bus-address=" + bus->address());
    auto r = run_process(ballast(std::move(args)));
    REQUIRE(r);
    INFO(r->err);
    return *r;
  }
};

}  // namespace

TEST_CASE("update --apply under fleet_lock waits while another node holds the lock, and reboots once it is granted") {
  LockedHost l;
  REQUIRE(l.server.post("pre-reboot", "node-b") == 200);
  auto daemon = l.start_daemon();

  auto apply = l.verb({"update", "--apply"});
  REQUIRE(apply.exit_code == 0);
  CHECK_THAT(apply.out, Catch::Contains("staged 2.0; state waiting-to-reboot"));
  // Refused: staged, announced, and the daemon still runs the old boot.
  CHECK(daemon.wait_for(0s) == std::future_status::timeout);
  CHECK(l.s.flow()["state"] == "waiting-to-reboot");
  CHECK(l.s.booted() == "1.0");
  CHECK(path_exists(l.s.run + "/reboot-required"));

  // node-b is done: the daemon's timer asks again at the end of its backoff, without an operator.
  REQUIRE(l.server.post("steady-state", "node-b") == 200);
  require_ended_cleanly(daemon);
  CHECK(l.s.booted() == "2.0");
  CHECK(l.s.flow()["state"] == "verifying");
  CHECK(l.server.post("pre-reboot", "node-c") == 423);  // node-a holds the slot across its reboot
}

TEST_CASE("rollback --reboot under fleet_lock takes the lock before rebooting") {
  LockedHost l;
  // 2.0 is installed and committed (the lock free): the update, then the boot that blesses it.
  auto first = l.start_daemon();
  REQUIRE(l.verb({"update", "--apply"}).exit_code == 0);
  require_ended_cleanly(first);
  REQUIRE(l.s.booted() == "2.0");
  REQUIRE(run_process(l.ballast({"daemon", "--once", "--simulate-reboot", "--no-dbus", "--run-dir", l.s.run}))->exit_code == 0);
  REQUIRE(l.s.entry("2.0").state == boot::EntryState::good);
  REQUIRE(l.server.post("pre-reboot", "node-b") == 200);  // steady-state gave node-a's slot back

  auto daemon = l.start_daemon();
  auto rollback = l.verb({"rollback", "--reboot"});
  REQUIRE(rollback.exit_code == 0);
  // 1.0 boots next, but not before the lock is ours.
  CHECK(daemon.wait_for(0s) == std::future_status::timeout);
  CHECK(l.s.booted() == "2.0");
  CHECK(l.s.flow()["denylist"] == nlohmann::json{"2.0"});

  REQUIRE(l.server.post("steady-state", "node-b") == 200);
  require_ended_cleanly(daemon);
  CHECK(l.s.booted() == "1.0");
  CHECK(l.server.post("pre-reboot", "node-c") == 423);
}
