// Fakes of the update flow's ports, shared by the flow's and the daemon's unit tests.
#pragma once

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "agent/update_flow.hpp"
#include "boot/boot_control.hpp"

namespace ballast::agent::testing {

struct FakeSource : ReleaseSource {
  boot::FakeBootControl& boot;
  std::vector<std::string> offered;  // newest last
  int stages = 0;
  std::vector<ReleasePlan> staged;  // every plan stage() was given
  std::optional<Error> stage_error;
  explicit FakeSource(boot::FakeBootControl& b) : boot(b) {}
  Result<std::optional<ReleasePlan>> check(const std::vector<Version>& denylist) override {
    for (auto it = offered.rbegin(); it != offered.rend(); ++it) {
      Version version = BALLAST_TRY(Version::parse(*it));
      if (std::find(denylist.begin(), denylist.end(), version) != denylist.end()) continue;
      auto booted = boot.booted_version();
      if (booted && *booted == version) return std::optional<ReleasePlan>();
      return std::optional<ReleasePlan>(ReleasePlan{version, false, std::nullopt, 1000, "offered"});
    }
    return std::optional<ReleasePlan>();
  }
  Status stage(const ReleasePlan& r) override {
    ++stages;
    staged.push_back(r);
    if (stage_error) return tl::unexpected(*stage_error);
    boot::KernelSpec k;
    k.version = r.version;
    k.kernel_path = "/vmlinuz-" + r.version.str();
    return boot.install(k);
  }
  std::vector<std::string> loader_updates;  // versions whose loader went onto the ESP
  std::optional<Error> loader_error;
  Result<boot::LoaderUpdate> update_loader(const Version& version) override {
    if (loader_error) return tl::unexpected(*loader_error);
    loader_updates.push_back(version.str());
    return boot::LoaderUpdate::updated;
  }
};

struct FakeGate : RebootGate {
  bool open = true;
  int steady = 0;
  Result<bool> may_reboot_now() override { return open; }
  Status steady_state() override {
    ++steady;
    return ok();
  }
};

struct FakeRebooter : Rebooter {
  std::vector<std::string> announced;
  int reboots = 0;
  Status announce(const std::string& v) override {
    announced.push_back(v);
    return ok();
  }
  Status reboot() override {
    ++reboots;
    return ok();
  }
};

struct FakeHealth : HealthChecker {
  bool healthy = true;
  Result<HealthReport> run() override {
    HealthReport r;
    r.healthy = healthy;
    HealthCheckResult c;
    c.name = "required/50-app";
    c.passed = healthy;
    r.checks.push_back(c);
    return r;
  }
};

struct RecordingReporter : Reporter {
  std::vector<std::string> types;
  std::vector<nlohmann::json> data;  // each event's data, in the same order
  void report(const std::string& type, const nlohmann::json& d) override {
    types.push_back(type);
    data.push_back(d);
  }
  uint64_t dropped = 0;
  uint64_t dropped_events() const override { return dropped; }
};

}  // namespace ballast::agent::testing
