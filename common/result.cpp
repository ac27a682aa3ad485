#include "common/result.hpp"

#include <cstring>

namespace ballast {

std::string Error::describe() const {
  std::string out;
  for (auto it = context.rbegin(); it != context.rend(); ++it) {
    out += *it;
    out += ": ";
  }
  out += message;
  if (sys_errno != 0) {
    out += " (";
    out += std::strerror(sys_errno);
    out += ")";
  }
  out += " [";
  out += code;
  out += "]";
  return out;
}

}  // namespace ballast
