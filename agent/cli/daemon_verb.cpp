// `ballast daemon`: the agent as units/ballast.service runs it (Type=notify); the wiring is
// agent/daemon/service.hpp, this verb parses its flags and describes the host from the global
// options. On a sandbox host (--sysroot with a directory ESP and EFI variables) --simulate-reboot
// stands the boot simulator in for logind, and the health checks are those of the booted deployment.
#include <cstdio>
#include <iostream>

#include "agent/cli/cli_agent.hpp"
#include "agent/cli/host_options.hpp"
#include "agent/cli/verb.hpp"
#include "agent/daemon/service.hpp"
#include "common/file.hpp"

namespace ballast::cli {
namespace {

struct DaemonArgs {
  bool once = false;
  bool no_dbus = false;
  bool simulate_reboot = false;
  std::string run_dir = "/run";
  std::string bus_address;
};

int daemon(const GlobalOptions& g, const DaemonArgs& a) {
  if (a.simulate_reboot && !sandbox_boot_paths(g)) {
    std::fprintf(stderr, "ballast: --simulate-reboot is for sandbox hosts: give --esp-path, --efivars-path and --cmdline-path\n");
    return 2;
  }
  auto cfg = g.load_config();
  if (!cfg) return report_error(cfg.error());
  std::string root = path_exists("/etc/ballast/root.json") ? "/etc/ballast/root.json" : cfg->get_string("repository.root");
  auto boot = make_boot_control(g, *cfg);
  auto type = entry_type(*cfg);
  if (!type) return report_error(type.error());
  agent::ServiceHost host{*boot, boot_paths(g, *cfg), host_layout(g),
                          release_request(g, *cfg, cfg->get_string("repository.url"), root), g.state_dir,
                          g.sysroot != GlobalOptions().sysroot, *type, g.tpm_path};
  agent::ServiceOptions so{a.once, a.no_dbus, a.simulate_reboot, a.run_dir, a.bus_address};
  auto rested = agent::run_service(*cfg, std::move(host), so);
  if (!rested) return report_error(rested.error());
  if (!*rested) return 0;
  const agent::AgentStatus& s = **rested;
  if (g.json) {
    print_json(agent::to_json(s));
  } else {
    std::cout << "state " << s.state;
    if (!s.last_error.empty()) std::cout << " (" << s.last_error << ")";
    std::cout << "\n";
  }
  return s.state == "failed" ? 1 : 0;
}

void setup(VerbContext& ctx) {
  static DaemonArgs args;
  auto* cmd = ctx.app.add_subcommand(
      "daemon", "Run the update agent: check on a jittered timer, stage, reboot per reboot.strategy, verify\n"
                "health after the reboot, bless or roll back (what ballast.service runs)");
  cmd->add_flag("--once", args.once, "Run the update flow until it rests, print the state and exit");
  cmd->add_option("--run-dir", args.run_dir, "Where reboot-required and reboot-required.pkgs go when an update is staged (kured)")
      ->capture_default_str();
  cmd->add_flag("--no-dbus", args.no_dbus, "Do not serve the D-Bus API (a host without a bus)");
  cmd->add_flag("--simulate-reboot", args.simulate_reboot,
                "Sandbox hosts only (with --esp-path, --efivars-path, --cmdline-path): instead of rebooting the\n"
                "machine, boot the sandbox with the boot simulator (systemd-boot's rules) and exit; run the\n"
                "daemon again to go on from the new boot");
  add_bus_address_option(cmd, args.bus_address);
  cmd->callback([&ctx] { ctx.action = [&g = ctx.global] { return daemon(g, args); }; });
}

BALLAST_REGISTER_VERB(300, setup);

}  // namespace
}  // namespace ballast::cli
