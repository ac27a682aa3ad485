// The verbs that talk to the daemon, run as child processes against the real Server in front of a
// fake AgentApi on a private bus, and without a daemon.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "agent/dbus/names.hpp"
#include "common/file.hpp"
#include "common/process.hpp"
#include "tests/integration/agent/dbus/bus_fixture.hpp"

using namespace ballast;

namespace {

const std::string kBallast = BALLAST_BUILD_ROOT "/agent/ballast";

struct Served {
  std::unique_ptr<test::PrivateBus> bus = test::PrivateBus::start();
  test::FakeAgent agent;
  std::unique_ptr<test::ServerThread> server;
  Served() {
    agent::dbus::ServerOptions o;
    o.bus_address = bus->address();
    server = test::ServerThread::start(agent, o);
    agent.observer = &server->server();
  }
  ~Served() { server.reset(); }
  std::vector<std::string> ballast(std::vector<std::string> args) const {
    std::vector<std::string> argv{kBallast};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back("--bus-address=" + bus->address());
    return argv;
  }
};

ProcessResult run(const std::vector<std::string>& argv, std::vector<std::string> env = {}) {
  SpawnOptions o;
  o.extra_env = std::move(env);
  auto r = run_process(argv, o);
  REQUIRE(r);
  return *r;
}

}  // namespace

TEST_CASE("ballast status --json shows the running agent's state", "[dbus][verbs]") {
  Served s;
  auto r = run(s.ballast({"--json", "status"}));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["daemon"] == true);
  CHECK(j["state"] == "idle");
  CHECK(j["booted"] == "1.0");
  CHECK(j["lastCheck"] == 1700000000);

  auto text = run(s.ballast({"status"}));
  REQUIRE(text.exit_code == 0);
  CHECK(text.out.find("state:   idle") != std::string::npos);
  CHECK(text.out.find("booted:  1.0") != std::string::npos);
}

TEST_CASE("the bus address also comes from BALLAST_BUS_ADDRESS", "[dbus][verbs]") {
  Served s;
  auto r = run({kBallast, "--json", "status"}, {"BALLAST_BUS_ADDRESS=" + s.bus->address()});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(nlohmann::json::parse(r.out)["daemon"] == true);
}

TEST_CASE("ballast update --check prints what the agent found", "[dbus][verbs]") {
  Served s;
  auto r = run(s.ballast({"update", "--check"}));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out == "update available: 2.0\n");
  auto j = run(s.ballast({"--json", "update", "--check"}));
  REQUIRE(j.exit_code == 0);
  CHECK(nlohmann::json::parse(j.out)["available"] == "2.0");
  CHECK(s.agent.calls() == std::vector<std::string>{"check", "check"});
}

TEST_CASE("ballast update --download-only follows the agent with plain progress lines off a terminal", "[dbus][verbs]") {
  Served s;
  auto r = run(s.ballast({"update", "--download-only"}));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(s.agent.calls() == std::vector<std::string>{"update download-only=1 apply=0"});
  CHECK(r.out.find("idle -> checking\n") != std::string::npos);
  CHECK(r.out.find("checking -> staging\n") != std::string::npos);
  CHECK(r.out.find("progress  25% 1.0 MiB of 4.0 MiB at 1.0 MiB/s, ETA 0:03: fetching 2.0\n") != std::string::npos);
  CHECK(r.out.find("progress  75% 3.0 MiB of 4.0 MiB at 1.0 MiB/s, ETA 0:01: fetching 2.0\n") != std::string::npos);
  CHECK(r.out.find("staging -> staged\n") != std::string::npos);
  CHECK(r.out.find("staged 2.0") != std::string::npos);
  CHECK(r.out.find('\r') == std::string::npos);
}

TEST_CASE("ballast update draws a progress bar in place on a terminal", "[dbus][verbs]") {
  Served s;
  // script(1) gives the verb a pseudo-terminal as stdout. Its command goes through a shell, so it
  // holds fixed words only; the bus address travels in the environment.
  auto r = run({"script", "--quiet", "--return", "--command", kBallast + " update --download-only", "/dev/null"},
               {"BALLAST_BUS_ADDRESS=" + s.bus->address()});
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("\r\033[K[#####---------------]  25%  1.0 MiB/4.0 MiB  1.0 MiB/s  ETA 0:03") != std::string::npos);
  CHECK(r.out.find("\r\033[K[###############-----]  75%  3.0 MiB/4.0 MiB  1.0 MiB/s  ETA 0:01") != std::string::npos);
  CHECK(r.out.find("progress  25%") == std::string::npos);
}

