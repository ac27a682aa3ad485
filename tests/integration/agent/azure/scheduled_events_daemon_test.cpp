// reboot.azure_scheduled_events through the real daemon on a sandbox host (`ballast daemon
// --simulate-reboot` on a private bus) against imds_server.py on 127.0.0.1 (never the link-local
// address): one test per rule of the issue, and the instance identity in heartbeats.
#include <future>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "agent/dbus/names.hpp"
#include "boot/boot_simulator.hpp"
#include "common/file.hpp"
#include "common/process.hpp"
#include "tests/integration/agent/azure/imds_server.hpp"
#include "tests/integration/agent/dbus/bus_fixture.hpp"
#include "tests/integration/agent/reboot/fleet_lock_server.hpp"
#include "tests/integration/agent/reboot/simulated_host.hpp"

using namespace ballast;
using namespace std::chrono_literals;
using ballast::testing::ChildProcess;
using ballast::testing::FleetLockServer;
using ballast::testing::ImdsServer;
using ballast::testing::SimulatedHost;
using ballast::testing::require_ended_cleanly;

namespace {

// The sandbox host with Scheduled Events on, IMDS at `imds_url`, its CloudEvents posted to the
// IMDS test server's /events; the first check stages 2.0 (10-test.toml).
struct AzureHost {
  // Lines added to the drop-in's tables.
  struct Options {
    std::string reboot, azure, report, rest;
    std::string imds_url;  // empty: the test server
  };
  SimulatedHost s;
  ImdsServer imds;
  std::unique_ptr<test::PrivateBus> bus = test::PrivateBus::start();

