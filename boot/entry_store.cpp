#include "boot/entry_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <map>
#include <random>

#include "common/file.hpp"
#include "common/log.hpp"
#include "common/pe_file.hpp"

namespace ballast::boot {
namespace {

// Which of two files of the same version is the later state when no journal says so. A
// decrement by systemd-boot or a bad mark leaves fewer tries; between a counted and an
// uncounted name the counted one wins, since keeping a trial is safe (a health check blesses
// it again) while keeping a wrongly blessed name could boot a broken kernel forever.
bool later_state(const BootEntry& a, const BootEntry& b) {
  if (a.has_counter != b.has_counter) return a.has_counter;
  if (!a.has_counter) return false;
  if (a.tries_left != b.tries_left) return a.tries_left < b.tries_left;
  return a.tries_done > b.tries_done;
}

Result<std::optional<std::pair<std::string, std::string>>> read_journal(const std::string& path) {
  auto text = read_file(path, 4096);
  if (!text) {
    if (text.error().sys_errno == ENOENT) return std::optional<std::pair<std::string, std::string>>();
    return tl::unexpected(text.error());
  }
  auto nl = text->find('\n');
  auto nl2 = nl == std::string::npos ? nl : text->find('\n', nl + 1);
  if (nl2 == std::string::npos) return std::optional<std::pair<std::string, std::string>>();  // torn: ignore
  return std::optional(std::pair(text->substr(0, nl), text->substr(nl + 1, nl2 - nl - 1)));
}

uint64_t round_up(uint64_t n, uint64_t block) { return block ? (n + block - 1) / block * block : n; }

// Free bytes on the file system of `esp` (whole blocks an unprivileged writer may use) and its block size.
Result<std::pair<uint64_t, uint64_t>> esp_free_space(const std::string& esp) {
  struct statvfs sv {};
  if (::statvfs(esp.c_str(), &sv) != 0) return fail_errno("boot.esp", errno, "cannot inspect the ESP at " + esp);
  uint64_t block = sv.f_frsize ? sv.f_frsize : sv.f_bsize;
  return std::pair<uint64_t, uint64_t>(static_cast<uint64_t>(sv.f_bavail) * block, block);
}

// An ENOSPC from any write to the ESP (mkdir, create, write, rename) is boot.esp-full, with the
// free space as it is now; whatever the write made is the caller's to remove.
Status on_esp(Status st, const std::string& esp) {
  if (st || st.error().sys_errno != ENOSPC) return st;
  Error e = std::move(st.error());
  e.code = "boot.esp-full";
  auto free_bytes = esp_free_space(esp);
  e.message = "the ESP at " + esp + " ran out of space" +
              (free_bytes ? " (" + std::to_string(free_bytes->first) + " bytes free)" : "") + ": " + e.message;
  return tl::unexpected(std::move(e));
}

Status copy_file_atomic(const std::string& src, const std::string& dir, const std::string& name) {
  UniqueFd in(::open(src.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in) return fail_errno("boot.read-kernel", errno, "cannot open " + src);
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string tmp = path_join(dir, "." + name + ".tmp" + std::to_string(rng() % 1000000000));
  UniqueFd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!out) return fail_errno("boot.write", errno, "cannot create " + tmp);
  auto failed = [&](int err, const std::string& what) {
    ::unlink(tmp.c_str());
    return fail_errno("boot.write", err, what);
  };
  std::string buf(1 << 20, '\0');
  for (;;) {
    ssize_t n = ::read(in.get(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return failed(errno, "cannot read " + src);
    if (n == 0) break;
    for (ssize_t off = 0; off < n;) {
      ssize_t w = ::write(out.get(), buf.data() + off, static_cast<size_t>(n - off));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return failed(errno, "cannot write " + tmp);
      off += w;
    }
  }
  if (::fsync(out.get()) != 0) return failed(errno, "cannot sync " + tmp);
  out.reset();
  if (::rename(tmp.c_str(), path_join(dir, name).c_str()) != 0) return failed(errno, "cannot rename " + tmp);
  return fsync_dir(dir);
}

Result<uint64_t> regular_file_size(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return fail_errno("boot.read-kernel", errno, "cannot read " + path);
  if (!S_ISREG(st.st_mode)) return fail("boot.read-kernel", path + " is not a regular file");
  return static_cast<uint64_t>(st.st_size);
}

// Whole blocks per file, plus one each for the entry, a directory and the rename journal (FAT
// metadata: a directory cluster, long-name slots). `step` says what needs it ("installing 2.0").
Status check_esp_space(const std::string& esp, const std::string& step,
                       const std::vector<std::pair<std::string, uint64_t>>& files) {
  auto [free_bytes, block] = BALLAST_TRY(esp_free_space(esp));
  uint64_t need = 3 * block;
  std::string sizes;
  for (const auto& [what, size] : files) {
    need += round_up(size, block);
    sizes += (sizes.empty() ? "" : ", ") + what + " " + std::to_string(size);
  }
  if (need > free_bytes)
    return fail("boot.esp-full", step + " needs " + std::to_string(need) + " bytes on the ESP (" + sizes + "), but " +
                                     esp + " has " + std::to_string(free_bytes) + " bytes free");
  return ok();
}

bool has_line_break(const std::string& s) { return s.find_first_of("\n\r", 0) != std::string::npos || s.find('\0') != std::string::npos; }

}  // namespace

std::optional<std::string> cmdline_version(std::string_view cmdline) {
  constexpr std::string_view key = "ballast.version=";
  std::optional<std::string> found;
  size_t i = 0;
  while (i < cmdline.size()) {
    while (i < cmdline.size() && (cmdline[i] == ' ' || cmdline[i] == '\n' || cmdline[i] == '\t')) ++i;
    size_t end = i;
    while (end < cmdline.size() && cmdline[end] != ' ' && cmdline[end] != '\n' && cmdline[end] != '\t') ++end;
    std::string_view word = cmdline.substr(i, end - i);
    // The kernel lets a later word override an earlier one; do the same.
    if (word.substr(0, key.size()) == key) found = std::string(word.substr(key.size()));
    i = end;
  }
  return found;
}

EntryStore::EntryStore(BootPaths paths) : paths_(std::move(paths)) {}

std::string EntryStore::entries_dir() const { return path_join(paths_.esp_path, "loader/entries"); }
std::string EntryStore::uki_dir() const { return path_join(paths_.esp_path, "EFI/Linux"); }
std::string EntryStore::dir_of(const std::string& name) const {
  auto parsed = parse_entry_name(name);
  return parsed && parsed->uki ? uki_dir() : entries_dir();
}
std::string EntryStore::journal_path() const { return path_join(paths_.esp_path, "ballast/rename-pending"); }

Result<EntryStore::Scanned> EntryStore::scan() {
  Scanned out;
  auto journal = BALLAST_TRY(read_journal(journal_path()));
  std::map<std::string, std::vector<BootEntry>> by_version;  // by the version's text
  for (const bool uki : {false, true}) {
    const std::string dir = uki ? uki_dir() : entries_dir();
    if (!path_exists(dir)) continue;
    for (const auto& name : BALLAST_TRY(with_context(list_dir(dir), "listing boot entries"))) {
      if (name.rfind(".", 0) == 0 && name.find(".tmp") != std::string::npos &&
          name.rfind(std::string(".") + std::string(kEntryPrefix), 0) == 0) {
        out.temp_files.push_back(path_join(dir, name));
        continue;
      }
      auto parsed = parse_entry_name(name);
      if (!parsed || parsed->uki != uki) continue;
      auto stem_version = version_of_stem(parsed->stem);
      if (!stem_version) continue;
      auto version = Version::parse(*stem_version);
      if (!version) {
        log::warning("ignoring boot entry " + name + ": " + version.error().describe());
        continue;
      }
      BootEntry e;
      e.version = *version;
      e.id = name;
      e.uki = uki;
      e.has_counter = parsed->counter.has_value();
      e.tries_left = parsed->counter ? parsed->counter->left : 0;
      e.tries_done = parsed->counter ? parsed->counter->done : 0;
      e.state = state_of(parsed->counter);
      if (uki) {
        auto cmdline = pe::read_section_of_file(path_join(dir, name), ".cmdline");
        if (!cmdline || !*cmdline) {
          log::warning("ignoring boot entry " + name + ": not a unified kernel image with a .cmdline section");
          continue;
        }
        e.title = "ballast " + e.version.str();
        e.options = **cmdline;
        e.linux_path = "/EFI/Linux/" + name;
      } else {
        auto text = read_file(path_join(dir, name), 1 << 20);
        if (!text) return with_context(Result<Scanned>(tl::unexpected(text.error())), "reading boot entry " + name);
        auto content = parse_entry(*text);
        if (!content) {
          log::warning("ignoring malformed boot entry " + name + ": " + content.error().describe());
          continue;
        }
        e.title = content->title;
        e.options = content->options;
        e.linux_path = content->linux_path;
        e.initrd_path = content->initrd_paths.empty() ? "" : content->initrd_paths.front();
      }
      by_version[e.version.str()].push_back(std::move(e));
    }
  }
  for (auto& [version, files] : by_version) {
    size_t win = 0;
    for (size_t i = 1; i < files.size(); ++i) {
      bool journal_says = journal && files[i].id == journal->second;
      bool journal_against = journal && files[win].id == journal->second;
      if (journal_says || (!journal_against && later_state(files[i], files[win]))) win = i;
    }
    for (size_t i = 0; i < files.size(); ++i)
      if (i != win) out.losers.push_back(path_join(dir_of(files[i].id), files[i].id));
    out.entries.push_back(std::move(files[win]));
  }
  sort_boot_order(out.entries);
  return out;
}

Result<std::vector<BootEntry>> EntryStore::load() {
  auto s = BALLAST_TRY(scan());
  return std::move(s.entries);
}

Status EntryStore::recover() {
  auto journal = BALLAST_TRY(read_journal(journal_path()));
  const std::string dir = journal ? dir_of(journal->first) : entries_dir();
  if (journal && path_exists(path_join(dir, journal->first)) && !path_exists(path_join(dir, journal->second))) {
    // The rename itself never happened: do it now.
    if (::rename(path_join(dir, journal->first).c_str(), path_join(dir, journal->second).c_str()) != 0)
      return fail_errno("boot.write", errno, "cannot finish renaming " + journal->first);
    log::notice("finished an interrupted rename of boot entry " + journal->first + " to " + journal->second);
  }
  auto s = BALLAST_TRY(scan());
  for (const auto& path : s.losers) {
    log::notice("removing boot entry " + path + " left by an interrupted rename");
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
      return fail_errno("boot.write", errno, "cannot remove duplicate entry " + path);
  }
  for (const auto& path : s.temp_files) ::unlink(path.c_str());
  if (!s.losers.empty() || journal)
    for (const auto& d : {entries_dir(), uki_dir()})
      if (path_exists(d)) BALLAST_CHECK(fsync_dir(d));
  if (path_exists(journal_path())) BALLAST_CHECK(remove_if_exists(journal_path()));
  return ok();
}

Result<BootEntry> EntryStore::find(const Version& version) {
  auto all = BALLAST_TRY(load());
  for (auto& e : all)
    if (e.version == version) return std::move(e);
  return fail("boot.no-entry", "no boot entry for version " + version.str());
}

Status EntryStore::install_uki(const KernelSpec& spec, std::optional<BootCounter> counter) {
  uint64_t size = BALLAST_TRY(regular_file_size(spec.uki_path));
  // The booted version is read back from the command line, sealed in the UKI: it must name this one.
  auto cmdline = BALLAST_TRY(with_context(pe::read_section_of_file(spec.uki_path, ".cmdline"), "reading the UKI"));
  if (!cmdline) return fail("boot.bad-uki", spec.uki_path + " has no .cmdline section");
  auto named = cmdline_version(*cmdline);
  if (named != spec.version.str())
    return fail("boot.bad-uki", "the command line of " + spec.uki_path + " says ballast.version=" + named.value_or("(nothing)") +
                                    ", not " + spec.version.str());
  BALLAST_CHECK(recover());
  if (find(spec.version)) return fail("boot.exists", "a boot entry for version " + spec.version.str() + " exists already");
  BALLAST_CHECK(check_esp_space(paths_.esp_path, "installing " + spec.version.str(), {{"UKI", size}}));
  BALLAST_CHECK(on_esp(make_dirs(uki_dir()), paths_.esp_path));
  // Written under a temp name and renamed: the loader never sees a partial UKI.
  return on_esp(copy_file_atomic(spec.uki_path, uki_dir(), format_entry_name(stem_of_version(spec.version.str()), counter, true)),
                paths_.esp_path);
}

Status EntryStore::install(const KernelSpec& spec, std::optional<BootCounter> counter) {
  if (!spec.uki_path.empty()) return install_uki(spec, counter);
  if (spec.kernel_path.empty()) return fail("boot.usage", "no kernel given");
  if (has_line_break(spec.options) || has_line_break(spec.title))
    return fail("boot.usage", "title and options must be a single line");
  uint64_t kernel_size = BALLAST_TRY(regular_file_size(spec.kernel_path));
  uint64_t initrd_size = spec.initrd_path.empty() ? 0 : BALLAST_TRY(regular_file_size(spec.initrd_path));
  BALLAST_CHECK(recover());
  if (find(spec.version)) return fail("boot.exists", "a boot entry for version " + spec.version.str() + " exists already");

  EntryFile entry;
  entry.title = spec.title.empty() ? "ballast " + spec.version.str() : spec.title;
  entry.version = spec.version.str();
  entry.sort_key = std::string(kSortKey);
  entry.machine_id = paths_.machine_id;
  std::string rel_dir = "/ballast/" + escape_version(spec.version.str());
  entry.linux_path = rel_dir + "/vmlinuz";
  if (!spec.initrd_path.empty()) entry.initrd_paths.push_back(rel_dir + "/initrd.img");
  // The booted version is read back from the kernel command line, so every entry names its own.
  auto named = cmdline_version(spec.options);
  if (named && *named != spec.version.str())
    return fail("boot.usage", "options say ballast.version=" + *named + " for version " + spec.version.str());
  entry.options =
      named ? spec.options : (spec.options.empty() ? "" : spec.options + " ") + "ballast.version=" + spec.version.str();
  std::string text = format_entry(entry);

  BALLAST_CHECK(check_esp_space(paths_.esp_path, "installing " + spec.version.str(),
                                {{"kernel", kernel_size}, {"initrd", initrd_size}}));

  std::string kdir = path_join(paths_.esp_path, "ballast/" + escape_version(spec.version.str()));
  bool created = !path_exists(kdir);
  auto undo = [&](Status st) -> Status {
    if (created) (void)remove_tree(kdir);
    return on_esp(std::move(st), paths_.esp_path);
  };
  if (auto st = make_dirs(kdir); !st) return undo(st);
  if (auto st = copy_file_atomic(spec.kernel_path, kdir, "vmlinuz"); !st) return undo(st);
  if (!spec.initrd_path.empty())
    if (auto st = copy_file_atomic(spec.initrd_path, kdir, "initrd.img"); !st) return undo(st);
  if (auto st = make_dirs(entries_dir()); !st) return undo(st);
  std::string name = format_entry_name(stem_of_version(spec.version.str()), counter);
  if (auto st = write_file_atomic(path_join(entries_dir(), name), text); !st) return undo(st);
  return ok();
}

Result<bool> EntryStore::install_loader(std::string_view loader) {
  std::vector<std::string> stale;
  for (const char* rel : kSystemdBootPaths) {
    const std::string path = path_join(paths_.esp_path, rel);
    auto current = read_file(path, loader.size() + 1);
    if (!current && current.error().sys_errno != ENOENT && current.error().code != "io.too-large")
      return tl::unexpected(current.error());
    if (!current || *current != loader) stale.push_back(path);
  }
  if (stale.empty()) return false;
  // The old loader stays until the rename, so each path needs room for a whole new copy.
  std::vector<std::pair<std::string, uint64_t>> files;
  for (const auto& path : stale) files.emplace_back(path, loader.size());
  BALLAST_CHECK(check_esp_space(paths_.esp_path, "updating the boot loader", files));
  for (const auto& path : stale) {
    const std::string dir = path.substr(0, path.rfind('/'));
    BALLAST_CHECK(on_esp(make_dirs(dir), paths_.esp_path));
    // write_file_atomic: temp file beside it, fsync, rename, fsync the directory. On FAT the
    // rename is the last step and replaces the old loader in one directory update.
    BALLAST_CHECK(on_esp(with_context(write_file_atomic(path, loader), "updating the boot loader"), paths_.esp_path));
  }
  return true;
}

Status EntryStore::mark_bad_before(const Version& version) {
  auto all = BALLAST_TRY(load());
  bool found = false;
  for (const auto& e : all) {
    if (e.version != version) continue;
    found = true;
    if (e.state == EntryState::bad)
      return fail("boot.entry-bad", "version " + version.str() + " is marked bad; bless it first");
  }
  if (!found) return fail("boot.no-entry", "no boot entry for version " + version.str());
  for (const auto& e : all) {
    if (e.version == version) break;
    if (e.state != EntryState::bad) BALLAST_CHECK(set_counter(e.version, BootCounter{0, e.tries_done}));
  }
  return ok();
}

Status EntryStore::set_counter(const Version& version, std::optional<BootCounter> counter) {
  auto e = BALLAST_TRY(find(version));
  std::string to = format_entry_name(stem_of_version(version.str()), counter, e.uki);
  if (to == e.id) return ok();
  std::string dir = e.uki ? uki_dir() : entries_dir();
  BALLAST_CHECK(make_dirs(path_join(paths_.esp_path, "ballast")));
  // FAT renames are not atomic: a crash can leave both names. The journal says which one won.
  BALLAST_CHECK(write_file_atomic(journal_path(), e.id + "\n" + to + "\n"));
  if (::rename(path_join(dir, e.id).c_str(), path_join(dir, to).c_str()) != 0)
    return fail_errno("boot.write", errno, "cannot rename boot entry " + e.id + " to " + to);
  BALLAST_CHECK(fsync_dir(dir));
  return remove_if_exists(journal_path());
}

Status EntryStore::remove(const Version& version) {
  BALLAST_CHECK(recover());
  auto e = BALLAST_TRY(find(version));
  const std::string dir = e.uki ? uki_dir() : entries_dir();
  if (::unlink(path_join(dir, e.id).c_str()) != 0) return fail_errno("boot.write", errno, "cannot remove boot entry " + e.id);
  BALLAST_CHECK(fsync_dir(dir));
  return with_context(remove_tree(path_join(paths_.esp_path, "ballast/" + escape_version(version.str()))),
                      "removing kernel files of " + version.str());
}

}  // namespace ballast::boot
