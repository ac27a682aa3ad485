// The operator's pin: one version in <state>/pin, honoured by the planner whether or not the
// daemon runs (`ballast pin` writes it directly).
#pragma once

#include <optional>
#include <string>

#include "common/result.hpp"
#include "common/version.hpp"

namespace ballast::agent {

// nullopt when nothing is pinned; "pin.corrupt" when the file does not hold a valid version.
Result<std::optional<Version>> read_pin(const std::string& state_dir);
// Written atomically.
Status write_pin(const std::string& state_dir, const Version& version);
// Succeeds when nothing was pinned.
Status remove_pin(const std::string& state_dir);

}  // namespace ballast::agent
