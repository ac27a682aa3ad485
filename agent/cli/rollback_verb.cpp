// `ballast rollback [--reboot]`: asks the running agent to make the previous good deployment the
// default (and reboot into it). Mutating: needs the daemon, and root or the admin group.
#include <iostream>

#include "agent/cli/verb.hpp"
#include "agent/cli/cli_agent.hpp"

namespace ballast::cli {
namespace {

struct RollbackArgs {
  bool reboot = false;
  std::string bus_address;
};

int rollback(const GlobalOptions& g, const RollbackArgs& a) {
  auto client = connect_agent(a.bus_address);
  if (!client) return report_error(daemon_required(client.error(), "rollback"));
  if (auto st = (*client)->rollback(a.reboot); !st) return report_error(daemon_required(st.error(), "rollback"));
  auto s = (*client)->status();
  if (!s) return report_error(s.error());
  if (g.json) print_json(agent::to_json(*s));
  else std::cout << (a.reboot ? "rolling back: rebooting into the previous version (under fleet_lock once the lock is granted)\n"
                              : "rolled back: the previous version boots next\n");
  return 0;
}

void setup(VerbContext& ctx) {
  static RollbackArgs args;
  auto* cmd = ctx.app.add_subcommand(
      "rollback", "Ask the running agent to boot the previous good version next (and reboot with --reboot)");
  cmd->add_flag("--reboot", args.reboot, "Reboot into it now (under reboot.strategy fleet_lock once the lock is granted)");
  add_bus_address_option(cmd, args.bus_address);
  cmd->callback([&ctx] { ctx.action = [&g = ctx.global] { return rollback(g, args); }; });
}

BALLAST_REGISTER_VERB(320, setup);

}  // namespace
}  // namespace ballast::cli
