// The host's OS interfaces as the global options and the configuration describe them, made in
// one place for every verb.
#pragma once

#include <memory>

#include "agent/cli/verb.hpp"
#include "boot/boot_control.hpp"
#include "snapshot/host_layout.hpp"

namespace ballast::cli {

boot::BootPaths boot_paths(const GlobalOptions& g, const Config& cfg);
// The backend named by boot.loader (systemd-boot or grub).
std::unique_ptr<boot::BootControl> make_boot_control(const GlobalOptions& g, const Config& cfg);
inline snapshot::HostLayout host_layout(const GlobalOptions& g) { return snapshot::HostLayout(g.sysroot == "/" ? "" : g.sysroot); }

}  // namespace ballast::cli
