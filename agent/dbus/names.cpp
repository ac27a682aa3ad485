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

}  // namespace ballast::agent::dbus
