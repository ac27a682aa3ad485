#include "snapshot/etc_merge.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/openat2.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <set>

#include "common/file.hpp"

namespace ballast::snapshot {

namespace {

constexpr uint64_t kNoSymlinks = RESOLVE_NO_SYMLINKS;

// Opens an entry of `dir` without following a final symlink and without leaving `dir`.
Result<UniqueFd> open_entry(int dirfd, const std::string& name, int flags) {
  return open_beneath(dirfd, name, flags | O_NOFOLLOW, 0, kNoSymlinks);
}

Result<std::vector<std::string>> entries_of(int dirfd) {
  auto dup = BALLAST_TRY(open_beneath(dirfd, ".", O_RDONLY | O_DIRECTORY));
  DIR* d = ::fdopendir(dup.release());
  if (!d) return fail_errno("etc-merge.read-dir", errno, "cannot list directory");
  std::vector<std::string> names;
  while (auto* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(std::move(n));
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

// Extended attributes of a non-symlink entry, read through its O_PATH fd's /proc path so that no
// path is looked up twice. Symlinks carry none that we can reach without a path walk: none is read.
Result<std::map<std::string, std::string>> xattrs_of(int dirfd, const std::string& name) {
  std::map<std::string, std::string> out;
  struct stat st;
  if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
    return fail_errno("etc-merge.stat", errno, "cannot stat " + name);
  if (S_ISLNK(st.st_mode)) return out;
  auto fd = BALLAST_TRY(open_entry(dirfd, name, O_PATH));
  std::string proc = "/proc/self/fd/" + std::to_string(fd.get());
  ssize_t len = ::listxattr(proc.c_str(), nullptr, 0);
  if (len < 0) {
    if (errno == ENOTSUP) return out;
    return fail_errno("etc-merge.xattr", errno, "cannot list xattrs of " + name);
  }
  std::string names(static_cast<size_t>(len), '\0');
  len = ::listxattr(proc.c_str(), names.data(), names.size());
  if (len < 0) return fail_errno("etc-merge.xattr", errno, "cannot list xattrs of " + name);
  names.resize(static_cast<size_t>(len));
  for (size_t pos = 0; pos < names.size();) {
    std::string key = names.c_str() + pos;
    pos += key.size() + 1;
    ssize_t vlen = ::getxattr(proc.c_str(), key.c_str(), nullptr, 0);
    if (vlen < 0) continue;
    std::string value(static_cast<size_t>(vlen), '\0');
    vlen = ::getxattr(proc.c_str(), key.c_str(), value.data(), value.size());
    if (vlen < 0) continue;
    value.resize(static_cast<size_t>(vlen));
    out.emplace(std::move(key), std::move(value));
  }
  return out;
}

Result<struct stat> lstat_at(int dirfd, const std::string& name) {
  struct stat st;
  if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
    return fail_errno("etc-merge.stat", errno, "cannot stat " + name);
  return st;
}

Result<std::string> link_target(int dirfd, const std::string& name) {
  char buf[PATH_MAX];
  ssize_t n = ::readlinkat(dirfd, name.c_str(), buf, sizeof(buf));
  if (n < 0) return fail_errno("etc-merge.readlink", errno, "cannot read link " + name);
  return std::string(buf, static_cast<size_t>(n));
}

Result<bool> same_content(int adir, int bdir, const std::string& name, off_t size) {
  auto a = BALLAST_TRY(open_entry(adir, name, O_RDONLY));
  auto b = BALLAST_TRY(open_entry(bdir, name, O_RDONLY));
  std::string abuf(1 << 16, '\0'), bbuf(1 << 16, '\0');
  off_t done = 0;
  while (done < size) {
    ssize_t na = ::read(a.get(), abuf.data(), abuf.size());
    ssize_t nb = ::read(b.get(), bbuf.data(), bbuf.size());
    if (na < 0 || nb < 0) return fail_errno("etc-merge.read", errno, "cannot read " + name);
    if (na != nb || std::memcmp(abuf.data(), bbuf.data(), static_cast<size_t>(na)) != 0) return false;
    if (na == 0) break;
    done += na;
  }
  return true;
}

// True when the entry counts as locally changed for reasons other than a directory's children.
Result<bool> entry_differs(int image_dir, int live_dir, const std::string& name, const struct stat& a,
                           const struct stat& b) {
  if ((a.st_mode & S_IFMT) != (b.st_mode & S_IFMT)) return true;
  if ((a.st_mode & 07777) != (b.st_mode & 07777) || a.st_uid != b.st_uid || a.st_gid != b.st_gid) return true;
  if (S_ISLNK(a.st_mode)) {
    if (BALLAST_TRY(link_target(image_dir, name)) != BALLAST_TRY(link_target(live_dir, name))) return true;
  } else if (S_ISREG(a.st_mode)) {
    if (a.st_size != b.st_size) return true;
    if (!BALLAST_TRY(same_content(image_dir, live_dir, name, a.st_size))) return true;
  } else if (S_ISCHR(a.st_mode) || S_ISBLK(a.st_mode)) {
    if (a.st_rdev != b.st_rdev) return true;
  }
  return BALLAST_TRY(xattrs_of(image_dir, name)) != BALLAST_TRY(xattrs_of(live_dir, name));
}

Status remove_entry(int dirfd, const std::string& name);

Status remove_children(int dirfd) {
  for (const auto& child : BALLAST_TRY(entries_of(dirfd))) BALLAST_CHECK(remove_entry(dirfd, child));
  return ok();
}

Status remove_entry(int dirfd, const std::string& name) {
  struct stat st;
  if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return ok();
    return fail_errno("etc-merge.stat", errno, "cannot stat " + name);
  }
  if (S_ISDIR(st.st_mode)) {
    auto sub = BALLAST_TRY(open_entry(dirfd, name, O_RDONLY | O_DIRECTORY));
    BALLAST_CHECK(remove_children(sub.get()));
    if (::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) != 0)
      return fail_errno("etc-merge.remove", errno, "cannot remove directory " + name);
    return ok();
  }
  if (::unlinkat(dirfd, name.c_str(), 0) != 0) return fail_errno("etc-merge.remove", errno, "cannot remove " + name);
  return ok();
}

Status apply_metadata(int src_dir, int dst_dir, const std::string& name, const struct stat& st) {
  auto dst = BALLAST_TRY(open_entry(dst_dir, name, O_PATH));
  std::string proc = "/proc/self/fd/" + std::to_string(dst.get());
  if (::fchownat(dst.get(), "", st.st_uid, st.st_gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0)
    return fail_errno("etc-merge.chown", errno, "cannot set owner of " + name);
  if (!S_ISLNK(st.st_mode)) {
    if (::chmod(proc.c_str(), st.st_mode & 07777) != 0)
      return fail_errno("etc-merge.chmod", errno, "cannot set mode of " + name);
    // Replace the xattr set: drop what the source lacks, then set the source's.
    auto want = BALLAST_TRY(xattrs_of(src_dir, name));
    auto have = BALLAST_TRY(xattrs_of(dst_dir, name));
    for (const auto& [k, v] : have)
      if (!want.count(k)) ::removexattr(proc.c_str(), k.c_str());
    for (const auto& [k, v] : want)
      if (::setxattr(proc.c_str(), k.c_str(), v.data(), v.size(), 0) != 0)
        return fail_errno("etc-merge.xattr", errno, "cannot set xattr " + k + " on " + name);
  }
  struct timespec times[2] = {st.st_atim, st.st_mtim};
  ::utimensat(dst_dir, name.c_str(), times, AT_SYMLINK_NOFOLLOW);
  return ok();
}

Status copy_file_data(int src, int dst, const std::string& name) {
  if (::ioctl(dst, FICLONE, src) == 0) return ok();  // reflink: shares extents, copies nothing
  for (;;) {
    ssize_t n = ::copy_file_range(src, nullptr, dst, nullptr, 1 << 30, 0);
    if (n == 0) return ok();
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("etc-merge.copy", errno, "cannot copy " + name);
    }
  }
}

// Copies one entry (recursively for directories) from src_dir/name to dst_dir/name, which must not exist.
Status copy_entry(int src_dir, int dst_dir, const std::string& name) {
  auto st = BALLAST_TRY(lstat_at(src_dir, name));
  switch (st.st_mode & S_IFMT) {
    case S_IFREG: {
      auto src = BALLAST_TRY(open_entry(src_dir, name, O_RDONLY));
      auto dst = BALLAST_TRY(open_beneath(dst_dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600, kNoSymlinks));
      BALLAST_CHECK(copy_file_data(src.get(), dst.get(), name));
      break;
    }
    case S_IFDIR: {
      if (::mkdirat(dst_dir, name.c_str(), 0700) != 0)
        return fail_errno("etc-merge.mkdir", errno, "cannot create directory " + name);
      auto src = BALLAST_TRY(open_entry(src_dir, name, O_RDONLY | O_DIRECTORY));
      auto dst = BALLAST_TRY(open_entry(dst_dir, name, O_RDONLY | O_DIRECTORY));
      for (const auto& child : BALLAST_TRY(entries_of(src.get())))
        BALLAST_CHECK(with_context(copy_entry(src.get(), dst.get(), child), name));
      break;
    }
    case S_IFLNK: {
      auto target = BALLAST_TRY(link_target(src_dir, name));
      if (::symlinkat(target.c_str(), dst_dir, name.c_str()) != 0)
        return fail_errno("etc-merge.symlink", errno, "cannot create symlink " + name);
      break;
    }
    default:
      if (::mknodat(dst_dir, name.c_str(), st.st_mode, st.st_rdev) != 0)
        return fail_errno("etc-merge.mknod", errno, "cannot create special file " + name);
  }
  return apply_metadata(src_dir, dst_dir, name, st);
}

Status replace_entry(int live_dir, int target_dir, const std::string& name) {
  BALLAST_CHECK(remove_entry(target_dir, name));
  return copy_entry(live_dir, target_dir, name);
}

struct Merger {
  EtcMergeReport report;

