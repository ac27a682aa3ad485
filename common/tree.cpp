#include "common/tree.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/openat2.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstring>

#include "common/file.hpp"

namespace ballast::tree {

namespace {
constexpr uint64_t kNoSymlinks = RESOLVE_NO_SYMLINKS;

}  // namespace

Result<UniqueFd> open_entry(int dirfd, const std::string& name, int flags) {
  return open_beneath(dirfd, name, flags | O_NOFOLLOW, 0, kNoSymlinks);
}

Result<std::vector<std::string>> entries_of(int dirfd) {
  return list_open_dir(BALLAST_TRY(open_beneath(dirfd, ".", O_RDONLY | O_DIRECTORY)));
}

// Extended attributes of a non-symlink entry, read through its O_PATH fd's /proc path so that no
// path is looked up twice. Symlinks carry none that we can reach without a path walk: none is read.
Result<std::map<std::string, std::string>> xattrs_of(int dirfd, const std::string& name) {
  std::map<std::string, std::string> out;
  struct stat st;
  if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
    return fail_errno("tree.stat", errno, "cannot stat " + name);
  if (S_ISLNK(st.st_mode)) return out;
  auto fd = BALLAST_TRY(open_entry(dirfd, name, O_PATH));
  std::string proc = "/proc/self/fd/" + std::to_string(fd.get());
  ssize_t len = ::listxattr(proc.c_str(), nullptr, 0);
  if (len < 0) {
    if (errno == ENOTSUP) return out;
    return fail_errno("tree.xattr", errno, "cannot list xattrs of " + name);
  }
  std::string names(static_cast<size_t>(len), '\0');
  len = ::listxattr(proc.c_str(), names.data(), names.size());
  if (len < 0) return fail_errno("tree.xattr", errno, "cannot list xattrs of " + name);
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
    return fail_errno("tree.stat", errno, "cannot stat " + name);
  return st;
}

Result<std::string> link_target(int dirfd, const std::string& name) {
  char buf[PATH_MAX];
  ssize_t n = ::readlinkat(dirfd, name.c_str(), buf, sizeof(buf));
  if (n < 0) return fail_errno("tree.readlink", errno, "cannot read link " + name);
  return std::string(buf, static_cast<size_t>(n));
}

Result<bool> same_content(int adir, int bdir, const std::string& name, off_t size) {
  // O_NOATIME: comparing must not change what it compares.
  auto a = BALLAST_TRY(open_entry(adir, name, O_RDONLY | O_NOATIME));
  auto b = BALLAST_TRY(open_entry(bdir, name, O_RDONLY | O_NOATIME));
  std::string abuf(1 << 16, '\0'), bbuf(1 << 16, '\0');
  off_t done = 0;
  while (done < size) {
    ssize_t na = ::read(a.get(), abuf.data(), abuf.size());
    ssize_t nb = ::read(b.get(), bbuf.data(), bbuf.size());
    if (na < 0 || nb < 0) return fail_errno("tree.read", errno, "cannot read " + name);
    if (na != nb || std::memcmp(abuf.data(), bbuf.data(), static_cast<size_t>(na)) != 0) return false;
    if (na == 0) break;
    done += na;
  }
  return true;
}


Status remove_children(int dirfd) {
  for (const auto& child : BALLAST_TRY(entries_of(dirfd))) BALLAST_CHECK(remove_entry(dirfd, child));
  return ok();
}

Status remove_entry(int dirfd, const std::string& name) {
  struct stat st;
  if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return ok();
    return fail_errno("tree.stat", errno, "cannot stat " + name);
  }
  if (S_ISDIR(st.st_mode)) {
    auto sub = BALLAST_TRY(open_entry(dirfd, name, O_RDONLY | O_DIRECTORY));
    BALLAST_CHECK(remove_children(sub.get()));
    if (::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) != 0)
      return fail_errno("tree.remove", errno, "cannot remove directory " + name);
    return ok();
  }
  if (::unlinkat(dirfd, name.c_str(), 0) != 0) return fail_errno("tree.remove", errno, "cannot remove " + name);
  return ok();
}

