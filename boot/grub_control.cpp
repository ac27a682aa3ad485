// GRUB with blscfg (Fedora, RHEL, AlmaLinux): the same BLS entries on $BOOT, whose file names
// keep ballast's record of each entry's state, while what boots is chosen in grubenv:
// `saved_entry` (the default), `next_entry` (one shot), and Fedora's boot counting
// (`boot_counter` counted down by GRUB on each boot while `boot_success` is 0; at 0 GRUB boots
// menu entry 1 instead: blscfg sorts newest first, so that is the version before the trial).
// GRUB names a BLS entry by its file name without ".conf".
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

  Result<std::string> booted_version() override {
    auto cmdline = BALLAST_TRY(read_file(store_.paths().cmdline_path, 1 << 20));
    auto v = cmdline_version(cmdline);
    if (!v) return fail("boot.unknown-booted", "no ballast.version= on " + store_.paths().cmdline_path);
    return *v;
  }

  Result<std::vector<BootEntry>> entries() override {
    auto all = BALLAST_TRY(store_.load());
    auto env = BALLAST_TRY(read_grubenv(grubenv_));
    std::vector<BootEntry> out;
    const std::string saved = env.count("saved_entry") ? env["saved_entry"] : "";
    for (auto& e : all) {
      // The trial's live count is GRUB's boot_counter, not the file name.
      if (e.has_counter && grub_id(e) == saved && env.count("boot_counter") && env["boot_success"] != "1") {
        int counter = std::atoi(env["boot_counter"].c_str());
        int left = counter < 0 ? 0 : counter;
        e.tries_done += e.tries_left - left;
        e.tries_left = left;
        e.state = left > 0 ? EntryState::indeterminate : EntryState::bad;
      }
    }
    // The default boots first; the rest in blscfg's order (newest first).
    for (auto& e : all)
      if (grub_id(e) == saved) out.push_back(e);
    for (auto& e : all)
      if (grub_id(e) != saved) out.push_back(e);
    return out;
  }

  Status install(const KernelSpec& spec) override {
    int tries = spec.tries > 0 ? spec.tries : store_.paths().default_tries;
    if (tries < 1 || tries > 99) return fail("boot.usage", "tries must be between 1 and 99");
    auto env = BALLAST_TRY(read_grubenv(grubenv_));
    BALLAST_CHECK(make_dirs(grubenv_.substr(0, grubenv_.rfind('/'))));
    BALLAST_CHECK(store_.install(spec, BootCounter{tries, 0}));
    auto e = BALLAST_TRY(store_.find(spec.version));
    env["saved_entry"] = grub_id(e);
    env["boot_counter"] = std::to_string(tries);
    env["boot_success"] = "0";
    env.erase("next_entry");
    if (auto st = write_grubenv(grubenv_, env); !st) {
      (void)store_.remove(spec.version);
      return st;
    }
    return ok();
  }

  Status bless(const std::string& version) override {
    BALLAST_CHECK(store_.recover());
    auto env = BALLAST_TRY(read_grubenv(grubenv_));
    auto before = BALLAST_TRY(store_.find(version));
    BALLAST_CHECK(store_.set_counter(version, std::nullopt));
    auto after = BALLAST_TRY(store_.find(version));
    if (env["saved_entry"] == grub_id(before)) {
      env["saved_entry"] = grub_id(after);
      env.erase("boot_counter");
      env["boot_success"] = "1";
    }
    return write_grubenv(grubenv_, env);
  }

  Status mark_bad(const std::string& version) override {
    BALLAST_CHECK(store_.recover());
    auto listed = BALLAST_TRY(entries());
    auto env = BALLAST_TRY(read_grubenv(grubenv_));
    std::optional<BootEntry> target;
    for (auto& e : listed)
      if (e.version == version) target = e;
    if (!target) return fail("boot.no-entry", "no boot entry for version " + version);
    BALLAST_CHECK(store_.set_counter(version, BootCounter{0, target->tries_done}));
    if (env["saved_entry"] == grub_id(*target) || env["next_entry"] == grub_id(*target)) {
      BALLAST_CHECK(point_default_at_newest_good(env));
      env.erase("next_entry");
    }
    return write_grubenv(grubenv_, env);
  }

  Status prefer(const std::string& version) override {
    BALLAST_CHECK(store_.recover());
    auto all = BALLAST_TRY(store_.load());
    std::optional<BootEntry> target;
    for (auto& e : all)
      if (e.version == version) target = e;
    if (!target) return fail("boot.no-entry", "no boot entry for version " + version);
    if (target->state == EntryState::bad)
      return fail("boot.entry-bad", "version " + version + " is marked bad; bless it first");
    for (const auto& e : all) {
      if (e.version == version) break;
      if (e.state != EntryState::bad) BALLAST_CHECK(store_.set_counter(e.version, BootCounter{0, e.tries_done}));
    }
    auto env = BALLAST_TRY(read_grubenv(grubenv_));
    env["saved_entry"] = grub_id(*target);
    env.erase("next_entry");
    if (target->has_counter) {
      env["boot_counter"] = std::to_string(target->tries_left);
      env["boot_success"] = "0";
    } else {
      env.erase("boot_counter");
      env["boot_success"] = "1";
    }
    return write_grubenv(grubenv_, env);
  }

  Status set_oneshot(const std::string& version) override {
    BALLAST_CHECK(store_.recover());
    auto e = BALLAST_TRY(store_.find(version));
    auto env = BALLAST_TRY(read_grubenv(grubenv_));
    env["next_entry"] = grub_id(e);
    return write_grubenv(grubenv_, env);
  }

  Status remove(const std::string& version) override {
    BALLAST_CHECK(validate_version(version));
    if (auto booted = booted_version(); booted && *booted == version)
      return fail("boot.busy", "version " + version + " is the booted one");
    auto e = BALLAST_TRY(store_.find(version));
    auto env = BALLAST_TRY(read_grubenv(grubenv_));
    BALLAST_CHECK(store_.remove(version));
    if (env["next_entry"] == grub_id(e)) env.erase("next_entry");
    if (env["saved_entry"] == grub_id(e)) BALLAST_CHECK(point_default_at_newest_good(env));
    return write_grubenv(grubenv_, env);
  }

 private:
  Status point_default_at_newest_good(GrubEnv& env) {
    auto all = BALLAST_TRY(store_.load());
    env.erase("boot_counter");
    env["boot_success"] = "1";
    for (const auto& e : all)
      if (e.state == EntryState::good) {
        env["saved_entry"] = grub_id(e);
        return ok();
      }
    env.erase("saved_entry");
    return ok();
  }

  EntryStore store_;
  std::string grubenv_;
};

}  // namespace

std::unique_ptr<BootControl> make_grub_control(const BootPaths& paths) { return std::make_unique<GrubControl>(paths); }

}  // namespace ballast::boot
