// The boot loader follows the booted release: the signed systemd-boot a release ships
// (images::kSignedLoaderPath) is copied onto the ESP by `ballast boot update-loader` and by the
// agent once an update is committed.
#pragma once

#include <string>

#include "boot/boot_control.hpp"
#include "snapshot/host_layout.hpp"

namespace ballast::host {

// The loader `version`'s deployment ships (it may not exist: a release built without a key).
std::string release_loader_path(const snapshot::HostLayout& host, const Version& version);

// Puts `version`'s loader onto the ESP through `boot` (only when the bytes differ; an unsigned
// one is refused under Secure Boot). `version` is the booted release: a loader must never be
// newer than what has proven to boot.
Result<boot::LoaderUpdate> update_loader(const snapshot::HostLayout& host, boot::BootControl& boot,
                                         const Version& version);

}  // namespace ballast::host
