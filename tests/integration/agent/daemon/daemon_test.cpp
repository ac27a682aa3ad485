// The daemon on a sandbox host: real Btrfs, a real TUF repository published with `ballast repo`
// (file://), the systemd-boot backend on a directory ESP, and the boot simulator standing in for
// the firmware when the daemon reboots. Each Agent is one "process" of the daemon on one boot.
#include <sys/stat.h>
#include <unistd.h>

#include <set>

#include <catch2/catch.hpp>

#include "agent/daemon/daemon.hpp"
#include "agent/daemon/ports.hpp"
#include "agent/reboot/policy.hpp"
#include "common/file.hpp"
#include "common/process.hpp"
#include "repository/publisher.hpp"
#include "boot/efivars.hpp"
#include "images/uki.hpp"
#include "repository/manifest.hpp"
#include "tests/integration/agent/sandbox_host.hpp"
#include "tests/integration/support/http_servers.hpp"
#include "tests/integration/support/tree_compare.hpp"
#include "tests/unit/agent/flow_fakes.hpp"
#include "tests/version_literal.hpp"

using namespace ballast;
using namespace ballast::agent;
using ballast::testing::SandboxHost;
using ballast::testing::compare_trees;
using ballast::testing::TreeCompareOptions;
using S = FlowState;
using Types = std::vector<std::string>;

namespace {
using namespace ballast::version_literals;

const std::string kBallast = std::string(BALLAST_BUILD_ROOT) + "/agent/ballast";

// Reboots the sandbox host through the simulated loader, counting like the unit tests' rebooter.
struct SimulatorRebooter : agent::testing::FakeRebooter {
  boot::BootPaths paths;
  explicit SimulatorRebooter(boot::BootPaths p) : paths(std::move(p)) {}
  Status reboot() override {
    BALLAST_CHECK(FakeRebooter::reboot());
    boot::BootSimulator sim(paths);
    auto booted = sim.reboot();
    if (!booted) return tl::unexpected(booted.error());
    return ok();
  }
};

// A host running 1.0 (blessed), and a repository that publishes 1.0.
struct Fleet {
  SandboxHost h;
  std::string repo, keys, health;
  agent::reboot::FakeRebootPolicy gate;
  agent::testing::RecordingReporter reporter;
  SimulatorRebooter rebooter{h.paths};
  SystemClock clock;

  Fleet() {
    repo = h.fs->base_dir() + "/repo";
    keys = h.fs->base_dir() + "/keys";
    health = h.fs->base_dir() + "/health";
    REQUIRE(make_dirs(health + "/required"));
    auto boot = boot::make_systemd_boot_control(h.paths);
    ballast::testing::install_first(h, *boot, "1.0");
    REQUIRE(run_checked({kBallast, "repo", "init", repo, "--keys", keys}));
    REQUIRE(run_checked({kBallast, "repo", "add", repo, "--keys", keys, "--version", "1.0", "--subvolume",
                         h.build + "/minimal-1.0", "--zstd-level", "3"}));
  }

  // Builds `version` (with `files` added, with a UKI when `uki`) and publishes it with a delta from
  // `parent` (and `extra` arguments of `repo add`).
  void release(const std::string& version, const std::string& parent, const std::vector<images::FileSpec>& files = {},
               const std::vector<std::string>& extra = {}, bool uki = false) {
    h.publish(version, parent, uki, files);
    std::vector<std::string> argv{kBallast, "repo", "add", repo, "--keys", keys, "--version", version, "--subvolume",
                                  h.build + "/minimal-" + version, "--delta-from", parent, "--delta-from-subvolume",
                                  h.build + "/minimal-" + parent, "--zstd-level", "3"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    REQUIRE(run_checked(argv));
  }
  // A TPM in sysfs's layout whose PCR 11 holds `pcr11`; tpm_dir does not exist until then.
  std::string tpm_dir() const { return h.fs->base_dir() + "/tpm0"; }
  void tpm(const std::string& pcr11) {
    REQUIRE(make_dirs(tpm_dir() + "/pcr-sha256"));
    REQUIRE(write_file_atomic(tpm_dir() + "/pcr-sha256/11", pcr11 + "\n"));
  }
  // `ballast status --json` of the sandbox host, read from the host (no agent on the bus).
  nlohmann::json status() {
    auto r = run_checked({kBallast, "--sysroot", h.top(), "--esp-path", h.esp, "--efivars-path", h.efivars,
                          "--cmdline-path", h.cmdline, "--state-dir", h.state, "--tpm-path", tpm_dir(), "--config-dir",
                          h.fs->base_dir() + "/no-config", "--json", "status", "--bus-address", "unix:path=/nonexistent"});
    REQUIRE(r);
    return nlohmann::json::parse(r->out);
  }
  // `ballast health --json` on the sandbox host, as ballast-health.service runs it before the boot
  // is blessed (the fleet's health directory in place of the deployment's own).
  ProcessResult health_verb() {
    auto r = run_process({kBallast, "--sysroot", h.top(), "--esp-path", h.esp, "--efivars-path", h.efivars,
                          "--cmdline-path", h.cmdline, "--state-dir", h.state, "--tpm-path", tpm_dir(), "--config-dir",
                          h.fs->base_dir() + "/no-config", "--json", "health", "--dir", health, "--no-failed-units"});
    REQUIRE(r);
    return *r;
  }
  void revoke(const std::string& version) {
    REQUIRE(run_checked({kBallast, "repo", "revoke", repo, "--keys", keys, "--version", version}));
  }
  void health_check(const std::string& name, int exit_code) {
    std::string path = health + "/required/" + name;
    REQUIRE(write_file_atomic(path, "#!/bin/sh\necho checked\nexit " + std::to_string(exit_code) + "\n", 0755));
  }
  void cli(const std::vector<std::string>& args) {
    std::vector<std::string> argv{kBallast, "--state-dir", h.state, "--config-dir", h.fs->base_dir() + "/no-config"};
    argv.insert(argv.end(), args.begin(), args.end());
    REQUIRE(run_checked(argv));
  }
  // A configuration directory for `ballast daemon --once` on the sandbox: this repository,
  // reboot.strategy manual.
  std::string manual_config() {
    std::string config = h.fs->base_dir() + "/config";
    REQUIRE(make_dirs(config));
    REQUIRE(write_file_atomic(config + "/10-test.toml",
                              "[repository]\nurl = \"file://" + repo + "\"\nroot = \"" + repo +
                                  "/metadata/1.root.json\"\n[reboot]\nstrategy = \"manual\"\n[node]\nwariness = 0.0\n"
                                  "[health]\ncheck_failed_units = false\n"));
    return config;
  }
  std::string booted() { return boot::make_systemd_boot_control(h.paths)->booted_version()->str(); }
  std::vector<boot::BootEntry> entries() { return *boot::make_systemd_boot_control(h.paths)->entries(); }
  nlohmann::json flow_record() { return nlohmann::json::parse(*read_file(h.state + "/flow.json")); }
};

// The daemon as it starts on the host's current boot.
struct Agent {
  std::unique_ptr<boot::BootControl> boot;
  std::unique_ptr<HostReleaseSource> source;
  std::unique_ptr<HostHealthChecker> health;
  std::unique_ptr<boot::Tpm> tpm;
  std::unique_ptr<Daemon> daemon;

