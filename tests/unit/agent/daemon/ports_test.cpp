#include "agent/daemon/ports.hpp"

#include <catch2/catch.hpp>

#include "boot/boot_control.hpp"
#include "common/file.hpp"
#include "tests/version_literal.hpp"

using namespace ballast;
using namespace ballast::agent;

namespace {
using namespace ballast::version_literals;

struct TempDir {
  std::string path = make_temp_dir("ballast-ports").value();
  ~TempDir() { (void)remove_tree(path); }
};

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
  REQUIRE(make_dirs(host.deployment("1.0") + "/usr/lib/ballast/health.d/required"));
  check_script(host.deployment("1.0") + "/usr/lib/ballast/health.d/required/10-userland", 0);
  REQUIRE(make_dirs(host.deployment("2.0") + "/usr/lib/ballast/health.d/required"));
  check_script(host.deployment("2.0") + "/usr/lib/ballast/health.d/required/10-userland", 0);
  check_script(host.deployment("2.0") + "/usr/lib/ballast/health.d/required/50-app", 1);
  // The admin's check in 2.0's own /etc.
  REQUIRE(make_dirs(host.deployment("2.0") + "/etc/ballast/health.d/wanted"));
  check_script(host.deployment("2.0") + "/etc/ballast/health.d/wanted/90-local", 0);

  CHECK(deployment_health_dirs(host, "2.0") ==
        std::vector<std::string>{host.deployment("2.0") + "/usr/lib/ballast/health.d",
                                 host.deployment("2.0") + "/etc/ballast/health.d"});
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
