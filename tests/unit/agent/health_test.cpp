#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>

#include "agent/health.hpp"
#include "common/file.hpp"

using namespace ballast;
using namespace std::chrono_literals;

namespace {

struct HealthDirs {
  std::string root = *make_temp_dir("ballast-health-test");
  ~HealthDirs() { (void)remove_tree(root); }
  std::string dir(const std::string& name) const { return path_join(root, name); }
  void check(const std::string& dir_name, const std::string& rel, const std::string& script) {
    std::string path = path_join(dir(dir_name), rel);
    REQUIRE(make_dirs(path.substr(0, path.rfind('/'))));
    REQUIRE(write_file_atomic(path, "#!/bin/sh\n" + script + "\n", 0755));
  }
  agent::HealthOptions options() const {
    agent::HealthOptions o;
    o.dirs = {dir("usr"), dir("etc")};
    o.check_failed_units = false;
    o.timeout = 5s;
    return o;
  }
};

const agent::HealthCheckResult* find(const agent::HealthReport& r, const std::string& name) {
  for (const auto& c : r.checks)
    if (c.name == name) return &c;
  return nullptr;
}

}  // namespace

TEST_CASE("a failed required check makes the boot unhealthy and every failure is reported") {
  HealthDirs d;
  d.check("usr", "required/10-ok", "exit 0");
  d.check("usr", "required/20-broken", "echo 'database down' >&2; exit 3");
  d.check("usr", "required/30-also-broken", "exit 1");
  auto r = agent::run_health_checks(d.options());
  REQUIRE(r);
  CHECK_FALSE(r->healthy);
  CHECK(r->failures() == std::vector<std::string>{"required/20-broken", "required/30-also-broken"});
  CHECK(find(*r, "required/20-broken")->exit_code == 3);
  CHECK_THAT(find(*r, "required/20-broken")->output, Catch::Contains("database down"));
}

TEST_CASE("a failed wanted check is a warning, not unhealthy") {
  HealthDirs d;
  d.check("usr", "required/10-ok", "exit 0");
  d.check("usr", "wanted/10-metrics", "exit 1");
  auto r = agent::run_health_checks(d.options());
  REQUIRE(r);
  CHECK(r->healthy);
  CHECK(r->failures() == std::vector<std::string>{"wanted/10-metrics"});
  CHECK_FALSE(find(*r, "wanted/10-metrics")->required);
}

TEST_CASE("a check that outlives its timeout fails as timed out") {
  HealthDirs d;
  d.check("usr", "required/10-hangs", "sleep 30");
  auto o = d.options();
  o.timeout = 300ms;
  auto r = agent::run_health_checks(o);
  REQUIRE(r);
  CHECK_FALSE(r->healthy);
  CHECK(find(*r, "required/10-hangs")->timed_out);
}

TEST_CASE("/etc replaces a vendor check of the same name and a /dev/null symlink masks it") {
  HealthDirs d;
  d.check("usr", "required/10-strict", "exit 1");
  d.check("etc", "required/10-strict", "exit 0");
  d.check("usr", "required/20-masked", "exit 1");
  REQUIRE(make_dirs(d.dir("etc/required")));
  REQUIRE(::symlink("/dev/null", d.dir("etc/required/20-masked").c_str()) == 0);
  auto r = agent::run_health_checks(d.options());
  REQUIRE(r);
  CHECK(r->healthy);
  CHECK(r->checks.size() == 1);
  CHECK(find(*r, "required/10-strict")->path == d.dir("etc/required/10-strict"));
}

TEST_CASE("a check that is not executable fails instead of being skipped") {
  HealthDirs d;
  REQUIRE(make_dirs(d.dir("usr/required")));
  REQUIRE(write_file_atomic(d.dir("usr/required/10-not-executable"), "#!/bin/sh\nexit 0\n", 0644));
  auto r = agent::run_health_checks(d.options());
  REQUIRE(r);
  CHECK_FALSE(r->healthy);
}

TEST_CASE("failed systemd units fail the required failed-units check, naming them") {
  HealthDirs d;
  // A stand-in systemctl first on PATH: the unit test exercises the logic, not systemd.
  std::string bin = d.dir("bin");
  REQUIRE(make_dirs(bin));
  std::string old_path = std::getenv("PATH");
  ::setenv("PATH", (bin + ":" + old_path).c_str(), 1);
  auto o = d.options();
  o.check_failed_units = true;

  REQUIRE(write_file_atomic(path_join(bin, "systemctl"), "#!/bin/sh\necho 'nginx.service loaded failed failed nginx'\n", 0755));
  auto failed = agent::run_health_checks(o);
  REQUIRE(write_file_atomic(path_join(bin, "systemctl"), "#!/bin/sh\nexit 0\n", 0755));
  auto clean = agent::run_health_checks(o);
  REQUIRE(write_file_atomic(path_join(bin, "systemctl"), "#!/bin/sh\necho 'Failed to connect to bus' >&2; exit 1\n", 0755));
  auto unknown = agent::run_health_checks(o);
  ::setenv("PATH", old_path.c_str(), 1);

  REQUIRE(failed);
  CHECK_FALSE(failed->healthy);
  CHECK_THAT(find(*failed, "failed-units")->output, Catch::Contains("nginx.service"));
  REQUIRE(clean);
  CHECK(clean->healthy);
  REQUIRE(unknown);
  CHECK_FALSE(unknown->healthy);  // not knowing is not healthy
}
