// GRUB's environment block (grubenv): "# GRUB Environment Block\n", then "name=value\n" lines
// ('\\' and newline escaped with a backslash), padded with '#' to exactly 1024 bytes. GRUB
// rewrites it in place at boot, so its size never changes.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace ballast::boot {

inline constexpr size_t kGrubenvSize = 1024;

using GrubEnv = std::map<std::string, std::string>;

// Fails (boot.bad-grubenv) on a missing header, a size other than 1024, or a line without '='.
Result<GrubEnv> parse_grubenv(std::string_view block);
// Fails (boot.grubenv-full) when the variables do not fit in 1024 bytes, or on a name with '=',
// a newline or a NUL (boot.bad-grubenv).
Result<std::string> format_grubenv(const GrubEnv& env);

// A missing file reads as empty; writing replaces it atomically.
Result<GrubEnv> read_grubenv(const std::string& path);
Status write_grubenv(const std::string& path, const GrubEnv& env);

}  // namespace ballast::boot