  Status merge_dir(int image_dir, int live_dir, int target_dir, const std::string& prefix) {
    auto image_names = BALLAST_TRY(entries_of(image_dir));
    auto live_names = BALLAST_TRY(entries_of(live_dir));
    std::set<std::string> all(image_names.begin(), image_names.end());
    all.insert(live_names.begin(), live_names.end());
    std::set<std::string> in_image(image_names.begin(), image_names.end());
    std::set<std::string> in_live(live_names.begin(), live_names.end());
    for (const auto& name : all) {
      std::string rel = prefix.empty() ? name : prefix + "/" + name;
      if (!in_live.count(name)) {  // deleted locally: stays deleted
        BALLAST_CHECK(with_context(remove_entry(target_dir, name), rel));
        report.deleted.push_back(rel);
        continue;
      }
      auto live_st = BALLAST_TRY(lstat_at(live_dir, name));
      if (!in_image.count(name)) {  // added locally: carried whole
        BALLAST_CHECK(with_context(replace_entry(live_dir, target_dir, name), rel));
        report.carried.push_back(rel);
        continue;
      }
      auto image_st = BALLAST_TRY(lstat_at(image_dir, name));
      bool differs = BALLAST_TRY(entry_differs(image_dir, live_dir, name, image_st, live_st));
      bool both_dirs = S_ISDIR(image_st.st_mode) && S_ISDIR(live_st.st_mode);
      if (both_dirs) {
        struct stat target_st;
        bool target_is_dir = ::fstatat(target_dir, name.c_str(), &target_st, AT_SYMLINK_NOFOLLOW) == 0 &&
                             S_ISDIR(target_st.st_mode);
        if (!target_is_dir) {
          // The new image no longer has this directory (or made it something else). Carry the
          // admin's version only when they changed anything inside it.
          if (differs || BALLAST_TRY(tree_differs(image_dir, live_dir, name))) {
            BALLAST_CHECK(with_context(replace_entry(live_dir, target_dir, name), rel));
            report.carried.push_back(rel);
          }
          continue;
        }
        if (differs) {
          BALLAST_CHECK(with_context(apply_metadata(live_dir, target_dir, name, live_st), rel));
          report.metadata.push_back(rel);
        }
        auto i = BALLAST_TRY(open_entry(image_dir, name, O_RDONLY | O_DIRECTORY));
        auto l = BALLAST_TRY(open_entry(live_dir, name, O_RDONLY | O_DIRECTORY));
        auto t = BALLAST_TRY(open_entry(target_dir, name, O_RDONLY | O_DIRECTORY));
        BALLAST_CHECK(merge_dir(i.get(), l.get(), t.get(), rel));
        continue;
      }
      if (differs) {
        BALLAST_CHECK(with_context(replace_entry(live_dir, target_dir, name), rel));
        report.carried.push_back(rel);
      }
    }
    return ok();
  }

