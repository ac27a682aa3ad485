// The agent as units/ballast.service runs it: the daemon's ports wired from the configuration —
// the release source and health checks (ports.hpp), the reboot policy and logind rebooter
// (agent/reboot), the CloudEvents outbox, journal milestones and metrics (agent/report), the
// D-Bus API (agent/dbus) — then the event loop, or one run of the flow. `ballast daemon` parses
// its flags, builds the host's interfaces from the global options and calls run_service().
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "agent/api.hpp"
#include "agent/host/stage.hpp"
#include "boot/boot_control.hpp"
#include "boot/tpm.hpp"
#include "common/config.hpp"
#include "repository/release.hpp"
#include "snapshot/host_layout.hpp"

namespace ballast::agent {

// The host as the global options describe it.
struct ServiceHost {
  boot::BootControl& boot;
  boot::BootPaths boot_paths;
  snapshot::HostLayout layout;
  // The repository, trust root and HTTP settings of the configuration (ReleaseRequest::state_dir set).
  repository::ReleaseRequest request;
  std::string state_dir;
  // The agent looks at a host from outside (--sysroot): the health checks are the booted
  // deployment's, not the running system's own.
  bool outside = false;
  host::EntryType entry_type = host::EntryType::automatic;  // boot.entry_type for boot.loader
  std::string tpm_path = boot::kDefaultTpmPath;               // --tpm-path: the TPM in sysfs
};

struct ServiceOptions {
  bool once = false;             // run the flow until it rests, then return its status
  bool no_dbus = false;
  bool simulate_reboot = false;  // a sandbox host: the boot simulator instead of logind
  std::string run_dir = "/run";
  std::string bus_address;
};

// Runs until SIGTERM/SIGINT or a simulated reboot (nullopt), or with `once` returns the status
// the flow rested in. Errors of the configuration or of the set-up come back before anything runs.
Result<std::optional<AgentStatus>> run_service(const Config& config, ServiceHost host, const ServiceOptions& options);

}  // namespace ballast::agent
