#include "common/file.hpp"

#include <dirent.h>
#include <ftw.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <random>

namespace ballast {

namespace {

std::string dirname_of(const std::string& path) {
  auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string basename_of(const std::string& path) {
  auto slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

Status write_all(int fd, std::string_view data, const std::string& what) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("io.write", errno, "cannot write " + what);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return ok();
}

}  // namespace

Result<UniqueFd> open_beneath(int dirfd, const std::string& path, int flags, mode_t mode,
                              uint64_t extra_resolve) {
  struct open_how how {};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | extra_resolve;
  for (;;) {
    long fd = ::syscall(SYS_openat2, dirfd, path.c_str(), &how, sizeof(how));
    if (fd >= 0) return UniqueFd(static_cast<int>(fd));
    if (errno == EINTR || errno == EAGAIN) continue;
    return fail_errno(errno == EXDEV ? "io.escape" : "io.open", errno,
                      errno == EXDEV ? "path escapes its root: " + path : "cannot open " + path);
  }
}

Result<UniqueFd> open_dir(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return fail_errno("io.open", errno, "cannot open directory " + path);
  return UniqueFd(fd);
}

static Result<std::string> read_fd(int fd, size_t max_bytes, const std::string& what) {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("io.read", errno, "cannot read " + what);
    }
    if (n == 0) break;
    if (out.size() + static_cast<size_t>(n) > max_bytes)
      return fail("io.too-large", what + " is larger than " + std::to_string(max_bytes) + " bytes");
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

Result<std::string> read_file(const std::string& path, size_t max_bytes) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return fail_errno(errno == ENOENT ? "io.not-found" : "io.open", errno, "cannot open " + path);
  return read_fd(fd.get(), max_bytes, path);
}

Result<std::string> read_regular_file(const std::string& path, size_t max_bytes) {
  // O_NONBLOCK: opening a FIFO without a writer would otherwise wait for one.
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
  if (!fd) return fail_errno(errno == ENOENT ? "io.not-found" : "io.open", errno, "cannot open " + path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return fail_errno("io.stat", errno, "cannot stat " + path);
  if (!S_ISREG(st.st_mode)) return fail("io.not-regular", path + " is not a regular file");
  return read_fd(fd.get(), max_bytes, path);
}

Result<std::string> read_file_at(int dirfd, const std::string& path, size_t max_bytes) {
  auto fd = BALLAST_TRY(open_beneath(dirfd, path, O_RDONLY));
  return read_fd(fd.get(), max_bytes, path);
}

Status write_file_atomic_at(int dirfd, const std::string& name, std::string_view data, mode_t mode) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string tmp = "." + name + ".tmp" + std::to_string(rng() % 1000000000);
  UniqueFd fd(::openat(dirfd, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
  if (!fd) return fail_errno("io.open", errno, "cannot create " + tmp);
  auto cleanup = [&] { ::unlinkat(dirfd, tmp.c_str(), 0); };
  if (auto st = write_all(fd.get(), data, name); !st) {
    cleanup();
    return st;
  }
  if (::fchmod(fd.get(), mode) != 0 || ::fsync(fd.get()) != 0) {
    int err = errno;
    cleanup();
    return fail_errno("io.fsync", err, "cannot flush " + name);
  }
  fd.reset();
  if (::renameat(dirfd, tmp.c_str(), dirfd, name.c_str()) != 0) {
    int err = errno;
    cleanup();
    return fail_errno("io.rename", err, "cannot rename into " + name);
  }
  if (::fsync(dirfd) != 0) return fail_errno("io.fsync", errno, "cannot flush directory of " + name);
  return ok();
}

Status write_file_atomic(const std::string& path, std::string_view data, mode_t mode) {
  auto dir = BALLAST_TRY(open_dir(dirname_of(path)));
  return with_context(write_file_atomic_at(dir.get(), basename_of(path), data, mode),
                      "writing " + path);
}

Status fsync_dir(const std::string& path) {
  auto dir = BALLAST_TRY(open_dir(path));
  if (::fsync(dir.get()) != 0) return fail_errno("io.fsync", errno, "cannot flush " + path);
  return ok();
}

Status make_dirs(const std::string& path, mode_t mode) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return fail_errno("io.mkdir", ec.value(), "cannot create directory " + path);
  (void)mode;
  return ok();
}

Status remove_if_exists(const std::string& path) {
  if (::remove(path.c_str()) != 0 && errno != ENOENT)
    return fail_errno("io.remove", errno, "cannot remove " + path);
  return ok();
}

namespace {
int remove_one(const char* path, const struct stat*, int type, struct FTW*) {
  int rc = type == FTW_DP ? ::rmdir(path) : ::unlink(path);
  return rc == 0 || errno == ENOENT ? 0 : errno;
}
}  // namespace

Status remove_tree(const std::string& path) {
  // FTW_MOUNT: never descend into another filesystem mounted below `path` (a forgotten mount
  // must make this fail, not wipe what is mounted there). FTW_PHYS: never follow symlinks.
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return ok();
    return fail_errno("io.remove", errno, "cannot remove " + path);
  }
  if (!S_ISDIR(st.st_mode)) return remove_if_exists(path);
  int rc = ::nftw(path.c_str(), remove_one, 64, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
  if (rc != 0) return fail_errno("io.remove", rc > 0 ? rc : errno, "cannot remove " + path);
  return ok();
}

bool path_exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

Result<std::vector<std::string>> list_open_dir(UniqueFd dir) {
  DIR* d = ::fdopendir(dir.get());
  if (!d) return fail_errno("io.open", errno, "cannot list a directory");
  dir.release();  // closedir closes it
  std::vector<std::string> names;
  while (auto* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(std::move(n));
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

Result<std::vector<std::string>> list_dir(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return fail_errno(errno == ENOENT ? "io.not-found" : "io.open", errno, "cannot list " + path);
  return list_open_dir(std::move(fd));
}

Result<std::vector<std::string>> list_dir_keeping_atime(int dir_fd) {
  UniqueFd fd(::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_NOATIME | O_CLOEXEC));
  if (!fd) return fail_errno("io.open", errno, "cannot list a directory");
  return list_open_dir(std::move(fd));
}

std::string path_join(std::string_view a, std::string_view b) {
  std::string out(a);
  while (!out.empty() && out.back() == '/' && out.size() > 1) out.pop_back();
  while (!b.empty() && b.front() == '/') b.remove_prefix(1);
  if (out.empty()) return std::string(b);
  if (b.empty()) return out;
  if (out.back() != '/') out += '/';
  out += b;
  return out;
}

Result<std::string> make_temp_dir(const std::string& prefix) {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = path_join(base && *base ? base : "/tmp", prefix + "-XXXXXX");
  if (!::mkdtemp(tmpl.data())) return fail_errno("io.mkdir", errno, "cannot create temp dir " + tmpl);
  return tmpl;
}

}  // namespace ballast
