// One writer per host: an exclusive OFD lock (fcntl F_OFD_SETLK) on a lock file, held by
// whatever writes the host for as long as it writes: the `ballast` verbs that change the host
// and the daemon's writing steps. Readers never take it. The holder writes "<pid> <verb>" into
// the file once it holds the lock, so a second writer can name it. The kernel drops the lock
// when the holder's file is closed, also when the holder is killed: a stale pid in the file is
// never read while nobody holds the lock.
//
// Within one thread the lock nests: a step that holds it may call code that takes it again (the
// daemon's staging step calls stage_release). Between threads and processes it is exclusive.
#pragma once

#include <sys/types.h>

#include <string>

#include "common/fd.hpp"
#include "common/result.hpp"

namespace ballast {

// The host lock's file: <state_dir>/lock.
std::string host_lock_path(const std::string& state_dir);

class HostLock {
 public:
  enum class Mode {
    fail,  // another holder: fail at once ("host.locked", naming its pid and verb)
    wait,  // another holder: block until it lets go
  };

  // Takes the lock on `path` (created with its directory when missing) on behalf of `verb`
  // ("stage", "boot bless", "daemon staging"). `code` is the error code when it is held.
  static Result<HostLock> acquire(const std::string& path, const std::string& verb, Mode mode = Mode::fail,
                                  const std::string& code = "host.locked");

  HostLock(HostLock&& other) noexcept;
  HostLock& operator=(HostLock&&) = delete;
  HostLock(const HostLock&) = delete;
  ~HostLock();

  const std::string& path() const { return path_; }

 private:
  HostLock(std::string path, UniqueFd fd, dev_t dev, ino_t ino);

  std::string path_;
  UniqueFd fd_;    // empty when nested in a lock this thread already holds
  dev_t dev_ = 0;
  ino_t ino_ = 0;
};

}  // namespace ballast
