// A sandbox host for `ballast daemon --simulate-reboot` as a process: real Btrfs, a file://
// repository made by `ballast repo` publishing 1.0 and 2.0 (a delta), 1.0 installed and blessed,
// the systemd-boot backend on a directory ESP, a configuration directory whose 10-test.toml
// checks a second after start with reboot.strategy "immediate" (drop_in() overrides it).
#pragma once

#include <future>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "boot/boot_control.hpp"
#include "common/file.hpp"
#include "common/process.hpp"
#include "tests/integration/agent/sandbox_host.hpp"

namespace ballast::testing {

inline const std::string kBallast = std::string(BALLAST_BUILD_ROOT) + "/agent/ballast";

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
  // A configuration drop-in read after 10-test.toml.
  void drop_in(const std::string& toml) { REQUIRE(write_file_atomic(config + "/20-test.toml", toml)); }
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

// A daemon started in the background (std::async over run_process) ended by itself and cleanly;
// its output, for the checks that follow to show when they fail.
inline ProcessResult require_ended_cleanly(std::future<Result<ProcessResult>>& daemon) {
  auto r = daemon.get();
  INFO((r ? std::string() : r.error().describe()));
  REQUIRE(r);
  INFO(r->err);
  REQUIRE(r->exit_code == 0);
  return *r;
}

}  // namespace ballast::testing
