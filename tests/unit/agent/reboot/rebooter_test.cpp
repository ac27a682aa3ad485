#include "agent/reboot/rebooter.hpp"

#include <catch2/catch.hpp>

#include "common/file.hpp"
#include "tests/version_literal.hpp"
#include "tests/temp_dir.hpp"

using namespace ballast;
using ballast::testing::TempDir;
using namespace ballast::agent::reboot;

namespace {
using namespace ballast::version_literals;

RebooterOptions options(const std::string& run_dir, std::string bus = "", std::vector<std::string> fallback = {"false"}) {
  RebooterOptions o;
  o.run_dir = run_dir;
  o.bus_address = std::move(bus);
  o.fallback_argv = std::move(fallback);
  return o;
}

}  // namespace

TEST_CASE("announce writes /run/reboot-required and its package list for kured, and withdraw removes both") {
  TempDir dir;
  SystemRebooter r(options(dir.path));
  REQUIRE(r.announce("2026.11.2"));
  auto flag = read_file(dir.path + "/reboot-required");
  auto pkgs = read_file(dir.path + "/reboot-required.pkgs");
  REQUIRE(flag);
  REQUIRE(pkgs);
  CHECK(*flag == "*** System restart required ***\n");
  CHECK(*pkgs == "ballast=2026.11.2\n");
  REQUIRE(r.announce("2026.11.3"));
  CHECK(read_file(dir.path + "/reboot-required.pkgs").value() == "ballast=2026.11.3\n");
  // Written atomically: nothing but the two files is left in the directory.
  CHECK(list_dir(dir.path).value() == std::vector<std::string>{"reboot-required", "reboot-required.pkgs"});
  REQUIRE(r.withdraw());
  CHECK(list_dir(dir.path).value().empty());
  REQUIRE(r.withdraw());
}

TEST_CASE("announce refuses a version that would break the file format and writes nothing") {
  TempDir dir;
  SystemRebooter r(options(dir.path));
  for (std::string v : {"", "1.0\nsomething-else"}) {
    auto st = r.announce(v);
    REQUIRE_FALSE(st);
    CHECK(st.error().code == "reboot.bad-version");
  }
  CHECK(list_dir(dir.path).value().empty());
}

TEST_CASE("announce into a missing directory fails clearly") {
  SystemRebooter r(options("/nonexistent/ballast-run"));
  CHECK_FALSE(r.announce("1.0"));
}

TEST_CASE("without logind on the bus the fallback command reboots, and when it fails too the error names both") {
  TempDir dir;
  std::string no_bus = "unix:path=" + dir.path + "/no-such-bus";
  SECTION("fallback succeeds") {
    SystemRebooter r(options(dir.path, no_bus, {"touch", dir.path + "/fallback-ran"}));
    REQUIRE(r.reboot());
    CHECK(path_exists(dir.path + "/fallback-ran"));
  }
  SECTION("both fail") {
    SystemRebooter r(options(dir.path, no_bus, {"false"}));
    auto st = r.reboot();
    REQUIRE_FALSE(st);
    CHECK(st.error().code == "reboot.failed");
    CHECK(st.error().message.find("logind") != std::string::npos);
    CHECK(st.error().message.find("false") != std::string::npos);
  }
}

namespace {
// A sandbox's boot side: a directory ESP, efivars and cmdline file, 1.0 installed and blessed.
struct SandboxBoot {
  TempDir dir;
  ballast::boot::BootPaths paths;
  std::unique_ptr<ballast::boot::BootControl> control;
  SandboxBoot() {
    paths.esp_path = dir.path + "/esp";
    paths.efivars_path = dir.path + "/efivars";
    paths.cmdline_path = dir.path + "/cmdline";
    REQUIRE(make_dirs(paths.esp_path));
    REQUIRE(make_dirs(paths.efivars_path));
    REQUIRE(make_dirs(dir.path + "/run"));
    control = ballast::boot::make_systemd_boot_control(paths);
  }
  void install(const std::string& v, bool blessed) {
    REQUIRE(write_file_atomic(dir.path + "/vmlinuz-" + v, "kernel " + v));
    REQUIRE(control->install({make_version(v), dir.path + "/vmlinuz-" + v, "", "rootflags=subvol=@ballast/deploy/" + v + " ro", "", 0}));
    if (blessed) REQUIRE(control->bless(make_version(v)));
  }
  ballast::boot::BootEntry entry(const std::string& v) {
    auto all = control->entries();
    REQUIRE(all);
    for (const auto& e : *all)
      if (e.version.str() == v) return e;
    FAIL("no entry " << v);
    return {};
  }
};

}  // namespace

TEST_CASE("a simulated reboot boots the sandbox by systemd-boot's rules, clears /run's reboot flag and ends the agent") {
  SandboxBoot host;
  host.install("1.0", true);
  host.install("2.0", false);  // a trial entry with boot.tries (3) tries
  int ended = 0;
  SimulatedRebooter r(host.paths, options(host.dir.path + "/run"), [&] { ++ended; });
  REQUIRE(r.announce("2.0"));
  CHECK(path_exists(host.dir.path + "/run/reboot-required"));

  REQUIRE(r.reboot());
  CHECK(ended == 1);
  REQUIRE(r.last_boot());
  CHECK(r.last_boot()->version.str() == "2.0");
  CHECK(host.control->booted_version().value() == "2.0"_v);
  CHECK(host.entry("2.0").tries_left == 2);  // the try was counted down before it booted
  CHECK(list_dir(host.dir.path + "/run").value().empty());  // a reboot empties /run

  // Marked bad, the trial entry is skipped: boot counting falls back to 1.0.
  REQUIRE(host.control->mark_bad("2.0"_v));
  REQUIRE(r.reboot());
  CHECK(ended == 2);
  CHECK(r.last_boot()->version.str() == "1.0");
  CHECK(host.control->booted_version().value() == "1.0"_v);
}

TEST_CASE("a simulated reboot with nothing to boot fails and leaves the agent running") {
  SandboxBoot host;
  int ended = 0;
  SimulatedRebooter r(host.paths, options(host.dir.path + "/run"), [&] { ++ended; });
  REQUIRE(r.announce("2.0"));
  auto st = r.reboot();
  REQUIRE_FALSE(st);
  CHECK(st.error().code == "boot.no-entry");
  CHECK(ended == 0);
  CHECK_FALSE(r.last_boot());
  CHECK(path_exists(host.dir.path + "/run/reboot-required"));  // nothing rebooted: the flag stays
}
