#include "snapshot/host_layout.hpp"

#include <fcntl.h>
#include <linux/btrfs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <set>
#include <sstream>

#include "common/file.hpp"
#include "common/tree.hpp"
#include "snapshot/etc_merge.hpp"
#include "snapshot/subvolume.hpp"

namespace ballast::snapshot {

Status ensure_layout(const HostLayout& host) {
  for (const auto& d : {host.slots_dir(), host.deploy_dir(), host.partial_dir()}) BALLAST_CHECK(make_dirs(d));
  if (!path_exists(host.var())) BALLAST_CHECK(create_subvolume(host.var()));
  return ok();
}

Result<std::vector<std::string>> clean_partial(const HostLayout& host) {
  std::vector<std::string> removed;
  auto remove_path = [&](const std::string& p) -> Status {
    if (BALLAST_TRY(is_subvolume(p))) return delete_subvolume(p);
    // A plain directory may hold subvolumes made inside it.
    for (const auto& inner : list_dir(p).value_or(std::vector<std::string>{}))
      if (is_subvolume(path_join(p, inner)).value_or(false)) BALLAST_CHECK(delete_subvolume(path_join(p, inner)));
    return remove_tree(p);
  };
  for (const auto& n : list_dir(host.partial_dir()).value_or(std::vector<std::string>{})) {
    BALLAST_CHECK(remove_path(path_join(host.partial_dir(), n)));
    removed.push_back("partial/" + n);
  }
  for (const auto& [dir, label] : {std::pair{host.slots_dir(), "slots/"}, std::pair{host.deploy_dir(), "deploy/"}}) {
    for (const auto& n : list_dir(dir).value_or(std::vector<std::string>{})) {
      if (n.rfind(".ballast-", 0) != 0) continue;
      BALLAST_CHECK(remove_path(path_join(dir, n)));
      removed.push_back(label + n);
    }
  }
  return removed;
}

// Visible entries only: hidden ones are work in progress.
static Result<std::vector<Version>> versions_in(const std::string& dir) {
  auto names = list_dir(dir);
  if (!names && names.error().code == "io.not-found") return std::vector<Version>{};
  if (!names) return tl::unexpected(names.error());
  std::vector<Version> versions;
  for (const auto& n : *names)
    if (n[0] != '.')
      if (auto v = Version::parse(n)) versions.push_back(std::move(*v));
  return versions;
}

Result<std::vector<Version>> list_slots(const HostLayout& host) { return versions_in(host.slots_dir()); }
Result<std::vector<Version>> list_deployments(const HostLayout& host) { return versions_in(host.deploy_dir()); }

Result<std::string> filesystem_uuid(const std::string& path) {
  auto fd = BALLAST_TRY(open_dir(path));
  struct btrfs_ioctl_fs_info_args info {};
  if (::ioctl(fd.get(), BTRFS_IOC_FS_INFO, &info) != 0)
    return fail_errno("host.fs-uuid", errno, "cannot read the Btrfs filesystem UUID of " + path);
  char out[37];
  const unsigned char* u = info.fsid;
  std::snprintf(out, sizeof(out), "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1],
                u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
  return std::string(out);
}

Result<std::string> image_version_of(const std::string& tree) {
  auto dir = BALLAST_TRY(open_dir(tree));
  auto text = read_file_at(dir.get(), "usr/lib/os-release", 64 << 10);
  if (!text) return text.error().sys_errno == ENOENT ? std::string() : Result<std::string>(tl::unexpected(text.error()));
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("IMAGE_VERSION=", 0) != 0) continue;
    std::string v = line.substr(14);
    if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'') && v.back() == v.front()) v = v.substr(1, v.size() - 2);
    return v;
  }
  return std::string();
}

Status check_image_version(const std::string& tree, const Version& version) {
  std::string image_version = BALLAST_TRY(image_version_of(tree));
  if (image_version != version.str())
    return fail("image.wrong-version",
                "the image holds IMAGE_VERSION \"" + image_version + "\", not release " + version.str());
  return ok();
}

namespace {

// Replaces the fstab lines for the mount points we manage and keeps everything else.
std::string with_fstab_lines(const std::string& fstab, const std::vector<std::string>& lines) {
  std::set<std::string> managed;
  for (const auto& l : lines) {
    std::istringstream ls(l);
    std::string spec, mp;
    ls >> spec >> mp;
    managed.insert(mp);
  }
  std::string out;
  std::istringstream in(fstab);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string spec, mp;
    ls >> spec >> mp;
    if (!spec.empty() && spec[0] != '#' && managed.count(mp)) continue;
    out += line + "\n";
  }
  for (const auto& l : lines) out += l + "\n";
  return out;
}

