// The host's Rebooter: announces a pending reboot the way Debian and kured expect
// (/run/reboot-required and /run/reboot-required.pkgs) and reboots through logind on D-Bus,
// falling back to `systemctl reboot` where logind is not there.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "agent/update_flow.hpp"
#include "boot/boot_simulator.hpp"

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

// A sandbox host's Rebooter (`ballast daemon --simulate-reboot`): the host is directories and a
// loop-backed Btrfs inside the machine running the agent, which must never go down. reboot()
// boots the sandbox instead: the boot simulator applies systemd-boot's rules to the directory
// ESP and EFI variables (the trial entry's try is counted, an exhausted one falls back), /run's
// reboot-required files go as a tmpfs /run would, and on_rebooted ends the agent's process the
// way a real reboot does; whoever runs the sandbox starts the agent again on the new "boot".
class SimulatedRebooter final : public Rebooter {
 public:
  SimulatedRebooter(boot::BootPaths paths, RebooterOptions options, std::function<void()> on_rebooted)
      : paths_(std::move(paths)), announcer_(std::move(options)), on_rebooted_(std::move(on_rebooted)) {}

  Status announce(const std::string& version) override { return announcer_.announce(version); }
  // The simulator's error (e.g. nothing to boot) leaves the agent running: on_rebooted is not called.
  Status reboot() override;
  // What the last reboot() booted.
  const std::optional<boot::SimulatedBoot>& last_boot() const { return last_; }

 private:
  boot::BootPaths paths_;
  SystemRebooter announcer_;
  std::function<void()> on_rebooted_;
  std::optional<boot::SimulatedBoot> last_;
};

}  // namespace ballast::agent::reboot