TEST_CASE("ballast update --json prints one JSON event per line and the final status", "[dbus][verbs]") {
  Served s;
  auto r = run(s.ballast({"--json", "update", "--apply"}));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(s.agent.calls() == std::vector<std::string>{"update download-only=0 apply=1"});
  std::vector<nlohmann::json> events;
  size_t pos = 0;
  while (pos < r.out.size()) {
    auto nl = r.out.find('\n', pos);
    events.push_back(nlohmann::json::parse(r.out.substr(pos, nl - pos)));
    pos = nl + 1;
  }
  REQUIRE(!events.empty());
  std::vector<std::string> to;
  for (const auto& e : events)
    if (e["event"] == "transition") to.push_back(e["to"]);
  CHECK(to == std::vector<std::string>{"checking", "staging", "staged", "rebooting"});
  CHECK(events.back()["event"] == "done");
  CHECK(events.back()["status"]["staged"] == "2.0");
}

TEST_CASE("ballast history --json asks the agent, and reads flow.json when it is not running", "[dbus][verbs]") {
  {
    Served s;
    auto r = run(s.ballast({"--json", "history"}));
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    auto j = nlohmann::json::parse(r.out);
    REQUIRE(j.size() == 1);
    CHECK(j[0]["target"] == "1.0");
  }
  auto state = make_temp_dir("ballast-history");
  REQUIRE(state);
  REQUIRE(write_file_atomic(*state + "/flow.json",
                            R"({"state":"idle","history":[{"time":1700000000,"from":"1.0","target":"1.1",)"
                            R"("result":"rolled-back","error":"health: sshd failed"}]})"));
  auto empty_bus = test::PrivateBus::start();
  auto r = run({kBallast, "--state-dir", *state, "--json", "history", "--bus-address=" + empty_bus->address()});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto j = nlohmann::json::parse(r.out);
  REQUIRE(j.size() == 1);
  CHECK(j[0]["result"] == "rolled-back");
  auto text = run({kBallast, "--state-dir", *state, "history", "--bus-address=" + empty_bus->address()});
  CHECK(text.out == "2023-11-14 22:13:20 UTC  1.0 -> 1.1  rolled-back: health: sshd failed\n");
  (void)remove_tree(*state);
}

TEST_CASE("ballast rollback is refused for a non-root user and works for root", "[dbus][verbs]") {
  Served s;
  auto refused = run(test::as_nobody(s.ballast({"rollback"})));
  CHECK(refused.exit_code == 1);
  CHECK(refused.err.find("ballast: only root may call Rollback [agent.access-denied]") != std::string::npos);
  CHECK(s.agent.calls().empty());

  auto r = run(s.ballast({"rollback", "--reboot"}));
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(s.agent.calls() == std::vector<std::string>{"rollback reboot=1"});
}

TEST_CASE("mutating verbs without a running agent fail with a clear error", "[dbus][verbs]") {
  auto bus = test::PrivateBus::start();
  for (auto args : {std::vector<std::string>{"rollback"}, std::vector<std::string>{"update"},
                    std::vector<std::string>{"update", "--check"}}) {
    args.insert(args.begin(), kBallast);
    args.push_back("--bus-address=" + bus->address());
    auto r = run(args);
    INFO(args[1]);
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("needs the running agent") != std::string::npos);
    CHECK(r.err.find("[dbus.no-daemon]") != std::string::npos);
  }
}

TEST_CASE("ballast update rejects contradictory options as bad usage", "[dbus][verbs]") {
  auto r = run({kBallast, "update", "--check", "--apply"});
  CHECK(r.exit_code == 2);
}

TEST_CASE("ballast pin refuses a version the boot manager could not stage and writes no pin", "[dbus][verbs]") {
  auto state = make_temp_dir("ballast-pin-verb");
  REQUIRE(state);
  auto bad = run({kBallast, "--state-dir", *state, "pin", "2.0+1"});
  CHECK(bad.exit_code == 1);
  CHECK(bad.err.find("version.invalid") != std::string::npos);
  CHECK_FALSE(path_exists(*state + "/pin"));
  auto good = run({kBallast, "--state-dir", *state, "pin", "2.0"});
  CHECK(good.exit_code == 0);
  CHECK(*read_file(*state + "/pin") == "2.0\n");
  REQUIRE(remove_tree(*state));
}