  // `gate`: the reboot policy, the fleet's always-open fake unless given. `repo_url`: where the
  // fleet's repository is served, file:// unless given.
  explicit Agent(Fleet& f, agent::reboot::RebootPolicy* gate = nullptr, const std::string& repo_url = "") {
    boot = boot::make_systemd_boot_control(f.h.paths);
    HostReleaseSourceOptions so;
    so.request.repo_url = repo_url.empty() ? "file://" + f.repo : repo_url;
    so.request.root_json = f.repo + "/metadata/1.root.json";
    so.request.state_dir = f.h.state;
    so.host = f.h.layout();
    so.state_dir = f.h.state;
    source = std::make_unique<HostReleaseSource>(so, *boot, f.clock);
    HealthOptions ho;
    ho.dirs = {f.health};
    ho.check_failed_units = false;  // the machine running the tests is not the sandbox host
    health = std::make_unique<HostHealthChecker>(ho);
    tpm = boot::make_sysfs_tpm(f.tpm_dir());
    health->check_measured_boot(*tpm, f.h.state, *boot);
    DaemonOptions opts;
    opts.state_dir = f.h.state;
    auto d = Daemon::open(opts, DaemonPorts{*boot, *source, gate ? *gate : f.gate, f.rebooter, *health, f.reporter, f.clock});
    REQUIRE(d);
    daemon = std::move(*d);
  }
  std::vector<S> run() {
    auto passed = daemon->run_flow();
    if (!passed) FAIL(passed.error().describe());
    INFO(daemon->status()->last_error);
    return *passed;
  }
};

const std::vector<S> kToReboot{S::checking, S::staging, S::staged, S::waiting_to_reboot, S::rebooting, S::verifying};

}  // namespace

TEST_CASE("the daemon updates the host from the repository, reboots into the update and blesses it once healthy") {
  Fleet f;
  f.release("2.0", "1.0");
  f.health_check("10-ok", 0);
  {
    Agent a(f);
    CHECK(a.run() == kToReboot);
    CHECK(f.rebooter.announced == Types{"2.0"});
    CHECK(a.daemon->status()->state == "verifying");  // what the next start does
    CHECK(a.daemon->status()->target == "2.0");
  }
  CHECK(f.booted() == "2.0");
  CHECK(f.entries().front().state == boot::EntryState::indeterminate);
  // Staged as a slot and a deployment carrying the new image.
  CHECK(path_exists(f.h.layout().slot("2.0"_v)));
  CHECK_THAT(*read_file(f.h.layout().deployment("2.0"_v) + "/etc/release-note"), Catch::Contains("this is 2.0"));
  Agent after(f);
  CHECK(after.run() == std::vector<S>{S::committed, S::idle});
  CHECK(f.entries().front().version == "2.0"_v);
  CHECK(f.entries().front().state == boot::EntryState::good);
  CHECK(f.reporter.types == Types{"checked", "staged", "rebooting", "booted", "health.passed", "committed"});
  CHECK(f.gate.steady == 1);
  auto history = after.daemon->history();
  REQUIRE(history);
  CHECK((*history).back()["result"] == "committed");
  // Nothing newer: the next check rests.
  CHECK(after.run() == std::vector<S>{S::checking, S::idle});
}

TEST_CASE("an unhealthy update falls back to the old version, is recorded as rolled back, denylisted and not retried") {
  Fleet f;
  f.release("2.0", "1.0");
  f.health_check("10-ok", 0);
  f.health_check("20-broken", 1);
  {
    Agent a(f);
    CHECK(a.run() == kToReboot);
  }
  CHECK(f.booted() == "2.0");
  {
    Agent a(f);
    CHECK(a.run() == std::vector<S>{S::reverting, S::verifying});  // marked bad, rebooted
  }
  CHECK(f.booted() == "1.0");  // the loader skipped the exhausted entry
  Agent after(f);
  CHECK(after.run() == std::vector<S>{S::idle});  // resumed as rolled back: 2.0 is bad and 1.0 booted
  CHECK(f.reporter.types ==
        Types{"checked", "staged", "rebooting", "booted", "health.failed", "booted", "rolled-back"});
  auto record = f.flow_record();
  CHECK(record["denylist"] == nlohmann::json{"2.0"});
  CHECK(record["history"].back()["result"] == "rolled-back");
  CHECK_THAT(record["history"].back()["error"].get<std::string>(), Catch::Contains("required/20-broken"));
  for (const auto& e : f.entries())
    if (e.version == "2.0"_v) CHECK(e.state == boot::EntryState::bad);
  // The next check does not try 2.0 again.
  CHECK(after.run() == std::vector<S>{S::checking, S::idle});
  CHECK(f.reporter.types.back() == "checked");
  CHECK(f.booted() == "1.0");
  auto c = after.daemon->check();
  REQUIRE(c);
  CHECK((*c)["available"].is_null());
  CHECK_THAT((*c)["reason"].get<std::string>(), Catch::Contains("2.0 is denylisted"));
}

TEST_CASE("a host booted into a release that is then revoked goes back to its previous good deployment") {
  Fleet f;
  f.release("2.0", "1.0");
  f.health_check("10-ok", 0);
  {
    Agent a(f);
    CHECK(a.run() == kToReboot);
  }
  {
    Agent a(f);
    CHECK(a.run() == std::vector<S>{S::committed, S::idle});
  }
  f.revoke("2.0");
  {
    Agent a(f);
    CHECK(a.run() == kToReboot);
    CHECK_THAT(a.source->explain(), Catch::Contains("2.0 is revoked; back to the previous good deployment 1.0"));
  }
  CHECK(f.booted() == "1.0");
  Agent after(f);
  CHECK(after.run() == std::vector<S>{S::committed, S::idle});
  CHECK(f.entries().front().version == "1.0"_v);
  auto last = f.flow_record()["history"].back();
  CHECK(last["from"] == "2.0");
  CHECK(last["target"] == "1.0");
  CHECK(last["result"] == "committed");
  // 2.0 stays revoked: the host rests on 1.0.
  CHECK(after.run() == std::vector<S>{S::checking, S::idle});
}

TEST_CASE("a pin set with `ballast pin` holds the host at that version until `ballast unpin`") {
  Fleet f;
  f.release("2.0", "1.0");
  f.release("3.0", "2.0");
  f.health_check("10-ok", 0);
  f.cli({"pin", "2.0"});
  {
    Agent a(f);
    CHECK(a.daemon->status()->pinned == "2.0");
    CHECK(a.run() == kToReboot);
    CHECK(a.source->explain() == "pinned to 2.0");
  }
  CHECK(f.booted() == "2.0");
  {
    Agent a(f);
    CHECK(a.run() == std::vector<S>{S::committed, S::idle});
    CHECK(a.run() == std::vector<S>{S::checking, S::idle});  // pinned and there: stays
  }
  f.cli({"unpin"});
  {
    Agent a(f);
    CHECK(a.daemon->status()->pinned.empty());
    CHECK(a.run() == kToReboot);
  }
  CHECK(f.booted() == "3.0");
}

TEST_CASE("`ballast daemon --once` with reboot.strategy manual stages the update, flags the reboot and waits") {
  Fleet f;
  f.release("2.0", "1.0");
  std::string config = f.manual_config();
  std::string flag = f.h.fs->base_dir() + "/reboot-required";
  auto r = run_process({kBallast, "--sysroot", f.h.top(), "--esp-path", f.h.esp, "--efivars-path", f.h.efivars,
                        "--cmdline-path", f.h.cmdline, "--state-dir", f.h.state, "--config-dir", config, "--json", "daemon",
                        "--once", "--run-dir", f.h.fs->base_dir()});
  REQUIRE(r);
  INFO(r->err);
  REQUIRE(r->exit_code == 0);
  auto status = nlohmann::json::parse(r->out);
  CHECK(status["state"] == "waiting-to-reboot");
  CHECK(status["staged"] == "2.0");
  CHECK(status["booted"] == "1.0");
  CHECK(path_exists(flag));
  CHECK_THAT(*read_file(flag + ".pkgs"), Catch::Contains("ballast=2.0"));
  CHECK(f.booted() == "1.0");
  CHECK(f.entries().front().version == "2.0"_v);
  CHECK(f.entries().front().state == boot::EntryState::indeterminate);

  // Bad configuration: a clear error and exit 1.
  REQUIRE(write_file_atomic(config + "/20-bad.toml", "[node]\nwariness = 2.0\n"));
  auto bad = run_process({kBallast, "--sysroot", f.h.top(), "--esp-path", f.h.esp, "--efivars-path", f.h.efivars,
                          "--cmdline-path", f.h.cmdline, "--state-dir", f.h.state, "--config-dir", config, "daemon", "--once"});
  REQUIRE(bad);
  CHECK(bad->exit_code == 1);
  CHECK_THAT(bad->err, Catch::Contains("node.wariness"));
}

TEST_CASE("with the periodic strategy an update staged outside the maintenance window waits for it, then reboots and is blessed") {
  Fleet f;
  f.release("2.0", "1.0");
  f.health_check("10-ok", 0);
  // The strategy as `ballast daemon` builds it from the configuration, on a clock of its own that
  // starts at Thursday 2026-01-01 00:00 UTC; the window opens on Thursdays at 02:00 for an hour.
  // (The repository's metadata expiry stays on the real clock.)
  FakeClock window_clock;
  Config config;
  REQUIRE(config.merge_text("[reboot]\nstrategy = \"periodic\"\nwindow_days = [\"Thu\"]\nwindow_start = \"02:00\"\n"
                            "window_length = \"1h\"\ntime_zone = \"UTC\"\n",
                            "10-window.toml"));
  repository::FakeHttpClient http;  // only FleetLock would use it
  auto made = agent::reboot::make_reboot_gate(config, http, window_clock, "node-1");
  REQUIRE(made);
  agent::reboot::StrategyPolicy gate(std::move(*made));
  REQUIRE(std::string(gate.strategy()) == "periodic");
  const auto opens = window_clock.now() + std::chrono::hours(2);
  const auto next_week = opens + std::chrono::days(7);

  {
    Agent a(f, &gate);
    // The last waiting_to_reboot: the strategy was asked and said not yet.
    CHECK(a.run() ==
          std::vector<S>{S::checking, S::staging, S::staged, S::waiting_to_reboot, S::waiting_to_reboot});
    CHECK(a.daemon->status()->state == "waiting-to-reboot");
    CHECK(a.daemon->status()->staged == "2.0");
    CHECK(gate.next_attempt() == opens);  // the daemon's timer is armed for the opening
    // Asked again before the window: still waiting.
    window_clock.advance(std::chrono::minutes(119));
    CHECK(a.run() == std::vector<S>{S::waiting_to_reboot});
  }
  CHECK(f.rebooter.reboots == 0);
  CHECK(f.rebooter.announced == Types{"2.0"});
  CHECK(f.booted() == "1.0");
  CHECK(f.entries().front().version == "2.0"_v);
  CHECK(f.entries().front().state == boot::EntryState::indeterminate);

  // A window missed (the daemon was not running): it waits for next week's.
  window_clock.set_wall(opens + std::chrono::minutes(61));
  CHECK(gate.next_attempt() == next_week);
  {
    Agent a(f, &gate);  // a restart resumes waiting
    CHECK(a.daemon->status()->state == "waiting-to-reboot");
    CHECK(a.run() == std::vector<S>{S::waiting_to_reboot});
  }
  CHECK(f.rebooter.reboots == 0);
  CHECK(f.booted() == "1.0");

  // Inside next week's window: it reboots into 2.0, which is blessed once healthy.
  window_clock.set_wall(next_week + std::chrono::minutes(10));
  CHECK(gate.next_attempt() == window_clock.now());
  {
    Agent a(f, &gate);
    CHECK(a.run() == std::vector<S>{S::rebooting, S::verifying});
  }
  CHECK(f.rebooter.reboots == 1);
  CHECK(f.booted() == "2.0");
  Agent after(f, &gate);
  CHECK(after.run() == std::vector<S>{S::committed, S::idle});
  CHECK(f.entries().front().version == "2.0"_v);
  CHECK(f.entries().front().state == boot::EntryState::good);
  CHECK(f.reporter.types == Types{"checked", "staged", "rebooting", "booted", "health.passed", "committed"});
}

namespace {

// The strategies that keep a staged update waiting, as `ballast daemon` builds them from the
// configuration: manual, a maintenance window that is closed, a FleetLock server that refuses.
struct WaitingStrategy {
  FakeClock window_clock;  // Thursday 2026-01-01 00:00 UTC: the Thursday 02:00 window is closed
  repository::FakeHttpClient locks;
  std::unique_ptr<agent::reboot::StrategyPolicy> policy;

