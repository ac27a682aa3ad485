// GRUB with blscfg (Fedora, RHEL, AlmaLinux). The BLS entries on $BOOT are the same as for
// systemd-boot and their file names stay ballast's record of each entry's state; GRUB itself
// never renames files, so what it boots is steered through grubenv:
//   saved_entry   the entry systemd-boot would pick: the first in the same order
//   boot_counter  Fedora's boot counting for a counted saved_entry: GRUB counts it down on each
//                 boot while boot_success is 0 and, once it is 0, boots menu entry 1 instead
//                 (blscfg sorts newest first, so that is the version before the trial)
//   next_entry    one shot, cleared by GRUB when used
// Before every change the count GRUB kept is folded back into the file name, and after it
// grubenv is derived again from the entries. GRUB names an entry by its file name minus ".conf".
#include <algorithm>

#include "boot/boot_control.hpp"
#include "boot/entry_store.hpp"
#include "boot/grubenv.hpp"
#include "common/file.hpp"

namespace ballast::boot {
namespace {

std::string grub_id(const BootEntry& e) { return e.id.substr(0, e.id.size() - 5); }

class GrubControl final : public BootControl {
 public:
  explicit GrubControl(const BootPaths& paths) : store_(paths) {
    std::string grub2 = path_join(paths.esp_path, "grub2");
    grubenv_ = path_join(path_exists(grub2) ? grub2 : path_join(paths.esp_path, "grub"), "grubenv");
  }

  Result<Version> booted_version() override {
    auto cmdline = BALLAST_TRY(read_file(store_.paths().cmdline_path, 1 << 20));
    auto v = cmdline_version(cmdline);
    if (!v) return fail("boot.unknown-booted", "no ballast.version= on " + store_.paths().cmdline_path);
    return with_context(Version::parse(*v), "ballast.version= on the kernel command line");
  }

  Result<std::vector<BootEntry>> entries() override {
    auto env = BALLAST_TRY(read_grubenv(grubenv_));
    auto all = BALLAST_TRY(store_.load());
    for (auto& e : all) apply_live_count(env, e);
    sort_boot_order(all);
    return all;
  }

  Status install(const KernelSpec& spec) override {
    int tries = spec.tries > 0 ? spec.tries : store_.paths().default_tries;
    if (tries < 1 || tries > 99) return fail("boot.usage", "tries must be between 1 and 99");
    BALLAST_CHECK(make_dirs(grubenv_.substr(0, grubenv_.rfind('/'))));
    auto env = BALLAST_TRY(fold());
    BALLAST_CHECK(store_.install(spec, BootCounter{tries, 0}));
    if (auto st = sync(env); !st) {
      (void)store_.remove(spec.version);
      return st;
    }
    return ok();
  }

  Status bless(const Version& version) override {
    auto env = BALLAST_TRY(fold());
    BALLAST_CHECK(store_.set_counter(version, std::nullopt));
    return sync(env);
  }

  Status mark_bad(const Version& version) override {
    auto env = BALLAST_TRY(fold());
    auto e = BALLAST_TRY(store_.find(version));
    BALLAST_CHECK(store_.set_counter(version, BootCounter{0, e.tries_done}));
    if (env["next_entry"] == grub_id(e)) env.erase("next_entry");
    return sync(env);
  }

  Status prefer(const Version& version) override {
    auto env = BALLAST_TRY(fold());
    BALLAST_CHECK(store_.mark_bad_before(version));
    env.erase("next_entry");
    return sync(env);
  }

  Status set_oneshot(const Version& version) override {
    auto env = BALLAST_TRY(fold());
    auto e = BALLAST_TRY(store_.find(version));
    env["next_entry"] = grub_id(e);
    return sync(env);
  }

  Status remove(const Version& version) override {
    if (auto booted = booted_version(); booted && *booted == version)
      return fail("boot.busy", "version " + version.str() + " is the booted one");
    auto env = BALLAST_TRY(fold());
    auto e = BALLAST_TRY(store_.find(version));
    BALLAST_CHECK(store_.remove(version));
    if (env["next_entry"] == grub_id(e)) env.erase("next_entry");
    return sync(env);
  }

  // The loader here is GRUB (and shim), installed and updated by the distribution's packages.
  Result<LoaderUpdate> update_loader(const std::string& loader) override {
    if (!path_exists(loader)) return LoaderUpdate::not_shipped;
    return fail("boot.unsupported", "boot.loader is grub: ballast updates systemd-boot only, not " + loader);
  }

 private:
  // GRUB's count of the saved entry, in place of the count in its file name.
  static void apply_live_count(GrubEnv& env, BootEntry& e) {
    if (!e.has_counter || !env.count("saved_entry") || env["saved_entry"] != grub_id(e) || !env.count("boot_counter"))
      return;
    int counter = std::atoi(env["boot_counter"].c_str());
    int left = std::clamp(counter, 0, e.tries_left);
    e.tries_done += e.tries_left - left;
    e.tries_left = left;
    e.state = left > 0 ? EntryState::indeterminate : EntryState::bad;
  }

  // Repairs the store and writes GRUB's count into the saved entry's file name.
  Result<GrubEnv> fold() {
    BALLAST_CHECK(store_.recover());
    auto env = BALLAST_TRY(read_grubenv(grubenv_));
    for (auto e : BALLAST_TRY(store_.load())) {
      BootEntry live = e;
      apply_live_count(env, live);
      if (live.tries_left != e.tries_left || live.tries_done != e.tries_done)
        BALLAST_CHECK(store_.set_counter(e.version, BootCounter{live.tries_left, live.tries_done}));
    }
    return env;
  }

  // Points saved_entry (and the boot counting) at what boots first now.
  Status sync(GrubEnv env) {
    auto all = BALLAST_TRY(store_.load());
    env.erase("boot_counter");
    if (all.empty()) {
      env.erase("saved_entry");
    } else {
      const auto& first = all.front();
      env["saved_entry"] = grub_id(first);
      if (first.has_counter && first.tries_left > 0) {
        env["boot_counter"] = std::to_string(first.tries_left);
        // insert_or_assign of a std::string: g++ 12 warns falsely (-Wrestrict) on `= "0"`.
        env.insert_or_assign("boot_success", std::string(1, '0'));
      }
    }
    return write_grubenv(grubenv_, env);
  }

  EntryStore store_;
  std::string grubenv_;
};

}  // namespace

std::unique_ptr<BootControl> make_grub_control(const BootPaths& paths) { return std::make_unique<GrubControl>(paths); }

}  // namespace ballast::boot
