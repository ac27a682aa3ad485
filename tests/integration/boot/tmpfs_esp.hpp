// A tmpfs mounted on a fresh directory, standing in for the ESP: bootctl wants a file-system root
// (vfat cannot be mounted here), and a small size makes a full ESP. Unmounted and removed by the
// destructor. Also: paths of the ballast binary and an efivars directory beside the mount.
#pragma once

#include <sys/mount.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <string>

#include "common/file.hpp"

namespace ballast::boot::testing {

class TmpfsEsp {
 public:
  explicit TmpfsEsp(const std::string& size = "16m") {
    auto dir = make_temp_dir("ballast-esp");
    REQUIRE(dir);
    root_ = *dir;
    esp_ = path_join(root_, "esp");
    REQUIRE(make_dirs(esp_));
    REQUIRE(make_dirs(efivars()));
    std::string opts = "size=" + size + ",mode=0755";
    REQUIRE(::mount("tmpfs", esp_.c_str(), "tmpfs", 0, opts.c_str()) == 0);
    mounted_ = true;
  }
  ~TmpfsEsp() {
    if (mounted_) ::umount2(esp_.c_str(), MNT_DETACH);
    (void)remove_tree(root_);
  }
  TmpfsEsp(const TmpfsEsp&) = delete;
  TmpfsEsp& operator=(const TmpfsEsp&) = delete;

  const std::string& esp() const { return esp_; }
  const std::string& root() const { return root_; }
  std::string efivars() const { return path_join(root_, "efivars"); }
  std::string cmdline() const { return path_join(root_, "cmdline"); }
  // A file of `bytes` bytes beside the ESP (not on it).
  std::string file(const std::string& name, size_t bytes, char fill = 'k') const {
    std::string p = path_join(root_, name);
    REQUIRE(write_file_atomic(p, std::string(bytes, fill)));
    return p;
  }

 private:
  std::string root_, esp_;
  bool mounted_ = false;
};

// The `ballast` binary of this build tree (tests/integration-tests → agent/ballast).
inline std::string ballast_binary() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  REQUIRE(n > 0);
  std::string self(buf, static_cast<size_t>(n));
  return self.substr(0, self.rfind('/')) + "/../agent/ballast";
}

}  // namespace ballast::boot::testing
