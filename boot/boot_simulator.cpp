#include "boot/boot_simulator.hpp"

#include <fnmatch.h>
#include <unistd.h>

#include "boot/efivars.hpp"
#include "common/file.hpp"
#include "common/pe_file.hpp"

namespace ballast::boot {

Result<SimulatedBoot> BootSimulator::reboot() {
  std::vector<BootEntry> all;
  for (const bool uki : {false, true}) {
    const std::string dir = path_join(paths_.esp_path, uki ? "EFI/Linux" : "loader/entries");
    if (!path_exists(dir)) continue;
    for (const auto& name : BALLAST_TRY(list_dir(dir))) {
      auto parsed = parse_entry_name(name);
      if (!parsed || parsed->uki != uki || name.front() == '.') continue;
      BootEntry e;
      e.id = name;
      e.uki = uki;
      std::string version_text;
      if (uki) {
        // Like systemd-stub: the command line is the UKI's own .cmdline, the version its os-release's.
        auto cmdline = pe::read_section_of_file(path_join(dir, name), ".cmdline");
        auto stem_version = version_of_stem(parsed->stem);
        if (!cmdline || !*cmdline || !stem_version) continue;  // the loader skips what it cannot use
        version_text = *stem_version;
        e.options = **cmdline;
      } else {
        auto text = BALLAST_TRY(read_file(path_join(dir, name)));
        auto content = parse_entry(text);
        if (!content) continue;  // the loader skips what it cannot parse
        version_text = content->version;
        e.options = content->options;
      }
      // The sandbox's ESP holds ballast's entries only; one without a valid version is not ours.
      auto version = Version::parse(version_text);
      if (!version) continue;
      e.version = *version;
      e.has_counter = parsed->counter.has_value();
      e.tries_left = parsed->counter ? parsed->counter->left : 0;
      e.tries_done = parsed->counter ? parsed->counter->done : 0;
      e.state = state_of(parsed->counter);
      all.push_back(std::move(e));
    }
  }
  sort_boot_order(all);
  if (all.empty()) return fail("boot.no-entry", "no boot entries on " + paths_.esp_path);

  auto efi = make_efivarfs(paths_.efivars_path);
  auto oneshot = BALLAST_TRY(efi->read_string("LoaderEntryOneShot")).value_or("");
  BALLAST_CHECK(efi->remove("LoaderEntryOneShot"));
  auto def = BALLAST_TRY(efi->read_string("LoaderEntryDefault")).value_or("");
  if (def.empty()) {
    if (auto conf = read_file(path_join(paths_.esp_path, "loader/loader.conf"))) {
      size_t pos = 0;
      while (pos < conf->size()) {
        size_t nl = conf->find('\n', pos);
        std::string line = conf->substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
        pos = nl == std::string::npos ? conf->size() : nl + 1;
        if (line.rfind("default ", 0) == 0) def = line.substr(8);
      }
    }
  }
  size_t pick = BALLAST_TRY([&]() -> Result<size_t> {
    // One-shot and default are globs over ids, with case folded, like systemd-boot's.
    if (!oneshot.empty())
      for (size_t i = 0; i < all.size(); ++i)
        if (::fnmatch(oneshot.c_str(), all[i].id.c_str(), FNM_CASEFOLD) == 0) return i;
    if (!def.empty())
      for (size_t i = 0; i < all.size(); ++i)
        if (::fnmatch(def.c_str(), all[i].id.c_str(), FNM_CASEFOLD) == 0) return i;
    return size_t{0};
  }());

  const BootEntry& e = all[pick];
  const std::string dir = path_join(paths_.esp_path, e.uki ? "EFI/Linux" : "loader/entries");
  std::string current = e.id;
  if (e.has_counter && e.tries_left > 0) {
    auto stem = BALLAST_TRY(parse_entry_name(e.id)).stem;
    current = format_entry_name(stem, BootCounter{e.tries_left - 1, e.tries_done + 1}, e.uki);
    if (::rename(path_join(dir, e.id).c_str(), path_join(dir, current).c_str()) != 0)
      return fail_errno("boot.write", errno, "cannot count down " + e.id);
  }
  BALLAST_CHECK(efi->write_string("LoaderEntrySelected", e.id));
  if (e.has_counter)
    BALLAST_CHECK(efi->write_string("LoaderBootCountPath", (e.uki ? "\\EFI\\Linux\\" : "\\loader\\entries\\") + current));
  else BALLAST_CHECK(efi->remove("LoaderBootCountPath"));
  BALLAST_CHECK(write_file_atomic(paths_.cmdline_path, e.options + "\n"));
  return SimulatedBoot{e.id, e.version};
}

}  // namespace ballast::boot
