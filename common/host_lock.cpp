#include "common/host_lock.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "common/file.hpp"
#include "common/log.hpp"

namespace ballast {

namespace {

struct Held {
  dev_t dev;
  ino_t ino;
};
// The lock files this thread holds: taking one again nests instead of deadlocking on itself.
thread_local std::vector<Held> held_here;

bool held_by_this_thread(dev_t dev, ino_t ino) {
  return std::any_of(held_here.begin(), held_here.end(), [&](const Held& h) { return h.dev == dev && h.ino == ino; });
}

struct flock whole_file(short type) {
  struct flock l {};
  l.l_type = type;
  l.l_whence = SEEK_SET;
  return l;  // l_start = l_len = 0: the whole file; l_pid must be 0 for OFD locks
}

// "pid 1234 (stage)", or what little the file says (the holder may not have written it yet).
std::string describe_holder(int fd) {
  char buf[256];
  ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  std::string text(buf, n > 0 ? static_cast<size_t>(n) : 0);
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  auto space = text.find(' ');
  if (text.empty() || space == std::string::npos) return "a process that has not said who it is yet";
  return "pid " + text.substr(0, space) + " (" + text.substr(space + 1) + ")";
}

}  // namespace

std::string host_lock_path(const std::string& state_dir) { return path_join(state_dir, "lock"); }

HostLock::HostLock(std::string path, UniqueFd fd, dev_t dev, ino_t ino)
    : path_(std::move(path)), fd_(std::move(fd)), dev_(dev), ino_(ino) {}

HostLock::HostLock(HostLock&& other) noexcept
    : path_(std::move(other.path_)), fd_(std::move(other.fd_)), dev_(other.dev_), ino_(other.ino_) {}

HostLock::~HostLock() {
  if (!fd_) return;
  // The next reader of the file must not take a finished writer for the holder.
  if (::ftruncate(fd_.get(), 0) != 0) log::warning("cannot clear the lock file " + path_);
  auto it = std::find_if(held_here.begin(), held_here.end(), [&](const Held& h) { return h.dev == dev_ && h.ino == ino_; });
  if (it != held_here.end()) held_here.erase(it);
  fd_.reset();  // closing the open file description releases the OFD lock
}

Result<HostLock> HostLock::acquire(const std::string& path, const std::string& verb, Mode mode, const std::string& code) {
  auto slash = path.rfind('/');
  if (slash != std::string::npos && slash > 0) BALLAST_CHECK(make_dirs(path.substr(0, slash)));
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644));
  if (!fd) return fail_errno("host.lock-file", errno, "cannot open the lock file " + path);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return fail_errno("host.lock-file", errno, "cannot stat the lock file " + path);
  if (held_by_this_thread(st.st_dev, st.st_ino)) return HostLock(path, UniqueFd(), st.st_dev, st.st_ino);

  struct flock l = whole_file(F_WRLCK);
  if (::fcntl(fd.get(), F_OFD_SETLK, &l) != 0) {
    if (errno != EAGAIN && errno != EACCES) return fail_errno("host.lock-file", errno, "cannot lock " + path);
    std::string holder = describe_holder(fd.get());
    if (mode == Mode::fail)
      return fail(code, "another ballast process writes here: " + path + " is held by " + holder +
                            "; try again when it is done, or pass --wait");
    log::notice("waiting for " + path + ", held by " + holder);
    l = whole_file(F_WRLCK);
    while (::fcntl(fd.get(), F_OFD_SETLKW, &l) != 0)
      if (errno != EINTR) return fail_errno("host.lock-file", errno, "cannot lock " + path);
  }
  std::string line = std::to_string(::getpid()) + " " + verb + "\n";
  if (::ftruncate(fd.get(), 0) != 0 || ::pwrite(fd.get(), line.data(), line.size(), 0) != static_cast<ssize_t>(line.size()))
    return fail_errno("host.lock-file", errno, "cannot write the holder into " + path);
  held_here.push_back(Held{st.st_dev, st.st_ino});
  return HostLock(path, std::move(fd), st.st_dev, st.st_ino);
}

}  // namespace ballast
