// The host's OS interfaces as the global options and the configuration describe them, made in
// one place for every verb.
#pragma once

#include <memory>

#include "agent/cli/verb.hpp"
#include "agent/host/stage.hpp"
#include "boot/boot_control.hpp"
#include "repository/release.hpp"
#include "snapshot/host_layout.hpp"

namespace ballast::cli {

boot::BootPaths boot_paths(const GlobalOptions& g, const Config& cfg);
// True when --esp-path, --efivars-path and --cmdline-path all name a sandbox's own files rather
// than the machine's: what a simulated boot may write to.
bool sandbox_boot_paths(const GlobalOptions& g);
// The backend named by boot.loader (systemd-boot or grub).
std::unique_ptr<boot::BootControl> make_boot_control(const GlobalOptions& g, const Config& cfg);

// boot.entry_type for the configured loader: GRUB reads no UKIs, so auto means type1 there and
// uki is refused ("config.entry-type").
Result<host::EntryType> entry_type(const Config& cfg);
// A release request with the [repository] and [update] settings of the configuration filled in.
repository::ReleaseRequest release_request(const GlobalOptions& g, const Config& cfg, std::string repo_url,
                                           std::string root_json);
inline snapshot::HostLayout host_layout(const GlobalOptions& g) { return snapshot::HostLayout(g.sysroot == "/" ? "" : g.sysroot); }

}  // namespace ballast::cli
