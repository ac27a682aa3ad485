#include "images/builder.hpp"

#include <fcntl.h>
#include <linux/magic.h>
#include <openssl/sha.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <sstream>

#include "common/config.hpp"
#include "common/file.hpp"
#include "common/log.hpp"
#include "common/process.hpp"
#include "common/tree.hpp"
#include "snapshot/subvolume.hpp"

namespace ballast::images {

namespace {

std::string parent_of(const std::string& p) {
  auto slash = p.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : p.substr(0, slash);
}

std::string base_of(const std::string& p) { return p.substr(p.find_last_of('/') + 1); }

Status write_in(const std::string& root, const std::string& rel, std::string_view content, mode_t mode,
                uid_t uid = 0, gid_t gid = 0) {
  auto rootfd = BALLAST_TRY(open_dir(root));
  std::string dir = parent_of(rel[0] == '/' ? rel.substr(1) : rel);
  std::string name = base_of(rel);
  if (dir != "." && dir != "/") BALLAST_CHECK(make_dirs(path_join(root, dir)));
  auto dirfd = BALLAST_TRY(open_beneath(rootfd.get(), dir == "/" ? "." : dir, O_RDONLY | O_DIRECTORY));
  BALLAST_CHECK(with_context(write_file_atomic_at(dirfd.get(), name, content, mode), rel));
  if (::fchownat(dirfd.get(), name.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW) != 0)
    return fail_errno("image.chown", errno, "cannot set owner of " + rel);
  return ok();
}

Status symlink_in(const std::string& root, const std::string& rel, const std::string& target) {
  std::string path = path_join(root, rel);
  BALLAST_CHECK(make_dirs(parent_of(path)));
  (void)remove_if_exists(path);
  if (::symlink(target.c_str(), path.c_str()) != 0) return fail_errno("image.symlink", errno, "cannot create " + rel);
  return ok();
}

Status busybox_base(const BaseSpec& base, const std::string& root, const std::string& name) {
  for (const char* d : {"usr/bin", "usr/lib", "etc", "proc", "sys", "dev", "run", "var", "efi", "home", "mnt"})
    BALLAST_CHECK(make_dirs(path_join(root, d)));
  for (auto [d, mode] : {std::pair{"tmp", 01777}, std::pair{"root", 0700}}) {
    if (::mkdir(path_join(root, d).c_str(), static_cast<mode_t>(mode)) != 0)
      return fail_errno("image.mkdir", errno, std::string("cannot create /") + d);
    ::chmod(path_join(root, d).c_str(), static_cast<mode_t>(mode));
  }
  for (auto [link, target] : {std::pair{"bin", "usr/bin"}, std::pair{"sbin", "usr/bin"}, std::pair{"lib", "usr/lib"},
                              std::pair{"lib64", "usr/lib"}, std::pair{"usr/sbin", "bin"}})
    BALLAST_CHECK(symlink_in(root, link, target));
  auto binary = BALLAST_TRY(with_context(read_file(base.busybox, 16 << 20), "reading the busybox binary (apt-get install busybox-static)"));
  BALLAST_CHECK(write_in(root, "/usr/bin/busybox", binary, 0755));
  auto list = BALLAST_TRY(run_checked({base.busybox, "--list"}));
  std::istringstream applets(list.out);
  std::string applet;
  std::vector<std::string> names;
  while (std::getline(applets, applet))
    if (!applet.empty() && applet != "busybox" && applet.find('/') == std::string::npos) names.push_back(applet);
  std::sort(names.begin(), names.end());
  for (const auto& a : names) BALLAST_CHECK(symlink_in(root, "usr/bin/" + a, "busybox"));
  BALLAST_CHECK(write_in(root, "/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n", 0644));
  BALLAST_CHECK(write_in(root, "/etc/group", "root:x:0:\n", 0644));
  BALLAST_CHECK(write_in(root, "/etc/shadow", "root:*:0:0:99999:7:::\n", 0640));
  BALLAST_CHECK(write_in(root, "/etc/hostname", name + "\n", 0644));
  return ok();
}

std::string sha256_hex(std::string_view data) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), md);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : md) {
    out += hex[c >> 4];
    out += hex[c & 15];
  }
  return out;
}

