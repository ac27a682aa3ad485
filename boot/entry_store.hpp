// Ballast's entries and kernel files on $BOOT (the ESP for systemd-boot, /boot for GRUB):
// scanning, crash-safe renames of the boot counter, kernel copies with a free-space check.
// Shared by the loader backends; not part of the public interface.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "boot/boot_control.hpp"

namespace ballast::boot {

class EntryStore {
 public:
  explicit EntryStore(BootPaths paths);

  // Ballast's entries in boot order. Duplicates of one version (a rename cut short) are
  // resolved the way recover() would, without writing anything.
  Result<std::vector<BootEntry>> load();
  // Finishes or rolls forward a rename cut short, removes duplicates and stale temp files.
  Status recover();
  Result<BootEntry> find(const Version& version);
  // Copies kernel (+ initrd) to $BOOT/ballast/<v>/, then writes the entry named with `counter`.
  Status install(const KernelSpec& spec, std::optional<BootCounter> counter);
  // Renames the entry of `version` to carry `counter` (nullopt: none), journaled.
  Status set_counter(const Version& version, std::optional<BootCounter> counter);
  // Operator rollback, the same for every loader: `version` must exist and not be bad; every
  // entry the loader would try before it is marked bad, so the order alone boots `version`.
  Status mark_bad_before(const Version& version);
  // Writes the boot loader's bytes to each of kSystemdBootPaths that holds other bytes (temp file,
  // fsync, rename, fsync dir): a crash leaves each path with the old or the new loader, whole.
  // True when anything was written.
  Result<bool> install_loader(std::string_view loader);
  // Removes the entry (first) and then its kernel files.
  Status remove(const Version& version);

  std::string entries_dir() const;
  std::string uki_dir() const;  // $ESP/EFI/Linux: Type #2 entries
  std::string journal_path() const;
  const BootPaths& paths() const { return paths_; }

 private:
  struct Scanned {
    std::vector<BootEntry> entries;       // one per version, the winner of any duplicates
    std::vector<std::string> losers;      // paths of duplicates to delete
    std::vector<std::string> temp_files;  // paths of leftovers of atomic writes
  };
  Result<Scanned> scan();
  // The directory an entry file of this name lives in: entries_dir() or uki_dir().
  std::string dir_of(const std::string& name) const;
  Status install_uki(const KernelSpec& spec, std::optional<BootCounter> counter);

  BootPaths paths_;
};

// Reads `ballast.version=` from a kernel command line.
std::optional<std::string> cmdline_version(std::string_view cmdline);

}  // namespace ballast::boot