  explicit WaitingStrategy(const std::string& strategy) {
    locks.on_post = [](const repository::FakeHttpClient::Post& p) -> Result<repository::HttpResponse> {
      if (p.url.find("pre-reboot") != std::string::npos)
        return repository::HttpResponse{423, R"({"kind":"failed_lock","value":"held by node-b"})"};
      return repository::HttpResponse{200, "{}"};
    };
    std::string toml = "[reboot]\nstrategy = \"" + strategy + "\"\n";
    if (strategy == "periodic")
      toml += "window_days = [\"Thu\"]\nwindow_start = \"02:00\"\nwindow_length = \"1h\"\ntime_zone = \"UTC\"\n";
    if (strategy == "fleet_lock") toml += "fleet_lock_url = \"http://locks\"\n";
    Config config;
    REQUIRE(config.merge_text(toml, "10-strategy.toml"));
    auto gate = agent::reboot::make_reboot_gate(config, locks, window_clock, "node-1");
    REQUIRE(gate);
    policy = std::make_unique<agent::reboot::StrategyPolicy>(std::move(*gate));
    REQUIRE(std::string(policy->strategy()) == strategy);
  }
};

int count(const Types& types, const std::string& type) { return static_cast<int>(std::count(types.begin(), types.end(), type)); }

}  // namespace

TEST_CASE("a reboot by anyone else while the update waits for any strategy is verified and committed on the next start") {
  for (const char* strategy : {"manual", "periodic", "fleet_lock"}) {
    DYNAMIC_SECTION("reboot.strategy " << strategy) {
      Fleet f;
      f.release("2.0", "1.0");
      f.health_check("10-ok", 0);
      WaitingStrategy waiting(strategy);
      {
        Agent a(f, waiting.policy.get());
        CHECK(a.run() == std::vector<S>{S::checking, S::staging, S::staged, S::waiting_to_reboot, S::waiting_to_reboot});
      }
      CHECK(f.rebooter.reboots == 0);
      // The operator, or kured reacting to /run/reboot-required: the daemon is not asked.
      boot::BootSimulator sim(f.h.paths);
      REQUIRE(sim.reboot());
      REQUIRE(f.booted() == "2.0");
      REQUIRE(f.entries().front().state == boot::EntryState::indeterminate);
      Agent after(f, waiting.policy.get());
      CHECK(after.daemon->status()->state == "verifying");
      CHECK(after.run() == std::vector<S>{S::committed, S::idle});
      CHECK(f.entries().front().version == "2.0"_v);
      CHECK(f.entries().front().state == boot::EntryState::good);
      CHECK(f.rebooter.reboots == 0);
      CHECK(f.reporter.types == Types{"checked", "staged", "booted", "health.passed", "committed"});
      CHECK(f.flow_record()["history"].back()["result"] == "committed");
      // And it checks for updates again.
      CHECK(after.run() == std::vector<S>{S::checking, S::idle});
    }
  }
}

TEST_CASE("a reboot by anyone else into an unhealthy update waiting for the manual strategy rolls it back on the next start") {
  Fleet f;
  f.release("2.0", "1.0");
  f.health_check("20-broken", 1);
  WaitingStrategy waiting("manual");
  {
    Agent a(f, waiting.policy.get());
    CHECK(a.run() == std::vector<S>{S::checking, S::staging, S::staged, S::waiting_to_reboot, S::waiting_to_reboot});
  }
  boot::BootSimulator sim(f.h.paths);
  REQUIRE(sim.reboot());
  REQUIRE(f.booted() == "2.0");
  {
    Agent a(f, waiting.policy.get());
    CHECK(a.run() == std::vector<S>{S::reverting, S::verifying});  // marked bad, rebooted back (not gated)
  }
  CHECK(f.booted() == "1.0");
  Agent after(f, waiting.policy.get());
  CHECK(after.run() == std::vector<S>{S::idle});  // resumed as rolled back, recorded
  CHECK(f.reporter.types == Types{"checked", "staged", "booted", "health.failed", "booted", "rolled-back"});
  CHECK(f.flow_record()["denylist"] == nlohmann::json{"2.0"});
  CHECK(f.flow_record()["history"].back()["result"] == "rolled-back");
  CHECK(after.run() == std::vector<S>{S::checking, S::idle});
}

TEST_CASE("a published release whose image names another version fails staging once, is reported once and not fetched again") {
  Fleet f;
  // Published past `repo add`'s check (by an older publisher): release 2.0 holds the 1.0 image.
  std::string stream = f.h.fs->base_dir() + "/1.0-image.full";
  {
    UniqueFd out(::open(stream.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    REQUIRE(out);
    snapshot::SendOptions so;
    so.subvolume = f.h.build + "/minimal-1.0";
    REQUIRE(snapshot::send(so, out.get()));
  }
  {
    auto w = repository::tuf::RepoWriter::open(f.repo, f.keys);
    REQUIRE(w);
    repository::ReleaseInfo info;
    info.version = "2.0"_v;
    repository::ArtifactInput full;
    full.open = [stream] { return open_file_source(stream); };
    repository::PackOptions pack;
    pack.zstd_level = 3;
    REQUIRE(repository::publish_release(*w, info, {full}, pack));
  }
  Agent a(f);
  CHECK(a.run() == std::vector<S>{S::checking, S::staging, S::failed, S::idle});
  CHECK(count(f.reporter.types, "error") == 1);
  auto record = f.flow_record();
  CHECK(record["denylist"] == nlohmann::json{"2.0"});
  CHECK(record["history"].back()["result"] == "failed");
  CHECK_THAT(record["history"].back()["error"].get<std::string>(), Catch::Contains("[image.wrong-version]"));
  CHECK_THAT(record["history"].back()["error"].get<std::string>(), Catch::Contains("2.0 is denylisted"));
  CHECK_THAT(a.daemon->status()->last_error, Catch::Contains("image.wrong-version"));
  CHECK_FALSE(path_exists(f.h.layout().slot("2.0"_v)));
  // The next checks do not stage (so do not download) it again, and say why.
  for (int i = 0; i < 2; ++i) CHECK(a.run() == std::vector<S>{S::checking, S::idle});
  CHECK(count(f.reporter.types, "error") == 1);
  CHECK(count(f.reporter.types, "checked") == 3);
  CHECK_THAT(a.source->explain(), Catch::Contains("2.0 is denylisted"));
  // A restart keeps it so.
  Agent after(f);
  CHECK(after.run() == std::vector<S>{S::checking, S::idle});
  CHECK(count(f.reporter.types, "error") == 1);
}

TEST_CASE("a committed update puts the release's signed systemd-boot on the sandbox's ESP, not before") {
  Fleet f;
  // The release ships systemd-boot signed as `image build --secure-boot-key` signs it; the host
  // enforces Secure Boot.
  const std::string dir = f.h.fs->base_dir();
  REQUIRE(run_checked({"openssl", "req", "-new", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                       "/CN=ballast test db", "-keyout", dir + "/db.key", "-out", dir + "/db.crt"}));
  REQUIRE(run_checked({"sbsign", "--key", dir + "/db.key", "--cert", dir + "/db.crt", "--output", dir + "/signed.efi",
                       "/usr/lib/systemd/boot/efi/systemd-bootx64.efi"}));
  const std::string loader = *read_file(dir + "/signed.efi");
  REQUIRE(write_file_atomic(f.h.efivars + "/SecureBoot-" + boot::kGlobalVariableGuid, std::string("\x06\0\0\0\x01", 5)));
  f.release("2.0", "1.0", {images::FileSpec{images::kSignedLoaderPath, "", dir + "/signed.efi", 0644, 0, 0}});
  f.health_check("10-ok", 0);
  {
    Agent a(f);
    CHECK(a.run() == kToReboot);
  }
  // Staged and booted on trial: the loader that booted the host stays until the commit.
  CHECK_FALSE(path_exists(f.h.esp + "/EFI/BOOT/BOOTX64.EFI"));
  Agent after(f);
  CHECK(after.run() == std::vector<S>{S::committed, S::idle});
  CHECK(*read_file(f.h.esp + "/EFI/BOOT/BOOTX64.EFI") == loader);
  CHECK(*read_file(f.h.esp + "/EFI/systemd/systemd-bootx64.efi") == loader);
  REQUIRE(f.reporter.types.back() == "committed");
  CHECK(f.reporter.data.back()["loader"] == "updated");
}

TEST_CASE("an applied update leaves the download cache empty, and a failed staging keeps only its target's "
          "verified chunks so the retry downloads the rest") {
  Fleet f;
  // 2.0 as a full stream only, with 8 MB of incompressible data: several chunks to fetch.
  f.h.publish("2.0");
  const std::string big = f.h.build + "/big-2.0";
  REQUIRE(run_checked({"btrfs", "-q", "subvolume", "snapshot", f.h.build + "/minimal-2.0", big + "-work"}));
  REQUIRE(run_checked({"dd", "if=/dev/urandom", "of=" + big + "-work/blob", "bs=1M", "count=8", "status=none"}));
  REQUIRE(run_checked({"btrfs", "-q", "subvolume", "snapshot", "-r", big + "-work", big}));
  REQUIRE(run_checked({kBallast, "repo", "add", f.repo, "--keys", f.keys, "--version", "2.0", "--subvolume", big,
                       "--zstd-level", "3"}));
  auto manifests = list_dir(f.repo + "/targets/releases/2.0");
  REQUIRE(manifests);
  REQUIRE(manifests->size() == 1);
  auto manifest = repository::parse_manifest(*read_file(f.repo + "/targets/releases/2.0/" + manifests->front(), 1 << 24));
  REQUIRE(manifest);
  const repository::Artifact art = *manifest->full();
  REQUIRE(art.chunks.size() >= 3);
  auto server = ballast::testing::FaultyHttpServer::start(f.repo);
  REQUIRE(server);
  const std::string cache = repository::chunk_cache_dir(f.h.state);
  // Another target's chunk, left by an earlier failed staging.
  REQUIRE(make_dirs(cache));
  REQUIRE(write_file_atomic(cache + "/" + std::string(64, 'a'), "another target's chunk"));

  auto boot = boot::make_systemd_boot_control(f.h.paths);
  HostReleaseSourceOptions so;
  so.request.repo_url = (*server)->url();
  so.request.root_json = f.repo + "/metadata/1.root.json";
  so.request.state_dir = f.h.state;
  so.request.http.backoff_base = std::chrono::milliseconds(10);
  so.request.parallel = 1;  // the chunks before the refused one arrive, in order
  so.host = f.h.layout();
  so.state_dir = f.h.state;
  HostReleaseSource source(so, *boot, f.clock);

  const std::string& refused = art.chunks.back().sha256;
  REQUIRE((*server)->set_rules({{refused, {"status:404"}}}));
  // The check refreshes the metadata and plans the full stream (no local slot is a parent).
  auto plan = source.check({});
  REQUIRE(plan);
  REQUIRE(*plan);
  REQUIRE((*plan)->version == "2.0"_v);
  REQUIRE_FALSE((*plan)->delta_from);
  auto failed = source.stage(**plan);
  REQUIRE_FALSE(failed);
  CHECK(failed.error().code == "fetch.not-found");
  std::set<std::string> served;  // chunks delivered whole by the first attempt
  for (auto& r : (*server)->requests())
    if (r["path"].get<std::string>().find("chunks/") != std::string::npos && r["status"] == 200)
      served.insert(r["name"].get<std::string>());
  REQUIRE_FALSE(served.empty());
  std::set<std::string> cached;
  auto names = list_dir(cache);
  REQUIRE(names);
  for (const auto& name : *names) cached.insert(name);
  CHECK(cached == served);  // no other target's chunk, no partial one
  uint64_t served_bytes = 0;
  for (const auto& c : art.chunks)
    if (served.count(c.sha256)) served_bytes += c.size;
  // What staging counts as cached, which the free-space check no longer asks for.
  CHECK(*repository::retain_cached_chunks(cache, art) == served_bytes);
  host::StageRequest need;
  need.needed_bytes = art.usize;
  need.download_bytes = art.size;
  const uint64_t whole = host::space_needed(need);
  need.download_bytes = art.size - served_bytes;
  CHECK(whole - host::space_needed(need) == served_bytes);

  REQUIRE((*server)->set_rules(nlohmann::json::object()));
  const size_t before_retry = (*server)->requests().size();
  auto staged = source.stage(**plan);
  if (!staged) FAIL(staged.error().describe());
  auto all = (*server)->requests();
  std::set<std::string> fetched_again;
  for (size_t i = before_retry; i < all.size(); ++i)
    if (all[i]["path"].get<std::string>().find("chunks/") != std::string::npos) fetched_again.insert(all[i]["name"].get<std::string>());
  for (const auto& c : art.chunks) CHECK((fetched_again.count(c.sha256) == 1) == (served.count(c.sha256) == 0));
  CHECK(list_dir(cache)->empty());
  CHECK(path_exists(f.h.layout().slot("2.0"_v)));
}

TEST_CASE("a whole update refreshes the repository once: timestamp.json is fetched exactly once") {
  Fleet f;
  f.release("2.0", "1.0");
  f.health_check("10-ok", 0);
  auto server = ballast::testing::FaultyHttpServer::start(f.repo);
  REQUIRE(server);
  {
    Agent a(f, nullptr, (*server)->url());
    CHECK(a.run() == kToReboot);
  }
  CHECK(f.booted() == "2.0");
  int timestamps = 0, manifests = 0;
  for (const auto& r : (*server)->requests()) {
    if (r["name"] == "timestamp.json") ++timestamps;
    if (r["name"].get<std::string>().ends_with("manifest.json")) ++manifests;
  }
  CHECK(timestamps == 1);
  // Fetched once, by the check to plan; staging reads the copy the check kept, after checking its
  // length and hashes against the same trusted metadata.
  CHECK(manifests == 1);
  auto record = f.flow_record();
  CHECK(record["plan"]["version"] == "2.0");
  // 2.0 was built apart from 1.0, so its delta from 1.0 is no smaller than its full stream: the
  // cheaper plan by bytes is the full stream.
  CHECK(record["plan"]["deltaFrom"].is_null());
  CHECK(record["plan"]["downloadBytes"].get<uint64_t>() > 0);
}

TEST_CASE("a release published with a kernel command line boots with it after the daemon's update") {
  Fleet f;
  f.release("2.0", "1.0", {}, {"--cmdline", "console=ttyS0 ballast.test=signed"});
  f.health_check("10-ok", 0);
  {
    Agent a(f);
    CHECK(a.run() == kToReboot);
  }
  CHECK(f.booted() == "2.0");
  CHECK_THAT(*read_file(f.h.cmdline), Catch::Contains("console=ttyS0 ballast.test=signed"));
  CHECK_THAT(*read_file(f.h.cmdline), Catch::Contains("ballast.version=2.0"));
}

namespace {

// What the staged UKI of `version` leaves in PCR 11 once booted to the end (systemd-pcrphase's
// `ready`), according to systemd-measure.
std::string booted_pcr11(Fleet& f, const std::string& version) {
  auto pcrs = images::predict_pcr11(f.h.build + "/minimal-" + version + images::kUkiPath);
  REQUIRE(pcrs);
  return pcrs->at("enter-initrd:leave-initrd:sysinit:ready");
}

}  // namespace

TEST_CASE("a UKI release whose published PCR 11 the TPM holds after the trial boot is blessed, and status says match") {
  Fleet f;
  f.release("2.0", "1.0", {}, {}, true);
  f.health_check("10-ok", 0);
  {
    Agent a(f);
    CHECK(a.run() == kToReboot);
  }
  CHECK(f.booted() == "2.0");
  f.tpm(booted_pcr11(f, "2.0"));
  auto verb = f.health_verb();
  CHECK(verb.exit_code == 0);
  CHECK(nlohmann::json::parse(verb.out)["checks"].back()["output"] ==
        "PCR 11 matches the published value (phase \"enter-initrd:leave-initrd:sysinit:ready\")");
  Agent after(f);
  CHECK(after.run() == std::vector<S>{S::committed, S::idle});
  CHECK(f.entries().front().version == "2.0"_v);
  CHECK(f.entries().front().state == boot::EntryState::good);
  const auto& passed = f.reporter.data.at(4);
  REQUIRE(f.reporter.types.at(4) == "health.passed");
  CHECK(passed["checks"].back()["name"] == "measured-boot");
  CHECK(passed["checks"].back()["passed"] == true);
  REQUIRE(write_file_atomic(f.h.efivars + "/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c", std::string("\x06\0\0\0\x01", 5)));
  auto status = f.status();
  CHECK(status["secureBoot"] == true);
  CHECK(status["measuredBoot"] == "match");
  CHECK(status["tpm"] == true);
  CHECK(status["bootEntryType"] == "uki");
  CHECK(status["ukiSigned"] == false);
}

TEST_CASE("a UKI release published with a wrong expected PCR 11 is not blessed, falls back and reports the mismatch") {
  Fleet f;
  f.release("2.0", "1.0", {}, {"--expected-pcr11", std::string(63, '0') + "1"}, true);
  f.health_check("10-ok", 0);
  {
    Agent a(f);
    CHECK(a.run() == kToReboot);
  }
  CHECK(f.booted() == "2.0");
  f.tpm(booted_pcr11(f, "2.0"));
  CHECK(f.status()["measuredBoot"] == "mismatch");
  // ballast-health.service's verdict fails the trial boot too, before anything blesses it.
  auto verb = f.health_verb();
  CHECK(verb.exit_code == 1);
  auto verdict = nlohmann::json::parse(verb.out);
  CHECK(verdict["healthy"] == false);
  CHECK(verdict["checks"].back()["name"] == "measured-boot");
  CHECK(verdict["checks"].back()["code"] == "health.measured-boot-mismatch");
  {
    Agent a(f);
    CHECK(a.run() == std::vector<S>{S::reverting, S::verifying});
  }
  CHECK(f.booted() == "1.0");
  Agent after(f);  // resumes as rolled back: 1.0 booted, 2.0's entry is bad
  CHECK(after.run() == std::vector<S>{S::idle});
  CHECK(f.reporter.types == Types{"checked", "staged", "rebooting", "booted", "health.failed", "booted", "rolled-back"});
  const auto& failed = f.reporter.data.at(4);
  CHECK(failed["checks"].back()["code"] == "health.measured-boot-mismatch");
  CHECK_THAT(f.reporter.data.back()["reason"].get<std::string>(), Catch::Contains("health.measured-boot-mismatch"));
  for (const auto& e : f.entries())
    if (e.version == "2.0"_v) CHECK(e.state == boot::EntryState::bad);
}

TEST_CASE("without a TPM the measured-boot check is skipped: the UKI release is blessed and status says unavailable") {
  Fleet f;
  f.release("2.0", "1.0", {}, {"--expected-pcr11", std::string(63, '0') + "1"}, true);
  f.health_check("10-ok", 0);
  CHECK(f.status()["bootEntryType"] == "type1");  // 1.0 has no UKI
  {
    Agent a(f);
    CHECK(a.run() == kToReboot);
  }
  Agent after(f);
  CHECK(after.run() == std::vector<S>{S::committed, S::idle});
  CHECK(f.entries().front().state == boot::EntryState::good);
  CHECK_THAT(f.reporter.data.at(4)["checks"].back()["output"].get<std::string>(), Catch::Contains("skipped: no TPM"));
  auto status = f.status();
  CHECK(status["measuredBoot"] == "unavailable");
  CHECK(status["tpm"] == false);
  CHECK(status["secureBoot"] == false);
}

namespace {

// Publishes 2.0, 3.0 and 4.0 after the fleet's 1.0, each made from the one before (a snapshot
// with its version and release note changed: a small delta), with `repo add --deltas-from-last
// <n>`, the publisher's earlier subvolumes found beside the new one by version (links to them).
ProcessResult publish_next(Fleet& f, const std::string& prev, const std::string& v, const std::string& n,
                           const std::vector<std::string>& more = {}) {
    const std::string image = f.h.build + "/minimal-" + v, work = image + "-work";
    REQUIRE(run_checked({"btrfs", "-q", "subvolume", "snapshot", f.h.build + "/minimal-" + prev, work}));
    std::string os_release = *read_file(work + "/usr/lib/os-release");
    auto at = os_release.find("IMAGE_VERSION=");
    REQUIRE(at != std::string::npos);
    os_release.replace(at, os_release.find('\n', at) - at, "IMAGE_VERSION=" + v);
    REQUIRE(write_file_atomic(work + "/usr/lib/os-release", os_release, 0644));
    REQUIRE(write_file_atomic(work + "/etc/release-note", "this is " + v + "\n", 0644));
    REQUIRE(run_checked({"btrfs", "-q", "subvolume", "snapshot", "-r", work, image}));
    REQUIRE(::symlink(image.c_str(), (f.h.build + "/" + v).c_str()) == 0);
    std::vector<std::string> add = {kBallast, "repo", "add", f.repo, "--keys", f.keys, "--version", v, "--subvolume", image,
                                    "--deltas-from-last", n, "--zstd-level", "3"};
    add.insert(add.end(), more.begin(), more.end());
    auto added = run_checked(add);
    REQUIRE(added);
    return *added;
}

void publish_with_deltas_from_last(Fleet& f, const std::string& n) {
  std::string prev = "1.0";
  REQUIRE(::symlink((f.h.build + "/minimal-1.0").c_str(), (f.h.build + "/1.0").c_str()) == 0);
  for (std::string v : {"2.0", "3.0", "4.0"}) {
    // Every delta the option asks for is published: each earlier subvolume is there.
    CHECK_THAT(publish_next(f, prev, v, n).out, Catch::Contains(v + " delta from " + prev));
    prev = v;
  }
}

uint64_t sum_of_links(const nlohmann::json& plan) {
  uint64_t sum = 0;
  for (const auto& link : plan["chain"]) sum += link["bytes"].get<uint64_t>();
  return sum;
}

// After an update to 4.0: its slot is the publisher's image, no scratch subvolume of a chain is
// left, and only 1.0 and 4.0 are slots.
void check_staged_4_0(Fleet& f) {
  CHECK(compare_trees(f.h.build + "/minimal-4.0", f.h.layout().slot("4.0"_v), TreeCompareOptions{.compare_atime = false}).empty());
  CHECK(list_dir(f.h.layout().partial_dir())->empty());
  CHECK(*snapshot::list_slots(f.h.layout()) == std::vector<Version>{"1.0"_v, "4.0"_v});
}

// The agent updates the host on 1.0 up to the reboot into 4.0; returns the plan it made.
nlohmann::json update_to_4_0(Fleet& f) {
  f.health_check("10-ok", 0);
  {
    Agent a(f);
    CHECK(a.run() == kToReboot);
  }
  CHECK(f.booted() == "4.0");
  check_staged_4_0(f);
  return f.flow_record()["plan"];
}

// Runs the agent once with a fault before the chain's second link (the agent dies with the first
// link's release received into partial/chain-2.0), then once more, which resumes the update to
// 4.0 and cleans up; returns the plan the update carried out.
nlohmann::json kill_between_links_and_resume(Fleet& f) {
  std::string config = f.manual_config();
  auto daemon_once = [&](const std::string& fault) {
    SpawnOptions o;
    if (!fault.empty()) o.extra_env.push_back("BALLAST_FAULT_AT=" + fault);
    auto r = run_process({kBallast, "--sysroot", f.h.top(), "--esp-path", f.h.esp, "--efivars-path", f.h.efivars,
                          "--cmdline-path", f.h.cmdline, "--state-dir", f.h.state, "--config-dir", config, "--json", "daemon",
                          "--once", "--run-dir", f.h.fs->base_dir()},
                         o);
    REQUIRE(r);
    return *r;
  };
  auto killed = daemon_once("chain-link-2");
  CHECK(killed.exit_code != 0);
  CHECK(*list_dir(f.h.layout().partial_dir()) == std::vector<std::string>{"chain-2.0"});
  CHECK(f.flow_record()["state"] == "staging");
  auto resumed = daemon_once("");
  INFO(resumed.err);
  REQUIRE(resumed.exit_code == 0);
  CHECK(nlohmann::json::parse(resumed.out)["staged"] == "4.0");
  check_staged_4_0(f);
  return f.flow_record()["plan"];
}

}  // namespace

TEST_CASE("a host three releases behind updates by the chain of deltas and ends with the image a direct install has") {
  Fleet f;
  publish_with_deltas_from_last(f, "1");
  const auto plan = update_to_4_0(f);
  INFO(plan.dump());
  REQUIRE(plan["chain"].size() == 3);
  CHECK(plan["deltaFrom"] == "1.0");
  CHECK(plan["chain"][1]["from"] == "2.0");
  CHECK(plan["chain"][2]["to"] == "4.0");
  CHECK(plan["downloadBytes"].get<uint64_t>() == sum_of_links(plan));
  CHECK_THAT(*read_file(f.h.layout().deployment("4.0"_v) + "/etc/release-note"), Catch::Contains("this is 4.0"));
}

TEST_CASE("with deltas from the last three releases published, a host three releases behind takes the direct delta") {
  Fleet f;
  publish_with_deltas_from_last(f, "3");
  const auto plan = update_to_4_0(f);
  INFO(plan.dump());
  CHECK(plan["chain"].empty());
  CHECK(plan["deltaFrom"] == "1.0");
}

TEST_CASE("repo add --deltas-from-last skips, with a message, an earlier release whose subvolume the publisher no longer has") {
  Fleet f;
  publish_with_deltas_from_last(f, "1");
  REQUIRE(::unlink((f.h.build + "/3.0").c_str()) == 0);
  f.revoke("2.0");
  auto added = publish_next(f, "4.0", "5.0", "3");
  CHECK_THAT(added.err, Catch::Contains("no delta from 3.0"));
  CHECK_THAT(added.out, Catch::Contains("5.0 delta from 4.0"));
  CHECK_THAT(added.out, Catch::Contains("5.0 delta from 1.0"));  // 2.0 is revoked: the third is 1.0
  CHECK_THAT(added.out, !Catch::Contains("delta from 2.0") && !Catch::Contains("delta from 3.0"));
}

TEST_CASE("an agent killed between two links of a chain resumes, finishes the update and leaves no scratch subvolume") {
  Fleet f;
  publish_with_deltas_from_last(f, "1");
  CHECK(kill_between_links_and_resume(f)["chain"].size() == 3);
}

TEST_CASE("a host beyond the published deltas takes the newest earlier full stream and the deltas after it, and a kill "
          "between its links resumes") {
  Fleet f;
  REQUIRE(::symlink((f.h.build + "/minimal-1.0").c_str(), (f.h.build + "/1.0").c_str()) == 0);
  // 2.0 has a full stream and no delta; 3.0 and 4.0 only a delta from the release before.
  CHECK_THAT(publish_next(f, "1.0", "2.0", "0").out, Catch::Contains("2.0 full"));
  for (auto [prev, v] : {std::pair{"2.0", "3.0"}, std::pair{"3.0", "4.0"}}) {
    auto added = publish_next(f, prev, v, "1", {"--no-full"});
    CHECK_THAT(added.out, Catch::Contains(std::string(v) + " delta from " + prev) && !Catch::Contains(std::string(v) + " full"));
  }
  const auto plan = kill_between_links_and_resume(f);
  INFO(plan.dump());
  CHECK(plan["deltaFrom"].is_null());
  REQUIRE(plan["chain"].size() == 3);
  CHECK(plan["chain"][0]["from"].is_null());
  CHECK(plan["chain"][0]["to"] == "2.0");
  CHECK(plan["chain"][2]["from"] == "3.0");
  CHECK(plan["downloadBytes"].get<uint64_t>() == sum_of_links(plan));
}