Status extract_tarball(const std::string& tarball, const std::string& root) {
  return with_context(run_checked({"tar", "--extract", "--file", tarball, "--directory", root, "--numeric-owner",
                                   "--preserve-permissions", "--xattrs", "--xattrs-include=*"})
                          .map([](const ProcessResult&) {}),
                      "unpacking " + tarball);
}

// debootstrap is slow (minutes); its result is cached as a tarball keyed by every input.
Result<std::string> cached_debootstrap(const BaseSpec& base, const std::string& cache_dir) {
  std::vector<std::string> packages = base.packages;
  std::sort(packages.begin(), packages.end());
  std::string key = base.suite + "\n" + base.variant + "\n" + base.mirror + "\n";
  for (const auto& p : packages) key += p + ",";
  std::vector<std::string> after = base.packages_after;
  std::sort(after.begin(), after.end());
  // Only a definition with packages_after adds to the key: the other caches stay valid.
  if (!after.empty()) key += "\nafter:";
  for (const auto& p : after) key += p + ",";
  std::map<std::string, std::string> files_before;  // path in the image -> content
  for (const auto& [path, source] : base.files_before) {
    files_before[path] = BALLAST_TRY(with_context(read_regular_file(source), "reading [base.files] " + path));
    key += "\nfile:" + path + "=" + sha256_hex(files_before[path]);
  }
  std::string cached = path_join(cache_dir, "debootstrap-" + sha256_hex(key).substr(0, 16) + ".tar");
  if (path_exists(cached)) return cached;
  BALLAST_CHECK(make_dirs(cache_dir));
  auto tmp = BALLAST_TRY(make_temp_dir("ballast-debootstrap"));
  std::vector<std::string> argv = {"debootstrap", "--variant=" + base.variant};
  if (!packages.empty()) {
    std::string inc = "--include=";
    for (size_t i = 0; i < packages.size(); ++i) inc += (i ? "," : "") + packages[i];
    argv.push_back(inc);
  }
  argv.insert(argv.end(), {base.suite, path_join(tmp, "root"), base.mirror});
  log::info("running debootstrap " + base.suite + " (cached afterwards in " + cached + ")");
  // Per process: two builds warming the same cache at once must not write one file.
  const std::string partial = cached + ".tmp-" + std::to_string(::getpid());
  auto st = run_checked(argv, SpawnOptions{.timeout = std::chrono::minutes(30)});
  std::string why = "building the debootstrap base";
  if (!st) {
    // debootstrap says on stderr only "see the log": the log's tail names the package that failed.
    if (auto log = read_file(path_join(tmp, "root/debootstrap/debootstrap.log"), 64 << 20))
      why += "; debootstrap.log ends:\n" + log->substr(log->size() > 2000 ? log->size() - 2000 : 0);
  } else {
    why = "writing [base.files] into the debootstrapped tree";
    for (const auto& [path, content] : files_before) {
      Status w = write_in(path_join(tmp, "root"), path, content, 0644);
      if (!w) {
        st = tl::unexpected<Error>(w.error());
        break;
      }
    }
  }
  if (st && !after.empty()) {
    // In a private mount namespace whose /proc (dracut and others need it) dies with apt-get.
    std::vector<std::string> apt = {"unshare", "--mount", "--mount-proc=" + path_join(tmp, "root/proc"),
                                    "chroot", path_join(tmp, "root"), "apt-get", "install", "--yes",
                                    "--no-install-recommends"};
    apt.insert(apt.end(), after.begin(), after.end());
    log::info("installing packages_after in the debootstrapped tree");
    why = "installing packages_after with apt-get in the debootstrapped tree";
    st = run_checked(apt, SpawnOptions{.timeout = std::chrono::minutes(30),
                                       .extra_env = {"DEBIAN_FRONTEND=noninteractive",
                                                     "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}});
  }
  if (st) {
    why = "building the debootstrap base";
    st = run_checked({"tar", "--create", "--file", partial, "--directory", path_join(tmp, "root"),
                      "--numeric-owner", "--xattrs", "--xattrs-include=*", "--sort=name", "."});
  }
  (void)remove_tree(tmp);
  if (!st) {
    (void)remove_if_exists(partial);
    return tl::unexpected(with_context(std::move(st), why).error());
  }
  if (::rename(partial.c_str(), cached.c_str()) != 0) {
    int e = errno;
    (void)remove_if_exists(partial);
    return fail_errno("image.cache", e, "cannot store " + cached);
  }
  return cached;
}

Status debootstrap_base(const BaseSpec& base, const std::string& root, const std::string& cache_dir) {
  const std::string cached = BALLAST_TRY(cached_debootstrap(base, cache_dir));
  BALLAST_CHECK(extract_tarball(cached, root));
  // apt's package lists and caches are for a mutable system; in an image they are dead weight
  // that every full stream would carry (over 100 MB for bookworm).
  for (const char* dir : {"var/cache/apt", "var/lib/apt/lists"}) {
    const std::string path = path_join(root, dir);
    if (!path_exists(path)) continue;
    for (const auto& name : BALLAST_TRY(list_dir(path))) {
      if (name == "lock" || name == "partial") continue;
      BALLAST_CHECK(remove_tree(path_join(path, name)));
    }
  }
  return ok();
}

// Finds the kernel in the tree and moves it (and its initrd) to /usr/lib/modules/<kver>/.
Result<std::string> normalise_kernel(const KernelSpec& k, const std::string& root) {
  if (k.stand_in) {
    std::string dir = "/usr/lib/modules/" + k.version;
    BALLAST_CHECK(write_in(root, dir + "/vmlinuz",
                           "ballast stand-in kernel " + k.version + ": for sandbox hosts that never boot it\n", 0644));
    BALLAST_CHECK(write_in(root, dir + "/initrd.img", "ballast stand-in initrd " + k.version + "\n", 0644));
    return k.version;
  }
  std::vector<std::string> versions;
  if (!k.version.empty()) versions.push_back(k.version);
  else if (auto mods = list_dir(path_join(root, "usr/lib/modules"))) versions = *mods;
  if (versions.empty()) {
    if (auto boot = list_dir(path_join(root, "boot")))
      for (const auto& f : *boot)
        if (f.rfind("vmlinuz-", 0) == 0) versions.push_back(f.substr(8));
  }
  if (versions.empty())
    return fail("image.no-kernel", "no kernel in the image: install one in the base, or set [kernel] stand_in = true");
  if (versions.size() > 1 && k.version.empty())
    return fail("image.many-kernels", "several kernels in the image; choose one with [kernel] version");
  std::string kver = versions.front();
  std::string dir = path_join(root, "usr/lib/modules/" + kver);
  BALLAST_CHECK(make_dirs(dir));
  for (auto [name, boot_name] : {std::pair{"vmlinuz", "vmlinuz-"}, std::pair{"initrd.img", "initrd.img-"}}) {
    std::string target = path_join(dir, name);
    std::string in_boot = path_join(root, "boot/" + std::string(boot_name) + kver);
    if (path_exists(in_boot)) {
      (void)remove_if_exists(target);
      if (::rename(in_boot.c_str(), target.c_str()) != 0)
        return fail_errno("image.kernel", errno, "cannot move " + in_boot);
    }
    if (!path_exists(target)) return fail("image.no-kernel", "kernel " + kver + " has no " + name);
  }
  return kver;
}

Status enable_service(const std::string& root, const std::string& unit) {
  std::string unit_path;
  for (const char* d : {"usr/lib/systemd/system/", "lib/systemd/system/", "etc/systemd/system/"})
    if (path_exists(path_join(root, d + unit))) {
      unit_path = std::string("/") + d + unit;
      break;
    }
  if (unit_path.empty()) return fail("image.no-unit", "cannot enable " + unit + ": no such unit in the image");
  auto text = BALLAST_TRY(read_file(path_join(root, unit_path)));
  std::istringstream in(text);
  std::string line;
  std::vector<std::string> links;  // "<target>.wants/" or "<target>.requires/", as systemctl enable makes them
  bool install = false;
  while (std::getline(in, line)) {
    if (!line.empty() && line[0] == '[') install = line.rfind("[Install]", 0) == 0;
    if (!install) continue;
    for (auto [key, dir] : {std::pair{"WantedBy=", ".wants/"}, std::pair{"RequiredBy=", ".requires/"}}) {
      if (line.rfind(key, 0) != 0) continue;
      std::istringstream ws(line.substr(std::string_view(key).size()));
      std::string t;
      while (ws >> t) links.push_back(t + dir);
    }
  }
  if (links.empty())
    return fail("image.no-unit", "cannot enable " + unit + ": its [Install] section has no WantedBy= or RequiredBy=");
  for (const auto& l : links) BALLAST_CHECK(symlink_in(root, "etc/systemd/system/" + l + unit, unit_path));
  return ok();
}

// Post-order so that directory times are set after their children stopped changing them.
Status set_times(int dirfd, const struct timespec& when) {
  struct timespec times[2] = {when, when};
  for (const auto& name : BALLAST_TRY(tree::entries_of(dirfd))) {
    auto st = BALLAST_TRY(tree::lstat_at(dirfd, name));
    if (S_ISDIR(st.st_mode)) {
      auto sub = BALLAST_TRY(tree::open_entry(dirfd, name, O_RDONLY | O_DIRECTORY));
      BALLAST_CHECK(set_times(sub.get(), when));
    }
    if (st.st_mtim.tv_sec == when.tv_sec && st.st_mtim.tv_nsec == when.tv_nsec && st.st_atim.tv_sec == when.tv_sec &&
        st.st_atim.tv_nsec == when.tv_nsec)
      continue;  // untouched inodes stay untouched (a delta would carry their times otherwise)
    if (::utimensat(dirfd, name.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0)
      return fail_errno("image.times", errno, "cannot set times of " + name);
  }
  return ok();
}

std::string os_release_text(const ImageDefinition& def, const std::string& version) {
  std::map<std::string, std::string> fields = {{"NAME", "ballast " + def.name}, {"ID", "ballast"}};
  for (const auto& [k, v] : def.os_release) fields[k] = v;
  fields["IMAGE_ID"] = def.name;
  fields["IMAGE_VERSION"] = version;
  std::string out;
  for (const auto& [k, v] : fields) {
    std::string quoted;
    for (char c : v) {
      if (c == '"' || c == '\\' || c == '$' || c == '`') quoted += '\\';
      quoted += c;
    }
    out += k + "=\"" + quoted + "\"\n";
  }
  return out;
}

// The UKI (signed when a key is given) and the signed loader, built outside the tree and then
// written into it beneath its root like every other file.
Status add_boot_binaries(const ImageDefinition& def, const BuildOptions& opts, const std::string& root,
                         const std::string& kver, const std::string& os_release, int64_t epoch) {
  auto work = BALLAST_TRY(make_temp_dir("ballast-image-uki"));
  struct Cleanup {
    std::string dir;
    ~Cleanup() { (void)remove_tree(dir); }
  } cleanup{work};
  const std::string modules = path_join(root, "usr/lib/modules/" + kver);
  UkiParts parts;
  parts.linux_path = path_join(modules, "vmlinuz");
  parts.initrd_path = path_exists(path_join(modules, "initrd.img")) ? path_join(modules, "initrd.img") : "";
  // systemd-boot sorts a UKI by its os-release's IMAGE_ID, else ID, where Type #1 entries have a
  // sort-key: without IMAGE_ID the UKI sorts with ballast's Type #1 entries (sort-key "ballast",
  // the ID every image has), so a host moving to UKIs boots the newest version of either kind.
  if (auto id = def.os_release.find("ID"); id != def.os_release.end() && id->second != "ballast")
    return fail("image.uki-os-release", "a UKI needs os-release ID=ballast (systemd-boot's sort key), not " + id->second);
  for (size_t pos = 0; pos < os_release.size();) {
    size_t end = os_release.find('\n', pos);
    end = end == std::string::npos ? os_release.size() : end + 1;
    if (os_release.compare(pos, 9, "IMAGE_ID=") != 0) parts.osrel += os_release.substr(pos, end - pos);
    pos = end;
  }
  parts.cmdline = uki_cmdline(opts.version, def.kernel.cmdline);
  parts.timestamp = epoch;
  std::string uki = path_join(work, "uki.efi");
  BALLAST_CHECK(assemble_uki(opts.stub, parts, uki));
  if (opts.secure_boot) {
    BALLAST_CHECK(sign_efi(*opts.secure_boot, uki, uki + ".signed"));
    uki += ".signed";
    const std::string loader = path_join(work, "systemd-bootx64.efi.signed");
    BALLAST_CHECK(with_context(sign_efi(*opts.secure_boot, opts.systemd_boot, loader),
                               "signing systemd-boot (apt-get install systemd-boot-efi)"));
    BALLAST_CHECK(write_in(root, kSignedLoaderPath, BALLAST_TRY(read_file(loader, 64 << 20)), 0644));
  }
  BALLAST_CHECK(write_in(root, kUkiPath, BALLAST_TRY(read_file(uki, 1ull << 30)), 0644));
  return ok();
}

}  // namespace

Result<std::string> prepare_base(const ImageDefinition& def, const std::string& cache_dir) {
  if (def.base.kind != BaseKind::debootstrap) return std::string{};
  return cached_debootstrap(def.base, cache_dir);
}

Result<BuiltImage> build_image(const ImageDefinition& def, const BuildOptions& opts) {
  if (opts.output.empty()) return fail("image.output", "no output path given");
  if (path_exists(opts.output)) return fail("image.output-exists", opts.output + " already exists");
  if (opts.secure_boot)
    for (const auto& f : {opts.secure_boot->key, opts.secure_boot->cert})
      if (f.empty() || !path_exists(f)) return fail("image.secure-boot-key", "no Secure Boot key or certificate at \"" + f + "\"");
  std::string parent = parent_of(opts.output);
  struct statfs sfs;
  if (::statfs(parent.c_str(), &sfs) != 0) return fail_errno("image.output", errno, "cannot reach " + parent);
  if (sfs.f_type != BTRFS_SUPER_MAGIC) return fail("image.not-btrfs", parent + " is not on a Btrfs filesystem");

  int64_t epoch = 0;
  if (opts.source_date_epoch) epoch = *opts.source_date_epoch;
  else if (const char* env = std::getenv("SOURCE_DATE_EPOCH"); env && *env) epoch = std::atoll(env);
  else {
    struct stat st;
    if (::stat(def.file.c_str(), &st) == 0) epoch = st.st_mtim.tv_sec;
  }

  std::string partial = path_join(parent, "." + base_of(opts.output) + ".partial-" + std::to_string(::getpid()));
  BALLAST_CHECK(snapshot::create_subvolume(partial));
  snapshot::SubvolumeGuard guard(partial);

  switch (def.base.kind) {
    case BaseKind::busybox: BALLAST_CHECK(with_context(busybox_base(def.base, partial, def.name), "busybox base")); break;
    case BaseKind::debootstrap: BALLAST_CHECK(debootstrap_base(def.base, partial, opts.cache_dir)); break;
    case BaseKind::tarball: BALLAST_CHECK(extract_tarball(def.base.path, partial)); break;
    case BaseKind::directory: {
      auto src = BALLAST_TRY(open_dir(def.base.path));
      auto dst = BALLAST_TRY(open_dir(partial));
      BALLAST_CHECK(with_context(tree::overlay_tree(src.get(), dst.get()), "copying base " + def.base.path));
      break;
    }
  }
  for (const auto& overlay : def.overlays) {
    auto src = BALLAST_TRY(open_dir(overlay));
    auto dst = BALLAST_TRY(open_dir(partial));
    BALLAST_CHECK(with_context(tree::overlay_tree(src.get(), dst.get()), "laying overlay " + overlay));
  }
  for (const auto& f : def.files) {
    std::string content = f.content;
    if (!f.source.empty()) content = BALLAST_TRY(read_file(f.source, 256 << 20));
    BALLAST_CHECK(write_in(partial, f.path, content, f.mode, f.uid, f.gid));
  }
  const std::string os_release = os_release_text(def, opts.version.str());
  BALLAST_CHECK(write_in(partial, "/usr/lib/os-release", os_release, 0644));
  BALLAST_CHECK(symlink_in(partial, "etc/os-release", "../usr/lib/os-release"));

  std::string kver = BALLAST_TRY(normalise_kernel(def.kernel, partial));
  if (!def.kernel.cmdline.empty()) BALLAST_CHECK(write_in(partial, "/usr/lib/kernel/cmdline", def.kernel.cmdline + "\n", 0644));
  const bool with_uki = def.kernel.uki || opts.secure_boot.has_value();
  if (with_uki) BALLAST_CHECK(with_context(add_boot_binaries(def, opts, partial, kver, os_release, epoch), "building the UKI"));

  if (!def.root_json.empty()) {
    auto root = BALLAST_TRY(read_file(def.root_json, 1 << 20));
    BALLAST_CHECK(write_in(partial, "/usr/lib/ballast/root.json", root, 0644));
  }
  if (!def.config.empty()) {
    auto text = BALLAST_TRY(read_file(def.config, 1 << 20));
    Config check;
    BALLAST_CHECK(with_context(check.merge_text(text, def.config), "checking the embedded configuration"));
    BALLAST_CHECK(write_in(partial, "/usr/lib/ballast/config.d/50-image.toml", text, 0644));
  }
  if (def.install_ballast) {
    if (opts.ballast_binary.empty()) return fail("image.no-binary", "[ballast] install needs the ballast binary");
    auto bin = BALLAST_TRY(read_file(opts.ballast_binary, 256 << 20));
    BALLAST_CHECK(write_in(partial, "/usr/bin/ballast", bin, 0755));
    if (!opts.units_dir.empty()) {
      for (const auto& unit : BALLAST_TRY(list_dir(opts.units_dir))) {
        // The same places units/meson.build installs them to.
        auto dot = unit.rfind('.');
        std::string ext = dot == std::string::npos ? "" : unit.substr(dot);
        std::string dest;
        if (ext == ".service" || ext == ".timer" || ext == ".target") dest = "/usr/lib/systemd/system/" + unit;
        else if (unit == "tmpfiles.conf") dest = "/usr/lib/tmpfiles.d/ballast.conf";
        else if (unit.rfind("dev.ballast.", 0) == 0 && ext == ".conf") dest = "/usr/share/dbus-1/system.d/" + unit;
        else continue;
        auto text = BALLAST_TRY(read_file(path_join(opts.units_dir, unit)));
        BALLAST_CHECK(write_in(partial, dest, text, 0644));
      }
    }
  }
  for (const auto& unit : def.enable_services) BALLAST_CHECK(enable_service(partial, unit));

  {
    auto rootfd = BALLAST_TRY(open_dir(partial));
    BALLAST_CHECK(set_times(rootfd.get(), timespec{epoch, 0}));
    struct timespec times[2] = {{epoch, 0}, {epoch, 0}};
    ::utimensat(AT_FDCWD, partial.c_str(), times, 0);
    if (::syncfs(rootfd.get()) != 0) return fail_errno("image.sync", errno, "cannot flush " + partial);
  }
  if (!opts.parent.empty()) {
    // Carry the fresh tree over a snapshot of the parent so unchanged files keep their inodes.
    std::string over = path_join(parent, "." + base_of(opts.output) + ".over-" + std::to_string(::getpid()));
    BALLAST_CHECK(with_context(snapshot::snapshot_subvolume(opts.parent, over, false), "snapshotting the parent image"));
    snapshot::SubvolumeGuard over_guard(over);
    {
      auto fresh = BALLAST_TRY(open_dir(partial));
      auto ref = BALLAST_TRY(open_dir(opts.parent));
      auto target = BALLAST_TRY(open_dir(over));
      BALLAST_CHECK(with_context(tree::sync_tree(fresh.get(), ref.get(), target.get()), "carrying the image over its parent"));
      struct stat root_st;
      if (::fstat(fresh.get(), &root_st) == 0) {
        struct timespec times[2] = {root_st.st_atim, root_st.st_mtim};
        ::futimens(target.get(), times);
        ::fchmod(target.get(), root_st.st_mode & 07777);
      }
      if (::syncfs(target.get()) != 0) return fail_errno("image.sync", errno, "cannot flush " + over);
    }
    BALLAST_CHECK(snapshot::delete_subvolume(partial));
    if (::rename(over.c_str(), partial.c_str()) != 0)
      return fail_errno("image.rename", errno, "cannot replace the fresh tree with the carried one");
    over_guard.commit();
  }
  BALLAST_CHECK(snapshot::set_read_only(partial, true));
  if (::rename(partial.c_str(), opts.output.c_str()) != 0)
    return fail_errno("image.rename", errno, "cannot move the image into " + opts.output);
  guard.commit();
  return BuiltImage{opts.output, def.name, opts.version, kver, epoch, with_uki, opts.secure_boot.has_value()};
}

}  // namespace ballast::images
