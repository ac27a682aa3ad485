// Health checks after a boot: executables in <dir>/required/ and <dir>/wanted/ for each health
// directory (default /usr/lib/ballast/health.d then /etc/ballast/health.d; a later directory's
// check of the same name replaces an earlier one, a symlink to /dev/null masks it), plus failed
// systemd units as a required check. A failed required check makes the boot unhealthy, a failed
// wanted one is a warning; every check runs and every failure is reported, not just the first.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.hpp"

namespace ballast::agent {

struct HealthCheckResult {
  std::string name;       // "required/10-userland", or "failed-units"
  std::string path;
  bool required = true;
  bool passed = false;
  bool timed_out = false;
  int exit_code = 0;
  std::string output;     // last lines of stdout+stderr
  std::string code;       // a built-in check's error code when it failed ("health.measured-boot-mismatch")
  std::chrono::milliseconds duration{0};
};

struct HealthReport {
  bool healthy = true;    // no required check failed
  std::vector<HealthCheckResult> checks;
  std::vector<std::string> failures() const;  // names of every failed check, "name (code)" when it has one
};

struct HealthOptions {
  std::vector<std::string> dirs = {"/usr/lib/ballast/health.d", "/etc/ballast/health.d"};
  std::chrono::milliseconds timeout{60000};
  bool check_failed_units = true;
};

Result<HealthReport> run_health_checks(const HealthOptions& opts);

nlohmann::json health_to_json(const HealthReport& r);

}  // namespace ballast::agent
