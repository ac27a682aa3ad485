// The host's Rebooter: announces a pending reboot the way Debian and kured expect
// (/run/reboot-required and /run/reboot-required.pkgs) and reboots through logind on D-Bus,
// falling back to `systemctl reboot` where logind is not there.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "agent/update_flow.hpp"

namespace ballast::agent::reboot {

struct RebooterOptions {
  std::string run_dir = "/run";   // where the reboot-required files go
  std::string bus_address;        // empty: the system bus; else a D-Bus address ("unix:path=…")
  std::vector<std::string> fallback_argv = {"systemctl", "reboot"};
  std::chrono::milliseconds timeout{std::chrono::seconds{30}};  // for each of the two ways
};

class SystemRebooter final : public Rebooter {
 public:
  explicit SystemRebooter(RebooterOptions options = {}) : options_(std::move(options)) {}

  // Writes reboot-required.pkgs ("ballast=<version>") then the reboot-required flag kured
  // watches, each atomically, so the flag never exists without its list.
  Status announce(const std::string& version) override;
  // Removes both files (the staged update was dropped without a reboot).
  Status withdraw();
  // login1.Manager.Reboot(interactive=false); on any failure there, the fallback command. When
  // both fail: "reboot.failed" naming both reasons.
  Status reboot() override;

 private:
  Status reboot_via_logind();
  RebooterOptions options_;
};

}  // namespace ballast::agent::reboot
