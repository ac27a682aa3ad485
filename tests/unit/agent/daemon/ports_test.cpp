#include "agent/daemon/ports.hpp"

#include <catch2/catch.hpp>

#include "boot/boot_control.hpp"
#include "common/file.hpp"
#include "tests/version_literal.hpp"
#include "tests/temp_dir.hpp"

using namespace ballast;
using ballast::testing::TempDir;
using namespace ballast::agent;

namespace {
using namespace ballast::version_literals;

void check_script(const std::string& path, int exit_code) {
  REQUIRE(write_file_atomic(path, "#!/bin/sh\nexit " + std::to_string(exit_code) + "\n", 0755));
}

std::vector<std::string> names(const HealthReport& r) {
  std::vector<std::string> out;
  for (const auto& c : r.checks) out.push_back(c.name);
  return out;
}

}  // namespace

TEST_CASE("seen from outside (--sysroot), the health checks are those of the booted deployment, its /usr and its /etc") {
  TempDir sysroot;
  snapshot::HostLayout host(sysroot.path);
  REQUIRE(make_dirs(host.deployment("1.0"_v) + "/usr/lib/ballast/health.d/required"));
  check_script(host.deployment("1.0"_v) + "/usr/lib/ballast/health.d/required/10-userland", 0);
  REQUIRE(make_dirs(host.deployment("2.0"_v) + "/usr/lib/ballast/health.d/required"));
  check_script(host.deployment("2.0"_v) + "/usr/lib/ballast/health.d/required/10-userland", 0);
  check_script(host.deployment("2.0"_v) + "/usr/lib/ballast/health.d/required/50-app", 1);
  // The admin's check in 2.0's own /etc.
  REQUIRE(make_dirs(host.deployment("2.0"_v) + "/etc/ballast/health.d/wanted"));
  check_script(host.deployment("2.0"_v) + "/etc/ballast/health.d/wanted/90-local", 0);

  CHECK(deployment_health_dirs(host, "2.0"_v) ==
        std::vector<std::string>{host.deployment("2.0"_v) + "/usr/lib/ballast/health.d",
                                 host.deployment("2.0"_v) + "/etc/ballast/health.d"});
  boot::FakeBootControl boot;
  HealthOptions o;
  o.dirs = {"/nonexistent/must-not-be-used"};
  o.check_failed_units = false;
  HostHealthChecker checker(o, host, boot);

  boot.set_booted("1.0"_v);
  auto one = checker.run();
  REQUIRE(one);
  CHECK(one->healthy);
  CHECK(names(*one) == std::vector<std::string>{"required/10-userland"});

  boot.set_booted("2.0"_v);  // the same checker after the next boot
  auto two = checker.run();
  REQUIRE(two);
  CHECK_FALSE(two->healthy);
  CHECK(two->failures() == std::vector<std::string>{"required/50-app"});
  CHECK(names(*two).size() == 3);
  CHECK(two->checks.back().name == "wanted/90-local");
}

TEST_CASE("seen from outside, health checks fail clearly when no version has booted") {
  TempDir sysroot;
  boot::FakeBootControl boot;
  HealthOptions o;
  o.check_failed_units = false;
  HostHealthChecker checker(o, snapshot::HostLayout(sysroot.path), boot);
  auto r = checker.run();
  REQUIRE_FALSE(r);
  CHECK(r.error().code == "boot.unknown-booted");
}

namespace {
boot::KernelSpec kernel(const Version& v) {
  boot::KernelSpec k;
  k.version = v;
  k.kernel_path = "/vmlinuz-" + v.str();
  return k;
}

}  // namespace

TEST_CASE("a backward plan is staged by preferring the retained entry, with no repository and no fetch") {
  TempDir state;
  boot::FakeBootControl boot;
  REQUIRE(boot.install(kernel("1.0"_v)));
  REQUIRE(boot.bless("1.0"_v));
  REQUIRE(boot.install(kernel("2.0"_v)));
  REQUIRE(boot.bless("2.0"_v));
  boot.set_booted("2.0"_v);
  HostReleaseSourceOptions so;
  // Nothing answers here and no metadata is trusted: any refresh, manifest or chunk fetch fails.
  so.request.repo_url = "http://127.0.0.1:9/repo";
  so.request.root_json = state.path + "/no-root.json";
  so.request.state_dir = state.path;
  so.state_dir = state.path;
  so.host = snapshot::HostLayout(state.path + "/host");
  int progress_events = 0;
  so.on_progress = [&](const Progress&) { ++progress_events; };
  FakeClock clock;
  HostReleaseSource source(so, boot, clock);
  REQUIRE(source.stage(ReleasePlan{"1.0"_v, true, std::nullopt, 0, "pinned to 1.0"}));
  CHECK(progress_events == 0);
  CHECK(*boot.simulate_reboot() == "1.0"_v);
  // The same plan forward would have to fetch, and fails on the missing trust.
  auto forward = source.stage(ReleasePlan{"3.0"_v, false, std::nullopt, 100, "newest"});
  REQUIRE_FALSE(forward);
}

TEST_CASE("the progress total is the plan's download size from the first fetch event on") {
  ReleasePlan plan{"3.0"_v, false, "2.0"_v, 4000, "newest"};
  repository::FetchProgress first;  // before the fetcher knows anything
  Progress p = progress_of(first, plan);
  CHECK(p.total_bytes == 4000);
  CHECK(p.percent == 0);
  CHECK(p.message == "fetching 3.0 (delta 2.0 -> 3.0, 4000 bytes)");
  repository::FetchProgress half;
  half.bytes_done = 2000;
  half.bytes_total = 4000;
  CHECK(progress_of(half, plan).percent == 50);
}

TEST_CASE("a plan's chunks are every link's, in order, with their sizes summed for the cache and the space check") {
  repository::Artifact full;
  full.chunks = {{"aa", 10, 40}, {"bb", 5, 20}};
  full.size = 15;
  full.usize = 60;
  repository::Artifact delta;
  delta.from = "1.0"_v;
  delta.chunks = {{"cc", 3, 9}};
  delta.size = 3;
  delta.usize = 9;
  auto all = chunks_of_plan({{"1.0"_v, full}, {"2.0"_v, delta}});
  REQUIRE(all.chunks.size() == 3);
  CHECK(all.chunks[0].sha256 == "aa");
  CHECK(all.chunks[2].sha256 == "cc");
  CHECK(all.size == 18);
  CHECK(all.usize == 69);
  CHECK(repository::bytes_to_download(all, 10) == 8);
  CHECK(chunks_of_plan({}).chunks.empty());
}
