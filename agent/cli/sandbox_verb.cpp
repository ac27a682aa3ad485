// `ballast sandbox reboot`: "reboots" a sandbox host (a directory ESP, a directory of EFI
// variables, a command-line file) by following systemd-boot's rules, so the whole update and
// rollback cycle runs without a VM. Never touches a real machine's boot: it refuses the defaults.
#include <iostream>

#include "agent/cli/host_options.hpp"
#include "agent/cli/verb.hpp"
#include "boot/boot_simulator.hpp"

namespace ballast::cli {
namespace {

int reboot(const GlobalOptions& g) {
  if (g.esp_path == "/efi" || g.efivars_path == "/sys/firmware/efi/efivars" || g.cmdline_path == "/proc/cmdline") {
    std::fprintf(stderr, "ballast: sandbox reboot needs --esp-path, --efivars-path and --cmdline-path of a sandbox host\n");
    return 2;
  }
  auto cfg = g.load_config();
  if (!cfg) return report_error(cfg.error());
  boot::BootSimulator sim(boot_paths(g, *cfg));
  auto booted = sim.reboot();
  if (!booted) return report_error(booted.error());
  if (g.json) print_json({{"entry", booted->entry_id}, {"version", booted->version}});
  else std::cout << "booted " << booted->version << " (entry " << booted->entry_id << ")\n";
  return 0;
}

void setup(VerbContext& ctx) {
  auto* sandbox = ctx.app.add_subcommand("sandbox", "Tools for sandbox hosts (tests and the demo)");
  sandbox->require_subcommand(1);
  auto* r = sandbox->add_subcommand(
      "reboot", "Simulate a reboot with systemd-boot's rules: pick the entry, count a try down, set the\n"
                "loader's EFI variables, and write the booted entry's options to --cmdline-path");
  r->callback([&ctx] { ctx.action = [&g = ctx.global] { return reboot(g); }; });
}

BALLAST_REGISTER_VERB(950, setup);

}  // namespace
}  // namespace ballast::cli
