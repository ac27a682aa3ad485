// What the host runs, has staged and can roll back to, derived from the layout and the boot
// entries (nothing cached): `ballast status`. The JSON follows bootc's `status --format=json`
// shape (apiVersion, kind, metadata, spec, status.{booted,staged,rollback}) so controllers that
// parse bootc hosts parse ballast hosts too.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "boot/boot_control.hpp"
#include "common/result.hpp"
#include "snapshot/host_layout.hpp"

namespace ballast::host {

struct DeploymentStatus {
  Version version;
  bool slot = false;                     // @ballast/slots/<v> present
  bool deployment = false;               // @ballast/deploy/<v> present
  std::optional<boot::BootEntry> entry;  // its boot entry, when there is one
};

struct HostStatus {
  std::optional<DeploymentStatus> booted, staged, rollback;
  std::vector<DeploymentStatus> all;     // every version known to the layout or the ESP, newest first
  std::string booted_error;              // why the booted version is unknown, if it is
};

// `booted` is what BootControl::booted_version() said (nullopt when unknown).
Result<HostStatus> read_host_status(const snapshot::HostLayout& host, boot::BootControl& boot,
                                    const std::optional<Version>& booted);

nlohmann::json status_to_json(const HostStatus& s);
std::string status_to_text(const HostStatus& s);

}  // namespace ballast::host
