// The operator's pin: one version in <state>/pin, honoured by the planner whether or not the
// daemon runs (`ballast pin` writes it directly).
#pragma once

#include <optional>
#include <string>

#include "common/result.hpp"

namespace ballast::agent {

// nullopt when nothing is pinned; "pin.corrupt" when the file does not hold a valid version.
Result<std::optional<std::string>> read_pin(const std::string& state_dir);
// "pin.bad-version" for a string that cannot be a version. Written atomically.
Status write_pin(const std::string& state_dir, const std::string& version);
// Succeeds when nothing was pinned.
Status remove_pin(const std::string& state_dir);

}  // namespace ballast::agent
