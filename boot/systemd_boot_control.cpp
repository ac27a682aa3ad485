// systemd-boot: boot counting lives in the entry file names (Automatic Boot Assessment), the
// order comes from sort-key + version, and EFI variables carry one-shot and default choices.
#include <fnmatch.h>
#include <strings.h>

#include "boot/boot_control.hpp"
#include "boot/efivars.hpp"
#include "boot/entry_store.hpp"
#include "common/file.hpp"
#include "common/pe_file.hpp"

namespace ballast::boot {
namespace {

// Strips ".conf" (".efi" for a UKI) and a "+LEFT[-DONE]" counter from an entry id as the loader reports it.
std::optional<std::string> version_of_entry_id(const std::string& id) {
  std::string name = id;
  auto ends_with = [&](const char* suffix, size_t n) { return name.size() >= n && strcasecmp(name.c_str() + name.size() - n, suffix) == 0; };
  if (ends_with(".efi", 4)) name = name.substr(0, name.size() - 4) + ".efi";  // the loader may report ".EFI"
  else if (!ends_with(".conf", 5)) name += ".conf";
  auto parsed = parse_entry_name(name);
  if (!parsed) return std::nullopt;
  std::string stem = parsed->stem;
  if (stem.size() <= kEntryPrefix.size() || strncasecmp(stem.c_str(), kEntryPrefix.data(), kEntryPrefix.size()) != 0)
    return std::nullopt;
  // The loader may have folded the case of the prefix; the escapes are lower case already.
  return version_of_stem(std::string(kEntryPrefix) + stem.substr(kEntryPrefix.size()));
}

class SystemdBootControl final : public BootControl {
 public:
  explicit SystemdBootControl(const BootPaths& paths) : store_(paths), efi_(make_efivarfs(paths.efivars_path)) {}

  Result<Version> booted_version() override {
    auto cmdline = read_file(store_.paths().cmdline_path, 1 << 20);
    std::optional<std::string> from_cmdline;
    if (cmdline) from_cmdline = cmdline_version(*cmdline);
    else if (cmdline.error().sys_errno != ENOENT) return tl::unexpected(cmdline.error());
    auto selected = BALLAST_TRY(efi_->read_string("LoaderEntrySelected"));
    std::optional<std::string> from_loader;
    if (selected) from_loader = version_of_entry_id(*selected);
    if (from_cmdline && from_loader && strcasecmp(from_cmdline->c_str(), from_loader->c_str()) != 0)
      return fail("boot.booted-mismatch", "the kernel command line says ballast.version=" + *from_cmdline +
                                              " but the loader booted entry " + *selected);
    if (from_cmdline) return with_context(Version::parse(*from_cmdline), "ballast.version= on the kernel command line");
    if (from_loader) return with_context(Version::parse(*from_loader), "the entry LoaderEntrySelected names");
    return fail("boot.unknown-booted", "no ballast.version= on " + store_.paths().cmdline_path +
                                           " and LoaderEntrySelected names no ballast entry");
  }

  Result<std::vector<BootEntry>> entries() override { return store_.load(); }

  Status install(const KernelSpec& spec) override {
    int tries = spec.tries > 0 ? spec.tries : store_.paths().default_tries;
    if (tries < 1 || tries > 99) return fail("boot.usage", "tries must be between 1 and 99");
    BALLAST_CHECK(store_.install(spec, BootCounter{tries, 0}));
    // A default (loader.conf or LoaderEntryDefault) naming a ballast entry would outrank the
    // order that puts the trial first; once it names a counted entry the loader boots that one
    // even when exhausted. The order alone decides between ballast's entries.
    BALLAST_CHECK(drop_loader_conf_default());
    return drop_variable_if_ballast("LoaderEntryDefault", "");
  }

  Status bless(const Version& version) override {
    BALLAST_CHECK(store_.recover());
    return store_.set_counter(version, std::nullopt);
  }

  Status mark_bad(const Version& version) override {
    BALLAST_CHECK(store_.recover());
    auto e = BALLAST_TRY(store_.find(version));
    BALLAST_CHECK(store_.set_counter(version, BootCounter{0, e.tries_done}));
    BALLAST_CHECK(drop_variable_if_ballast("LoaderEntryDefault", version.str()));
    return drop_variable_if_ballast("LoaderEntryOneShot", version.str());
  }