  // Whether anything below two same-named directories differs.
  Result<bool> tree_differs(int image_dir, int live_dir, const std::string& name) {
    auto i = BALLAST_TRY(open_entry(image_dir, name, O_RDONLY | O_DIRECTORY));
    auto l = BALLAST_TRY(open_entry(live_dir, name, O_RDONLY | O_DIRECTORY));
    auto in = BALLAST_TRY(entries_of(i.get()));
    auto ln = BALLAST_TRY(entries_of(l.get()));
    if (in != ln) return true;
    for (const auto& child : in) {
      auto a = BALLAST_TRY(lstat_at(i.get(), child));
      auto b = BALLAST_TRY(lstat_at(l.get(), child));
      if (BALLAST_TRY(entry_differs(i.get(), l.get(), child, a, b))) return true;
      if (S_ISDIR(a.st_mode) && BALLAST_TRY(tree_differs(i.get(), l.get(), child))) return true;
    }
    return false;
  }
};

}  // namespace

Result<EtcMergeReport> merge_etc(const std::string& old_image_etc, const std::string& old_live_etc,
                                 const std::string& target_etc) {
  auto image = BALLAST_TRY(open_dir(old_image_etc));
  auto live = BALLAST_TRY(open_dir(old_live_etc));
  auto target = BALLAST_TRY(open_dir(target_etc));
  Merger m;
  BALLAST_CHECK(with_context(m.merge_dir(image.get(), live.get(), target.get(), ""), "merging /etc"));
  return m.report;
}

}  // namespace ballast::snapshot
