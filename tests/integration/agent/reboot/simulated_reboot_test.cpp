// `ballast daemon --simulate-reboot` as a process on a sandbox host: real Btrfs, a file://
// repository made by `ballast repo`, the systemd-boot backend on a directory ESP. Each simulated
// reboot must end the daemon by itself, and the next start must see what the simulator booted.
#include <catch2/catch.hpp>

#include "boot/boot_control.hpp"
#include "common/file.hpp"
#include "common/process.hpp"
#include "tests/integration/agent/sandbox_host.hpp"
#include "tests/version_literal.hpp"

using namespace ballast;
using ballast::testing::SandboxHost;

namespace {
using namespace ballast::version_literals;

const std::string kBallast = std::string(BALLAST_BUILD_ROOT) + "/agent/ballast";

struct SimulatedHost {
  SandboxHost h;
  std::string base = h.fs->base_dir();
  std::string repo = base + "/repo", keys = base + "/keys", config = base + "/config", run = base + "/run";

  SimulatedHost() {
    auto boot = boot::make_systemd_boot_control(h.paths);
    ballast::testing::install_first(h, *boot, "1.0");
    REQUIRE(run_checked({kBallast, "repo", "init", repo, "--keys", keys}));
    REQUIRE(run_checked({kBallast, "repo", "add", repo, "--keys", keys, "--version", "1.0", "--subvolume",
                         h.build + "/minimal-1.0", "--zstd-level", "3"}));
    h.publish("2.0", "1.0");
    REQUIRE(run_checked({kBallast, "repo", "add", repo, "--keys", keys, "--version", "2.0", "--subvolume",
                         h.build + "/minimal-2.0", "--delta-from", "1.0", "--delta-from-subvolume",
                         h.build + "/minimal-1.0", "--zstd-level", "3"}));
    REQUIRE(make_dirs(config));
    REQUIRE(make_dirs(run));
    // The first check a second after start; no systemd units to count in the sandbox.
    REQUIRE(write_file_atomic(config + "/10-test.toml",
                              "[repository]\nurl = \"file://" + repo + "\"\nroot = \"" + repo + "/metadata/1.root.json\"\n"
                              "[update]\ncheck_interval = \"1s\"\ncheck_jitter = \"0s\"\n[reboot]\nstrategy = \"immediate\"\n"
                              "[node]\nwariness = 0.0\n[health]\ncheck_failed_units = false\n"
                              "[report]\nmetrics_socket = \"" + base + "/metrics.sock\"\n"));
  }
  std::vector<std::string> host_args() const {
    return {kBallast, "--sysroot", h.top(), "--esp-path", h.esp, "--efivars-path", h.efivars,
            "--cmdline-path", h.cmdline, "--state-dir", h.state, "--config-dir", config};
  }
  // The daemon until it exits by itself (a simulated reboot); the timeout only guards a hang.
  ProcessResult daemon(const std::vector<std::string>& extra = {}) {
    auto argv = host_args();
    for (auto s : {"daemon", "--simulate-reboot", "--no-dbus", "--run-dir"}) argv.push_back(s);
    argv.push_back(run);
    argv.insert(argv.end(), extra.begin(), extra.end());
    SpawnOptions o;
    o.timeout = std::chrono::minutes(2);
    auto r = run_process(argv, o);
    REQUIRE(r);
    INFO(r->err);
    return *r;
  }
  std::string booted() { return boot::make_systemd_boot_control(h.paths)->booted_version()->str(); }
  boot::BootEntry entry(const std::string& v) {
    auto all = boot::make_systemd_boot_control(h.paths)->entries();
    REQUIRE(all);
    for (const auto& e : *all)
      if (e.version.str() == v) return e;
    FAIL("no entry " << v);
    return {};
  }
  nlohmann::json flow() { return nlohmann::json::parse(*read_file(h.state + "/flow.json")); }

  // The daemon finds 2.0 on its first check, stages it and reboots the sandbox into it.
  void update_to_2() {
    auto r = daemon();
    INFO(r.err);
    REQUIRE(r.exit_code == 0);  // ended by the simulated reboot, cleanly
    REQUIRE(booted() == "2.0");
    CHECK(entry("2.0").state == boot::EntryState::indeterminate);
    CHECK(entry("2.0").tries_done == 1);
    CHECK(flow()["state"] == "verifying");
    CHECK_THAT(r.err, Catch::Contains("simulated reboot: booted 2.0"));
    CHECK_FALSE(path_exists(run + "/reboot-required"));  // announced, then gone with the "reboot"
  }
};

}  // namespace

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
  std::string check = s.h.layout().deployment("2.0") + "/etc/ballast/health.d/required/50-local";
  REQUIRE(make_dirs(s.h.layout().deployment("2.0") + "/etc/ballast/health.d/required"));
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