  Status prefer(const Version& version) override {
    BALLAST_CHECK(store_.recover());
    BALLAST_CHECK(store_.mark_bad_before(version));
    BALLAST_CHECK(drop_loader_conf_default());
    BALLAST_CHECK(drop_variable_if_ballast("LoaderEntryOneShot", ""));
    return drop_variable_if_ballast("LoaderEntryDefault", "");
  }

  Status set_oneshot(const Version& version) override {
    BALLAST_CHECK(store_.recover());
    auto e = BALLAST_TRY(store_.find(version));
    return efi_->write_string("LoaderEntryOneShot", e.id);
  }

  Status remove(const Version& version) override {
    if (auto booted = booted_version(); booted && *booted == version)
      return fail("boot.busy", "version " + version.str() + " is the booted one");
    BALLAST_CHECK(store_.remove(version));
    BALLAST_CHECK(drop_variable_if_ballast("LoaderEntryOneShot", version.str()));
    return drop_variable_if_ballast("LoaderEntryDefault", version.str());
  }

  Result<LoaderUpdate> update_loader(const std::string& loader) override {
    if (!path_exists(loader)) return LoaderUpdate::not_shipped;
    auto bytes = BALLAST_TRY(read_regular_file(loader));
    // Only the firmware can verify the signature against its db; what we can tell is whether there
    // is one. An unsigned loader under Secure Boot would leave the machine unable to boot at all.
    const bool is_signed = BALLAST_TRY(with_context(pe::has_authenticode_signature(bytes), "reading the loader " + loader));
    if (!is_signed && BALLAST_TRY(secure_boot_enabled(*efi_)))
      return fail("boot.loader-unsigned", loader + " has no Authenticode signature and Secure Boot is enabled: the "
                                              "firmware would refuse it, so the loader on the ESP stays as it is");
    return BALLAST_TRY(store_.install_loader(bytes)) ? LoaderUpdate::updated : LoaderUpdate::unchanged;
  }

 private:
  // Deletes the variable when it names a ballast entry (of `only_version`, when given).
  Status drop_variable_if_ballast(const std::string& name, const std::string& only_version) {
    auto value = efi_->read_string(name);
    if (!value || !*value) return ok();  // no EFI variables here: nothing can name an entry
    auto v = version_of_entry_id(**value);
    if (!v || (!only_version.empty() && strcasecmp(v->c_str(), only_version.c_str()) != 0)) return ok();
    return efi_->remove(name);
  }

  // loader.conf's `default` is a glob over entry ids; drop it when it matches one of ours.
  Status drop_loader_conf_default() {
    auto all = BALLAST_TRY(store_.load());
    std::string path = path_join(store_.paths().esp_path, "loader/loader.conf");
    auto text = read_file(path, 1 << 20);
    if (!text) return ok();
    std::string out;
    bool changed = false;
    size_t i = 0;
    while (i < text->size()) {
      size_t nl = text->find('\n', i);
      std::string line = text->substr(i, nl == std::string::npos ? std::string::npos : nl - i + 1);
      i = nl == std::string::npos ? text->size() : nl + 1;
      std::string_view l = line;
      while (!l.empty() && (l.front() == ' ' || l.front() == '\t')) l.remove_prefix(1);
      if (l.substr(0, 7) == "default" && l.size() > 7 && (l[7] == ' ' || l[7] == '\t')) {
        std::string_view value = l.substr(8);
        while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
        std::string pattern(value);
        while (!pattern.empty() && (pattern.back() == '\n' || pattern.back() == '\r' || pattern.back() == ' '))
          pattern.pop_back();
        bool names_ours = false;
        // Loaders differ on whether an id keeps its counter and ".conf"; try every form.
        for (const auto& e : all) {
          std::string stem = stem_of_version(e.version.str());
          for (const std::string& id : {e.id, stem + (e.uki ? ".efi" : ".conf"), stem})
            names_ours = names_ours || ::fnmatch(pattern.c_str(), id.c_str(), FNM_CASEFOLD) == 0;
        }
        if (names_ours) {
          changed = true;
          continue;
        }
      }
      out += line;
    }
    if (!changed) return ok();
    return with_context(write_file_atomic(path, out), "removing a default that names ballast entries");
  }

  EntryStore store_;
  std::unique_ptr<EfiVariables> efi_;
};

}  // namespace

std::unique_ptr<BootControl> make_systemd_boot_control(const BootPaths& paths) {
  return std::make_unique<SystemdBootControl>(paths);
}

}  // namespace ballast::boot
