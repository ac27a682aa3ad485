// Version ordering as the UAPI Version Format Specification defines it: the order systemd-boot
// uses for entries with a sort-key and `systemd-analyze compare-versions` prints. Written from
// the specification's rules; tests/integration/boot checks it against systemd-analyze.
#pragma once

#include <string_view>

namespace ballast::boot {

// <0 when a is older than b, 0 when equal, >0 when a is newer.
int compare_versions(std::string_view a, std::string_view b);

}  // namespace ballast::boot
