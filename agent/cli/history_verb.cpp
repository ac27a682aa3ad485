// `ballast history [--json]`: the finished updates, oldest first, from the running agent or, when it
// is not running, from <state>/flow.json.
#include <iostream>

#include "agent/cli/verb.hpp"
#include "agent/cli/cli_agent.hpp"
#include "agent/dbus/view.hpp"

namespace ballast::cli {
namespace {

struct HistoryArgs {
  std::string bus_address;
};

int history(const GlobalOptions& g, const HistoryArgs& a) {
  Result<nlohmann::json> h = fail("dbus.connect", "not asked");
  if (auto client = connect_agent(a.bus_address)) h = (*client)->history();
  else h = tl::unexpected<Error>(client.error());
  if (!h && agent::dbus::is_not_running(h.error())) h = agent::dbus::read_offline_history(g.state_dir);
  if (!h) return report_error(h.error());
  if (g.json) print_json(*h);
  else std::cout << agent::dbus::history_to_text(*h);
  return 0;
}

void setup(VerbContext& ctx) {
  static HistoryArgs args;
  auto* cmd = ctx.app.add_subcommand(
      "history", "Show the finished updates, oldest first (read-only; works without the running agent)");
  add_bus_address_option(cmd, args.bus_address);
  cmd->callback([&ctx] { ctx.action = [&g = ctx.global] { return history(g, args); }; });
}

BALLAST_REGISTER_VERB(330, setup);

}  // namespace
}  // namespace ballast::cli