Status apply_metadata(int src_dir, int dst_dir, const std::string& name, const struct stat& st) {
  auto dst = BALLAST_TRY(open_entry(dst_dir, name, O_PATH));
  std::string proc = "/proc/self/fd/" + std::to_string(dst.get());
  if (::fchownat(dst.get(), "", st.st_uid, st.st_gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0)
    return fail_errno("tree.chown", errno, "cannot set owner of " + name);
  if (!S_ISLNK(st.st_mode)) {
    if (::chmod(proc.c_str(), st.st_mode & 07777) != 0)
      return fail_errno("tree.chmod", errno, "cannot set mode of " + name);
    // Replace the xattr set: drop what the source lacks, then set the source's.
    auto want = BALLAST_TRY(xattrs_of(src_dir, name));
    auto have = BALLAST_TRY(xattrs_of(dst_dir, name));
    for (const auto& [k, v] : have)
      if (!want.count(k)) ::removexattr(proc.c_str(), k.c_str());
    for (const auto& [k, v] : want)
      if (::setxattr(proc.c_str(), k.c_str(), v.data(), v.size(), 0) != 0)
        return fail_errno("tree.xattr", errno, "cannot set xattr " + k + " on " + name);
  }
  struct timespec times[2] = {st.st_atim, st.st_mtim};
  ::utimensat(dst_dir, name.c_str(), times, AT_SYMLINK_NOFOLLOW);
  return ok();
}

static Status copy_file_data(int src, int dst, const std::string& name) {
  if (::ioctl(dst, FICLONE, src) == 0) return ok();  // reflink: shares extents, copies nothing
  for (;;) {
    ssize_t n = ::copy_file_range(src, nullptr, dst, nullptr, 1 << 30, 0);
    if (n == 0) return ok();
    if (n > 0) continue;
    if (errno == EINTR) continue;
    if (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP) break;
    return fail_errno("tree.copy", errno, "cannot copy " + name);
  }
  // Across filesystems (older kernels refuse copy_file_range there): plain copy from here on.
  std::string buf(1 << 20, '\0');
  for (;;) {
    ssize_t n = ::read(src, buf.data(), buf.size());
    if (n == 0) return ok();
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("tree.copy", errno, "cannot read " + name);
    }
    for (ssize_t off = 0; off < n;) {
      ssize_t w = ::write(dst, buf.data() + off, static_cast<size_t>(n - off));
      if (w < 0) {
        if (errno == EINTR) continue;
        return fail_errno("tree.copy", errno, "cannot write " + name);
      }
      off += w;
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
        return fail_errno("tree.mkdir", errno, "cannot create directory " + name);
      auto src = BALLAST_TRY(open_entry(src_dir, name, O_RDONLY | O_DIRECTORY));
      auto dst = BALLAST_TRY(open_entry(dst_dir, name, O_RDONLY | O_DIRECTORY));
      for (const auto& child : BALLAST_TRY(entries_of(src.get())))
        BALLAST_CHECK(with_context(copy_entry(src.get(), dst.get(), child), name));
      break;
    }
    case S_IFLNK: {
      auto target = BALLAST_TRY(link_target(src_dir, name));
      if (::symlinkat(target.c_str(), dst_dir, name.c_str()) != 0)
        return fail_errno("tree.symlink", errno, "cannot create symlink " + name);
      break;
    }
    default:
      if (::mknodat(dst_dir, name.c_str(), st.st_mode, st.st_rdev) != 0)
        return fail_errno("tree.mknod", errno, "cannot create special file " + name);
  }
  return apply_metadata(src_dir, dst_dir, name, st);
}

