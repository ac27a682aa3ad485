// The names of the agent's D-Bus API, shared by the server, the client, units/ and tests, the
// mapping between ballast Error codes and D-Bus error names, and how both ends reach the bus.
#pragma once

#include <string>

#include <systemd/sd-bus.h>

#include "common/result.hpp"

namespace ballast::agent::dbus {

inline constexpr const char* kBusName = "dev.ballast.Agent1";
inline constexpr const char* kObjectPath = "/dev/ballast/Agent";
inline constexpr const char* kInterface = "dev.ballast.Agent1";

// A mutating call from a caller that is neither root nor in the admin group.
inline constexpr const char* kAccessDenied = "dev.ballast.Error.AccessDenied";
// Every other AgentApi error is "dev.ballast.Error." + its code with '-' spelled '_' (D-Bus names
// allow no '-'); codes use '-' and never '_', so the mapping is reversible.
inline constexpr const char* kErrorPrefix = "dev.ballast.Error.";

std::string error_name_for_code(const std::string& code);
// The ballast code of a D-Bus error name: the inverse of error_name_for_code for our own names,
// "agent.access-denied" for kAccessDenied, and "dbus.<Name>" for the bus's own errors.
std::string code_for_error_name(const std::string& name);

// The address the CLI and tests reach the agent on: $BALLAST_BUS_ADDRESS, else empty (the system bus).
std::string default_bus_address();

// A connection to the bus at `address` (empty: the system bus), owned by the caller
// (sd_bus_unref); "dbus.connect" when none can be made.
Result<sd_bus*> connect_bus(const std::string& address);

}  // namespace ballast::agent::dbus
