#include "agent/dbus/names.hpp"

#include <cstdlib>

namespace ballast::agent::dbus {

std::string error_name_for_code(const std::string& code) {
  std::string name = kErrorPrefix;
  for (char c : code) {
    bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.';
    name += plain ? c : '_';
  }
  return name;
}

std::string code_for_error_name(const std::string& name) {
  if (name == kAccessDenied) return "agent.access-denied";
  const std::string prefix = kErrorPrefix;
  if (name.compare(0, prefix.size(), prefix) == 0) {
    std::string code = name.substr(prefix.size());
    for (char& c : code)
      if (c == '_') c = '-';
    return code;
  }
  auto dot = name.rfind('.');
  return "dbus." + (dot == std::string::npos ? name : name.substr(dot + 1));
}

std::string default_bus_address() {
  const char* env = std::getenv("BALLAST_BUS_ADDRESS");
  return env ? env : "";
}

Result<sd_bus*> connect_bus(const std::string& address) {
  sd_bus* bus = nullptr;
  int r;
  if (address.empty()) {
    r = sd_bus_open_system(&bus);
    if (r < 0) return fail_errno("dbus.connect", -r, "cannot connect to the system bus");
    return bus;
  }
  r = sd_bus_new(&bus);
  if (r < 0) return fail_errno("dbus.connect", -r, "sd_bus_new");
  if ((r = sd_bus_set_address(bus, address.c_str())) < 0 || (r = sd_bus_set_bus_client(bus, 1)) < 0 ||
      (r = sd_bus_start(bus)) < 0) {
    sd_bus_unref(bus);
    return fail_errno("dbus.connect", -r, "cannot connect to the bus at " + address);
  }
  return bus;
}

}  // namespace ballast::agent::dbus
