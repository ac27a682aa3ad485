#include "boot/boot_control.hpp"
#include "common/file.hpp"

namespace ballast::boot {

Status FakeBootControl::take_failure() {
  if (!next_failure_) return ok();
  Error e = std::move(*next_failure_);
  next_failure_.reset();
  return tl::unexpected(std::move(e));
}

BootEntry* FakeBootControl::find(const Version& version) {
  for (auto& e : entries_)
    if (e.version == version) return &e;
  return nullptr;
}

void FakeBootControl::rename(BootEntry& e, std::optional<BootCounter> c) {
  e.has_counter = c.has_value();
  e.tries_left = c ? c->left : 0;
  e.tries_done = c ? c->done : 0;
  e.state = state_of(c);
  e.id = format_entry_name(stem_of_version(e.version.str()), c, e.uki);
}

void FakeBootControl::set_file_size(const std::string& path, uint64_t bytes) { sizes_.emplace_back(path, bytes); }

Result<Version> FakeBootControl::booted_version() {
  if (!booted_) return fail("boot.unknown-booted", "no ballast version has booted");
  return *booted_;
}

Result<std::vector<BootEntry>> FakeBootControl::entries() {
  auto out = entries_;
  sort_boot_order(out);
  return out;
}

Status FakeBootControl::install(const KernelSpec& spec) {
  BALLAST_CHECK(take_failure());
  if (find(spec.version)) return fail("boot.exists", "an entry for version " + spec.version.str() + " exists already");
  if (esp_free_) {
    uint64_t need = 0;
    for (const auto& [p, n] : sizes_)
      if (p == spec.kernel_path || p == spec.initrd_path || p == spec.uki_path) need += n;
    if (need > *esp_free_)
      return fail("boot.esp-full", "the ESP has " + std::to_string(*esp_free_) + " bytes free; installing " +
                                       spec.version.str() + " needs " + std::to_string(need) + " bytes");
    *esp_free_ -= need;
  }
  BootEntry e;
  e.version = spec.version;
  e.uki = !spec.uki_path.empty();
  e.title = spec.title.empty() ? "ballast " + spec.version.str() : spec.title;
  e.options = (spec.options.empty() ? "" : spec.options + " ") + "ballast.version=" + spec.version.str();
  e.linux_path = "/ballast/" + escape_version(spec.version.str()) + "/vmlinuz";
  if (!spec.initrd_path.empty()) e.initrd_path = "/ballast/" + escape_version(spec.version.str()) + "/initrd.img";
  if (e.uki) {
    e.linux_path = "/EFI/Linux/" + stem_of_version(spec.version.str()) + ".efi";
    e.initrd_path.clear();
  }
  rename(e, BootCounter{spec.tries > 0 ? spec.tries : default_tries_, 0});
  entries_.push_back(std::move(e));
  return ok();
}

Status FakeBootControl::bless(const Version& version) {
  BALLAST_CHECK(take_failure());
  auto* e = find(version);
  if (!e) return fail("boot.no-entry", "no boot entry for version " + version.str());
  rename(*e, std::nullopt);
  return ok();
}

Status FakeBootControl::mark_bad(const Version& version) {
  BALLAST_CHECK(take_failure());
  auto* e = find(version);
  if (!e) return fail("boot.no-entry", "no boot entry for version " + version.str());
  rename(*e, BootCounter{0, e->tries_done});
  return ok();
}

Status FakeBootControl::prefer(const Version& version) {
  BALLAST_CHECK(take_failure());
  auto* target = find(version);
  if (!target) return fail("boot.no-entry", "no boot entry for version " + version.str());
  if (target->state == EntryState::bad)
    return fail("boot.entry-bad", "version " + version.str() + " is marked bad; bless it first");
  auto ordered = entries_;
  sort_boot_order(ordered);
  for (const auto& e : ordered) {
    if (e.version == version) break;
    auto* ahead = find(e.version);
    if (ahead->state != EntryState::bad) rename(*ahead, BootCounter{0, ahead->tries_done});
  }
  oneshot_.clear();
  return ok();
}

Status FakeBootControl::set_oneshot(const Version& version) {
  BALLAST_CHECK(take_failure());
  auto* e = find(version);
  if (!e) return fail("boot.no-entry", "no boot entry for version " + version.str());
  oneshot_ = e->id;
  return ok();
}

Status FakeBootControl::remove(const Version& version) {
  BALLAST_CHECK(take_failure());
  if (booted_ && version == *booted_) return fail("boot.busy", "version " + version.str() + " is the booted one");
  auto before = entries_.size();
  std::erase_if(entries_, [&](const BootEntry& e) { return e.version == version; });
  if (entries_.size() == before) return fail("boot.no-entry", "no boot entry for version " + version.str());
  return ok();
}

Result<LoaderUpdate> FakeBootControl::update_loader(const std::string& loader) {
  BALLAST_CHECK(take_failure());
  if (!path_exists(loader)) return LoaderUpdate::not_shipped;
  auto bytes = BALLAST_TRY(read_regular_file(loader));
  if (loader_ == bytes) return LoaderUpdate::unchanged;
  loader_ = std::move(bytes);
  return LoaderUpdate::updated;
}

Result<Version> FakeBootControl::simulate_reboot() {
  auto ordered = entries_;
  sort_boot_order(ordered);
  auto pick = select_boot_entry(ordered, oneshot_, "");
  oneshot_.clear();
  if (!pick) return fail("boot.no-entry", "nothing to boot");
  auto* e = find(ordered[*pick].version);
  if (e->has_counter && e->tries_left > 0) rename(*e, BootCounter{e->tries_left - 1, e->tries_done + 1});
  booted_ = e->version;
  return *booted_;
}

}  // namespace ballast::boot
