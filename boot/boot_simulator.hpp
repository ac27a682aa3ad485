// A stand-in for systemd-boot on a directory ESP and an efivars directory, so a sandbox host can
// "reboot": it picks the entry as systemd-boot does (LoaderEntryOneShot, then LoaderEntryDefault,
// then loader.conf `default`, then the first in order), counts a try down by renaming the entry
// before booting it, sets LoaderEntrySelected (the name before the rename) and
// LoaderBootCountPath, and writes the entry's options as the kernel command line.
#pragma once

#include <string>

#include "boot/boot_control.hpp"

namespace ballast::boot {

struct SimulatedBoot {
  std::string entry_id;  // the file name as it was when selected
  Version version;
};

class BootSimulator {
 public:
  explicit BootSimulator(BootPaths paths) : paths_(std::move(paths)) {}
  Result<SimulatedBoot> reboot();

 private:
  BootPaths paths_;
};

}  // namespace ballast::boot
