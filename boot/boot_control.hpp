// The boot manager's public interface, in the manner of update_engine's BootControlInterface:
// what booted, which entries exist in which state, install a trial entry, bless, mark bad,
// prefer a version (operator rollback), remove. One backend per boot loader, and a fake.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "boot/bls.hpp"
#include "common/result.hpp"
#include "common/version.hpp"

namespace ballast::boot {

enum class EntryState {
  good,           // no counter: blessed (or never counted)
  indeterminate,  // counted with tries left: on trial
  bad,            // counted with no tries left (+0): the loader skips it while anything else exists
};

const char* to_string(EntryState s);

struct BootEntry {
  Version version;
  std::string id;  // file name, counter included ("ballast-2.0+3-0.conf")
  EntryState state = EntryState::good;
  int tries_left = 0;
  int tries_done = 0;
  bool has_counter = false;
  bool uki = false;  // Type #2: a unified kernel image in $ESP/EFI/Linux/, options read from its .cmdline
  std::string title, options, linux_path, initrd_path;
};

struct KernelSpec {
  Version version;
  std::string kernel_path;  // source files, copied to $ESP/ballast/<version>/
  std::string initrd_path;  // empty: no initrd
  std::string options;
  std::string title;        // empty: "ballast <version>"
  int tries = 0;            // 0: BootPaths::default_tries
  std::string uki_path = {};  // a unified kernel image: copied byte for byte to $ESP/EFI/Linux/ as a
                            // Type #2 entry; kernel_path, initrd_path, options and title are then unused
};

// What update_loader() did.
enum class LoaderUpdate {
  updated,      // at least one of the loader's paths on the ESP got the new bytes
  unchanged,    // both paths already held these bytes
  not_shipped,  // the release carries no loader (built without a Secure Boot key): nothing to do
};

const char* to_string(LoaderUpdate u);

// Where systemd-boot lives on the ESP: its own path and the removable-media fallback the firmware
// starts when no boot option names a loader.
inline constexpr const char* kSystemdBootPaths[] = {"EFI/systemd/systemd-bootx64.efi", "EFI/BOOT/BOOTX64.EFI"};

struct BootPaths {
  std::string esp_path = "/efi";
  std::string efivars_path = "/sys/firmware/efi/efivars";
  std::string cmdline_path = "/proc/cmdline";
  int default_tries = 3;       // config boot.tries
  std::string machine_id;      // written as `machine-id` when set
};

class BootControl {
 public:
  virtual ~BootControl() = default;
  // `ballast.version=` on the kernel command line, cross-checked with LoaderEntrySelected.
  virtual Result<Version> booted_version() = 0;
  // Ballast's entries in the order the loader tries them.
  virtual Result<std::vector<BootEntry>> entries() = 0;
  // Copies kernel and initrd, then writes the entry with its tries; nothing is left half-written.
  virtual Status install(const KernelSpec& spec) = 0;
  virtual Status bless(const Version& version) = 0;
  virtual Status mark_bad(const Version& version) = 0;
  // Operator rollback: `version` boots next and by default. Entries the loader would try
  // before it are marked bad (they are what is being rolled back from); a bad `version` is
  // refused (bless it first). The order alone decides, so bootctl, the menu and GRUB agree:
  // ballast never writes LoaderEntryDefault and drops one naming its entries.
  virtual Status prefer(const Version& version) = 0;
  // Boots `version` once on the next boot only.
  virtual Status set_oneshot(const Version& version) = 0;
  virtual Status remove(const Version& version) = 0;
  // Replaces the boot loader on the ESP with `loader` (the booted release's signed copy): each
  // path whose bytes differ gets a temp file, fsync, rename. Refuses ("boot.loader-unsigned") a
  // loader without an Authenticode signature while Secure Boot is enabled; nothing is written then.
  virtual Result<LoaderUpdate> update_loader(const std::string& loader) = 0;
};

std::unique_ptr<BootControl> make_systemd_boot_control(const BootPaths& paths);
std::unique_ptr<BootControl> make_grub_control(const BootPaths& paths);

// --- the loader's rules, shared by the backends, the fake and the boot simulator ---

EntryState state_of(const std::optional<BootCounter>& counter);

// systemd-boot's order for entries that all carry sort-key "ballast": exhausted (+0) entries
// last, then newest version first, then file name (newest first), then more tries left, then
// fewer tries done. Stable.
void sort_boot_order(std::vector<BootEntry>& entries);

// The entry the loader boots: the one-shot id when it matches, else the default id when it
// matches, else the first in boot order. Entries must be in boot order. nullopt when empty.
std::optional<size_t> select_boot_entry(const std::vector<BootEntry>& ordered, const std::string& oneshot_id,
                                        const std::string& default_id);

// In memory, for the daemon's tests; simulate_reboot() applies the loader's rules.
class FakeBootControl final : public BootControl {
 public:
  explicit FakeBootControl(int default_tries = 3) : default_tries_(default_tries) {}

  Result<Version> booted_version() override;
  Result<std::vector<BootEntry>> entries() override;
  Status install(const KernelSpec& spec) override;
  Status bless(const Version& version) override;
  Status mark_bad(const Version& version) override;
  Status prefer(const Version& version) override;
  Status set_oneshot(const Version& version) override;
  Status remove(const Version& version) override;
  // Keeps the loader's bytes in memory; the Secure Boot check is the real backends' business.
  Result<LoaderUpdate> update_loader(const std::string& loader) override;
  const std::optional<std::string>& installed_loader() const { return loader_; }

  // Boots like systemd-boot: picks an entry, counts the try down, and records it as booted.
  // Returns the booted version.
  Result<Version> simulate_reboot();
  // Sets what booted_version() reports (e.g. the first boot of a host).
  void set_booted(const Version& version) { booted_ = version; }
  // Free bytes on the fake ESP; install() needs the kernel+initrd sizes given via add_file_size.
  void set_esp_free(uint64_t bytes) { esp_free_ = bytes; }
  void set_file_size(const std::string& path, uint64_t bytes);
  // The next call of any mutating operation fails with this error (then the fake works again).
  void fail_next(Error e) { next_failure_ = std::move(e); }
  const std::string& oneshot_id() const { return oneshot_; }

 private:
  Status take_failure();
  BootEntry* find(const Version& version);
  void rename(BootEntry& e, std::optional<BootCounter> c);

  int default_tries_;
  std::vector<BootEntry> entries_;
  std::optional<Version> booted_;
  std::string oneshot_;
  std::optional<uint64_t> esp_free_;
  std::vector<std::pair<std::string, uint64_t>> sizes_;
  std::optional<Error> next_failure_;
  std::optional<std::string> loader_;
};

}  // namespace ballast::boot
