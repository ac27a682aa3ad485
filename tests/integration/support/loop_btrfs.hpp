// A fresh Btrfs filesystem on a loop device for one test: sparse file → losetup → mkfs.btrfs →
// mount. Torn down (unmount, detach, delete) by the destructor, by SIGINT/SIGTERM/SIGHUP, and —
// for runs killed outright — by sweep_stale_loop_fixtures(), which tests/run calls after the suite.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace ballast::testing {

// Every fixture lives under a directory with this prefix in $TMPDIR (or /tmp).
inline constexpr const char* kLoopFixturePrefix = "ballast-loop-";

class LoopBtrfs {
 public:
  struct Options {
    uint64_t size_bytes = 1ull << 30;   // sparse: costs only what is written
    std::vector<std::string> mkfs_args;  // extra mkfs.btrfs arguments
    std::string mount_options;           // e.g. "compress=zstd"
  };

  static Result<std::unique_ptr<LoopBtrfs>> create();
  static Result<std::unique_ptr<LoopBtrfs>> create(const Options& opts);
  ~LoopBtrfs();
  LoopBtrfs(const LoopBtrfs&) = delete;
  LoopBtrfs& operator=(const LoopBtrfs&) = delete;

  const std::string& mount_point() const { return mount_point_; }  // the top level (subvolid 5)
  const std::string& device() const { return device_; }
  const std::string& image() const { return image_; }
  const std::string& base_dir() const { return base_dir_; }  // scratch space beside the image

  // Unmounts, detaches and deletes; idempotent. The destructor calls it.
  void teardown();

 private:
  LoopBtrfs() = default;
  std::string base_dir_, image_, device_, mount_point_;
  bool mounted_ = false;
};

// Unmounts, detaches and deletes whatever fixtures earlier (killed) runs left behind.
// Returns how many loop devices it detached.
int sweep_stale_loop_fixtures();

// Loop devices and mounts whose backing file or mount point lies under a fixture directory.
std::vector<std::string> live_fixture_loop_devices();
std::vector<std::string> live_fixture_mounts();

}  // namespace ballast::testing
