// What the verbs that talk to the daemon share: the bus address option and the connection.
#pragma once

#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "agent/dbus/client.hpp"

namespace ballast::cli {

// Adds --bus-address (default $BALLAST_BUS_ADDRESS, else the system bus) to a verb.
void add_bus_address_option(CLI::App* cmd, std::string& address);

// Connects to the daemon's bus. A failure here or on the first call with is_not_running() means
// the daemon is not there.
Result<std::unique_ptr<agent::dbus::Client>> connect_agent(const std::string& address);

// The error of a mutating verb when the daemon is not running: says so plainly.
Error daemon_required(const Error& e, const std::string& verb);

}  // namespace ballast::cli