Status overlay_tree(int src, int dst) {
  for (const auto& name : BALLAST_TRY(entries_of(src))) {
    auto st = BALLAST_TRY(lstat_at(src, name));
    struct stat existing;
    bool dst_dir = ::fstatat(dst, name.c_str(), &existing, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(existing.st_mode);
    if (S_ISDIR(st.st_mode) && dst_dir) {
      BALLAST_CHECK(apply_metadata(src, dst, name, st));
      auto s = BALLAST_TRY(open_entry(src, name, O_RDONLY | O_DIRECTORY));
      auto d = BALLAST_TRY(open_entry(dst, name, O_RDONLY | O_DIRECTORY));
      BALLAST_CHECK(with_context(overlay_tree(s.get(), d.get()), name));
      continue;
    }
    BALLAST_CHECK(remove_entry(dst, name));
    BALLAST_CHECK(copy_entry(src, dst, name));
  }
  return ok();
}

namespace {

bool same_times(const struct stat& a, const struct stat& b) {
  return a.st_mtim.tv_sec == b.st_mtim.tv_sec && a.st_mtim.tv_nsec == b.st_mtim.tv_nsec;
}

Result<bool> same_metadata(int src, int dst, const std::string& name, const struct stat& a, const struct stat& b) {
  if ((a.st_mode & 07777) != (b.st_mode & 07777) || a.st_uid != b.st_uid || a.st_gid != b.st_gid) return false;
  if (!S_ISLNK(a.st_mode) && !same_times(a, b)) return false;
  return BALLAST_TRY(xattrs_of(src, name)) == BALLAST_TRY(xattrs_of(dst, name));
}

}  // namespace

Status sync_tree(int src, int ref, int dst) {
  auto src_names = BALLAST_TRY(entries_of(src));
  for (const auto& name : BALLAST_TRY(entries_of(ref)))
    if (!std::binary_search(src_names.begin(), src_names.end(), name)) BALLAST_CHECK(remove_entry(dst, name));
  for (const auto& name : src_names) {
    auto a = BALLAST_TRY(lstat_at(src, name));
    struct stat b;
    bool present = ::fstatat(ref, name.c_str(), &b, AT_SYMLINK_NOFOLLOW) == 0;
    if (!present || (a.st_mode & S_IFMT) != (b.st_mode & S_IFMT) ||
        ((S_ISCHR(a.st_mode) || S_ISBLK(a.st_mode)) && a.st_rdev != b.st_rdev) ||
        (S_ISLNK(a.st_mode) && BALLAST_TRY(link_target(src, name)) != BALLAST_TRY(link_target(ref, name)))) {
      if (present) BALLAST_CHECK(remove_entry(dst, name));
      BALLAST_CHECK(with_context(copy_entry(src, dst, name), name));
      continue;
    }
    bool metadata_same = BALLAST_TRY(same_metadata(src, ref, name, a, b));
    if (S_ISDIR(a.st_mode)) {
      auto s = BALLAST_TRY(open_entry(src, name, O_RDONLY | O_DIRECTORY));
      auto r = BALLAST_TRY(open_entry(ref, name, O_RDONLY | O_DIRECTORY));
      auto d = BALLAST_TRY(open_entry(dst, name, O_RDONLY | O_DIRECTORY));
      BALLAST_CHECK(with_context(sync_tree(s.get(), r.get(), d.get()), name));
      // Whether children changed shows in dst's mtime now; put the image's times back if so.
      struct stat now;
      if (::fstat(d.get(), &now) == 0 && !same_times(a, now)) metadata_same = false;
    } else if (S_ISREG(a.st_mode) && (a.st_size != b.st_size || !BALLAST_TRY(same_content(src, ref, name, a.st_size)))) {
      // Rewritten in place: the inode stays, so a send delta carries only the new data.
      auto s = BALLAST_TRY(open_entry(src, name, O_RDONLY));
      auto d = BALLAST_TRY(open_entry(dst, name, O_WRONLY | O_TRUNC));
      BALLAST_CHECK(copy_file_data(s.get(), d.get(), name));
      metadata_same = false;  // the write moved mtime
    }
    if (!metadata_same) BALLAST_CHECK(apply_metadata(src, dst, name, a));
  }
  return ok();
}

}  // namespace ballast::tree