  AzureHost() : AzureHost(Options{}) {}
  explicit AzureHost(const Options& o) {
    s.drop_in("[reboot]\nazure_scheduled_events = true\nazure_recheck_interval = \"1s\"\n" + o.reboot +
              "[azure]\nimds_endpoint = \"" + (o.imds_url.empty() ? imds.url() : o.imds_url) + "\"\n" + o.azure +
              "[report]\nendpoint = \"" + imds.url() + "/events\"\n" +
              // No heartbeat comes during a test: a decision's CloudEvent is sent when it is made.
              (o.report.empty() ? "heartbeat_interval = \"1h\"\n" : o.report) + o.rest);
  }
  std::vector<std::string> ballast(std::vector<std::string> args) const {
    auto argv = s.host_args();
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }
  std::vector<std::string> daemon_argv() const {
    return ballast({"daemon", "--simulate-reboot", "--run-dir", s.run, "--bus-address", bus->address()});
  }
  nlohmann::json status() {
    auto r = run_process(ballast({"--json", "status", "--bus-address", bus->address()}));
    REQUIRE(r);
    INFO(r->out << r->err);
    REQUIRE(r->exit_code == 0);
    return nlohmann::json::parse(r->out);
  }
  // The daemon until it ends by itself (a simulated reboot); the timeout only guards a hang.
  std::future<Result<ProcessResult>> start_daemon() {
    auto argv = daemon_argv();
    return std::async(std::launch::async, [argv] {
      SpawnOptions o;
      o.timeout = std::chrono::minutes(2);
      return run_process(argv, o);
    });
  }
  // Waits (bounded, not timed) until the flow record rests in `state`.
  void wait_for_state(const std::string& state) {
    for (int i = 0; i < 3000; ++i) {
      if (path_exists(s.h.state + "/flow.json") && s.flow().value("state", "") == state) return;
      std::this_thread::sleep_for(20ms);
    }
    FAIL("the daemon never reached " << state);
  }
  // Waits (bounded) for the first dev.ballast.scheduled-events CloudEvent with `decision`.
  bool reported(const std::string& decision) {
    for (int i = 0; i < 1500; ++i) {
      for (const auto& e : imds.cloud_events("scheduled-events"))
        if (e["data"]["decision"] == decision) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }
};

// Instance identity on, a heartbeat every second, no update (the daemon stays up).
AzureHost::Options identity_options(const std::string& imds_url) {
  AzureHost::Options o;
  o.azure = "instance_metadata = true\n";
  o.report = "heartbeat_interval = \"1s\"\n";
  o.rest = "[update]\nauto_apply = false\n";
  o.imds_url = imds_url;
  return o;
}

}  // namespace

TEST_CASE("a Freeze of this VM holds the reboot into a staged update, which goes once the event is over") {
  AzureHost a;
  a.imds.set_events({ImdsServer::event("F1", "Freeze")});
  auto daemon = a.start_daemon();
  a.wait_for_state("waiting-to-reboot");
  CHECK(a.reported("waiting"));  // at once: the heartbeat is an hour away
  CHECK(daemon.wait_for(0s) == std::future_status::timeout);
  // Why the reboot waits, on D-Bus as in the status.
  auto hold = run_process({"busctl", "--address=" + a.bus->address(), "get-property", agent::dbus::kBusName,
                           agent::dbus::kObjectPath, agent::dbus::kInterface, "RebootHold"});
  REQUIRE(hold);
  CHECK_THAT(hold->out, Catch::StartsWith("s \"") && Catch::Contains("Freeze event F1"));
  CHECK_THAT(a.status().value("rebootHold", ""), Catch::Contains("Freeze event F1"));
  CHECK(a.s.booted() == "1.0");
  CHECK(a.imds.approvals().empty());
  // Every IMDS request carried the header IMDS demands.
  for (const auto& r : a.imds.log())
    if (r["path"] != "/events") CHECK(r["metadata"] == "true");

  a.imds.set_events({});  // the freeze is over
  require_ended_cleanly(daemon);
  CHECK(a.s.booted() == "2.0");
  auto reported = a.imds.cloud_events("scheduled-events");
  REQUIRE_FALSE(reported.empty());
  CHECK(reported[0]["data"]["decision"] == "waiting");
  CHECK(reported[0]["data"]["eventIds"] == nlohmann::json{"F1"});
}

TEST_CASE("a platform Reboot scheduled while an update is staged is approved, and the update is verified after the platform's reboot") {
  AzureHost a;
  a.imds.set_events({ImdsServer::event("R1", "Reboot")});
  auto daemon = ChildProcess::spawn(a.daemon_argv());
  REQUIRE(daemon);
  for (int i = 0; i < 3000 && a.imds.approvals().empty(); ++i) std::this_thread::sleep_for(20ms);
  auto approvals = a.imds.approvals();
  REQUIRE(approvals.size() == 1);
  CHECK(nlohmann::json::parse(approvals[0]["body"].get<std::string>()) ==
        nlohmann::json::parse(R"({"StartRequests":[{"EventId":"R1"}]})"));
  CHECK(approvals[0]["status"] == 200);
  a.wait_for_state("waiting-to-reboot");  // the platform reboots, not the agent
  CHECK(a.s.booted() == "1.0");
  CHECK(a.s.flow()["target"] == "2.0");
  CHECK(a.reported("approved"));  // the update rides the platform's reboot
  // The started event now holds any reboot of our own until the platform's happens.
  CHECK(a.reported("waiting"));

  // The platform's reboot: the agent goes down with the VM, the firmware boots the staged entry.
  daemon->stop();
  auto booted = boot::BootSimulator(a.s.h.paths).reboot();
  REQUIRE(booted);
  CHECK(booted->version.str() == "2.0");
  a.imds.set_events({});
  auto once = run_process(a.ballast({"daemon", "--once", "--simulate-reboot", "--no-dbus", "--run-dir", a.s.run}));
  REQUIRE(once);
  INFO(once->err);
  REQUIRE(once->exit_code == 0);
  CHECK(a.s.entry("2.0").state == boot::EntryState::good);
  CHECK(a.s.booted() == "2.0");
}

TEST_CASE("with IMDS unreachable the reboot strategy decides alone and the agent reports that IMDS was not reached") {
  AzureHost::Options o;
  o.imds_url = "http://127.0.0.1:9";  // nothing listens on the discard port
  AzureHost a(o);
  auto daemon = a.start_daemon();
  auto ended = require_ended_cleanly(daemon);  // the immediate strategy rebooted into 2.0
  INFO("the daemon's log:\n" << ended.err);
  CHECK(a.s.booted() == "2.0");
  auto reported = a.imds.cloud_events("scheduled-events");
  INFO("what the IMDS test server answered: " << nlohmann::json(a.imds.log()).dump());
  REQUIRE(reported.size() == 1);
  CHECK(reported[0]["data"]["decision"] == "imds-unreachable");
  CHECK_THAT(reported[0]["data"]["reason"].get<std::string>(), Catch::Contains("IMDS not reached"));
}

TEST_CASE("under fleet_lock a platform reboot is approved only once this node holds the lock") {
  FleetLockServer locks(1);
  AzureHost::Options o;
  o.reboot = "strategy = \"fleet_lock\"\nfleet_lock_url = \"" + locks.url() + "\"\n";
  o.rest = "[node]\nid = \"node-a\"\n";
  AzureHost a(o);
  REQUIRE(locks.post("pre-reboot", "node-b") == 200);
  a.imds.set_events({ImdsServer::event("R1", "Reboot")});
  auto daemon = ChildProcess::spawn(a.daemon_argv());
  REQUIRE(daemon);
  a.wait_for_state("waiting-to-reboot");
  CHECK(a.reported("waiting"));
  CHECK(a.imds.approvals().empty());  // node-b holds the lock: no ride

  REQUIRE(locks.post("steady-state", "node-b") == 200);
  for (int i = 0; i < 3000 && a.imds.approvals().empty(); ++i) std::this_thread::sleep_for(20ms);
  CHECK(a.imds.approvals().size() == 1);
  CHECK(locks.post("pre-reboot", "node-c") == 423);  // node-a took the lock before approving
}

TEST_CASE("on Azure the node id is the VM's vmId and heartbeats carry the instance's identity") {
  AzureHost a(identity_options(""));
  auto daemon = ChildProcess::spawn(a.daemon_argv());
  REQUIRE(daemon);
  std::vector<nlohmann::json> beats;
  for (int i = 0; i < 3000 && (beats = a.imds.cloud_events("heartbeat")).empty(); ++i) std::this_thread::sleep_for(20ms);
  REQUIRE_FALSE(beats.empty());
  CHECK(beats[0]["source"] == "ballast://02aab8a4-74ef-476e-8182-f6d2ba4166a6");
  const auto& az = beats[0]["data"]["azure"];
  CHECK(az["vmId"] == "02aab8a4-74ef-476e-8182-f6d2ba4166a6");
  CHECK_THAT(az["resourceId"].get<std::string>(), Catch::EndsWith("/virtualMachines/vm-a"));
  CHECK(az["location"] == "westeurope");
  CHECK(az["zone"] == "2");
  CHECK(az["vmSize"] == "Standard_D2s_v5");
  CHECK(az["securityProfile"]["secureBootEnabled"] == true);
  CHECK(az["securityProfile"]["virtualTpmEnabled"] == true);
  // Cached: the instance document was asked for once in this run.
  int asked = 0;
  for (const auto& r : a.imds.log()) asked += r["path"].get<std::string>().rfind("/metadata/instance", 0) == 0;
  CHECK(asked == 1);
}

TEST_CASE("off Azure (IMDS unreachable) the node id stays the machine id and heartbeats carry no instance") {
  AzureHost a(identity_options("http://127.0.0.1:9"));
  auto machine_id = read_file("/etc/machine-id").value();
  machine_id.erase(machine_id.find_last_not_of(" \n") + 1);
  auto daemon = ChildProcess::spawn(a.daemon_argv());
  REQUIRE(daemon);
  std::vector<nlohmann::json> beats;
  for (int i = 0; i < 3000 && (beats = a.imds.cloud_events("heartbeat")).empty(); ++i) std::this_thread::sleep_for(20ms);
  REQUIRE_FALSE(beats.empty());
  CHECK(beats[0]["source"] == "ballast://" + machine_id);
  CHECK_FALSE(beats[0]["data"].contains("azure"));
}
