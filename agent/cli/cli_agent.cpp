#include "agent/cli/verb.hpp"
#include "agent/cli/cli_agent.hpp"
#include "agent/dbus/names.hpp"

namespace ballast::cli {

void add_bus_address_option(CLI::App* cmd, std::string& address) {
  address = agent::dbus::default_bus_address();
  cmd->add_option("--bus-address", address,
                  "D-Bus address of the agent's bus (default $BALLAST_BUS_ADDRESS, else the system bus)");
}

Result<std::unique_ptr<agent::dbus::Client>> connect_agent(const std::string& address) {
  return agent::dbus::Client::connect(address);
}

Error daemon_required(const Error& e, const std::string& verb) {
  if (!agent::dbus::is_not_running(e)) return e;
  Error out = e;
  out.context.push_back("'ballast " + verb + "' needs the running agent (systemctl start ballast)");
  return out;
}

}  // namespace ballast::cli