// The deployment is read-only once booted and systemd cannot create a missing mount point: every
// mount point its fstab names (the ESP's /efi, carried from the previous /etc or added here) must
// exist before it is sealed. A path through a symlink is left alone: it leads out of the tree.
Status create_mount_points(const std::string& root) {
  auto fstab = read_file(root + "/etc/fstab");
  if (!fstab) return fstab.error().code == "io.not-found" ? ok() : Status(tl::unexpected(fstab.error()));
  std::istringstream in(*fstab);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string spec, mp;
    ls >> spec >> mp;
    if (spec.empty() || spec[0] == '#' || mp.size() < 2 || mp[0] != '/' || mp.find("/.") != std::string::npos) continue;
    std::string path = root;
    bool through_link = false;
    for (size_t pos = 1; pos <= mp.size() && !through_link;) {
      size_t next = mp.find('/', pos);
      if (next == std::string::npos) next = mp.size();
      path += "/" + mp.substr(pos, next - pos);
      struct stat st;
      if (::lstat(path.c_str(), &st) == 0) {
        through_link = S_ISLNK(st.st_mode);
      } else if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
        return fail_errno("host.deploy", errno, "cannot create mount point " + mp);
      }
      pos = next + 1;
    }
  }
  return ok();
}

}  // namespace

Status create_deployment(const HostLayout& host, const DeploymentOptions& opts) {
  const std::string slot = host.slot(opts.version);
  const std::string final_path = host.deployment(opts.version);
  if (path_exists(final_path)) return fail("host.deployment-exists", "deployment " + opts.version.str() + " already exists");
  if (!BALLAST_TRY(is_subvolume(slot))) return fail("host.no-slot", "no slot " + opts.version.str() + " to deploy");
  std::string work = path_join(host.deploy_dir(), ".ballast-deploy-" + opts.version.str());
  if (path_exists(work)) BALLAST_CHECK(delete_subvolume(work));

  BALLAST_CHECK(snapshot_subvolume(slot, work, false));
  SubvolumeGuard guard(work);

  // The image's /etc becomes a nested subvolume so it stays writable inside a read-only deployment.
  const std::string etc_subvol = work + "/.etc-subvolume";
  BALLAST_CHECK(create_subvolume(etc_subvol));
  {
    auto workfd = BALLAST_TRY(open_dir(work));
    auto etcfd = BALLAST_TRY(open_dir(etc_subvol));
    if (path_exists(work + "/etc")) {
      auto image_etc = BALLAST_TRY(tree::open_entry(workfd.get(), "etc", O_RDONLY | O_DIRECTORY));
      BALLAST_CHECK(with_context(tree::overlay_tree(image_etc.get(), etcfd.get()), "copying the image's /etc"));
      image_etc.reset();
      BALLAST_CHECK(tree::remove_entry(workfd.get(), "etc"));
    }
    if (::renameat(workfd.get(), ".etc-subvolume", workfd.get(), "etc") != 0)
      return fail_errno("host.deploy", errno, "cannot put /etc in place in " + work);
  }
  if (opts.previous) {
    auto report = BALLAST_TRY(merge_etc(host.slot(*opts.previous) + "/etc", host.deployment(*opts.previous) + "/etc", work + "/etc"));
    (void)report;
  }
  std::vector<std::string> lines;
  if (!opts.var_fstab.empty()) lines.push_back(opts.var_fstab);
  if (!opts.esp_fstab.empty()) lines.push_back(opts.esp_fstab);
  if (!lines.empty()) {
    std::string fstab = read_file(work + "/etc/fstab").value_or("");
    BALLAST_CHECK(write_file_atomic(work + "/etc/fstab", with_fstab_lines(fstab, lines)));
  }
  BALLAST_CHECK(create_mount_points(work));
  {
    auto workfd = BALLAST_TRY(open_dir(work));
    if (::syncfs(workfd.get()) != 0) return fail_errno("host.deploy", errno, "cannot flush " + work);
  }
  BALLAST_CHECK(set_read_only(work, true));
  if (::rename(work.c_str(), final_path.c_str()) != 0)
    return fail_errno("host.deploy", errno, "cannot move deployment " + opts.version.str() + " into place");
  guard.commit();
  return fsync_dir(host.deploy_dir());
}

Status delete_deployment(const HostLayout& host, const Version& version) {
  if (!path_exists(host.deployment(version))) return ok();
  return delete_subvolume(host.deployment(version));
}

Status delete_slot(const HostLayout& host, const Version& version) {
  if (!path_exists(host.slot(version))) return ok();
  return delete_subvolume(host.slot(version));
}

}  // namespace ballast::snapshot
