// `ballast install`: makes a bootable host from a release, onto a disk (or disk image) or into
// already-mounted targets. This is how VM images are made.
//
// Onto a disk: a GPT with an ESP (FAT32) and a Btrfs root partition; systemd-boot on the ESP;
// the release staged into the Btrfs layout and blessed (a fresh host has nothing to fall back
// to); @var; loader.conf. The host kernel here cannot mount vfat, so the ESP is assembled in a
// directory and written into the FAT partition with mtools; partitions are reached by offset.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "agent/host/stage.hpp"
#include "common/byte_source.hpp"
#include "common/result.hpp"
#include "common/version.hpp"

namespace ballast::host {

struct ReleaseSource {
  Version version;
  std::function<Result<std::unique_ptr<ByteSource>>()> open_stream;  // the full stream, or the chain's last delta
  uint64_t needed_bytes = 0;
  std::string cmdline;  // the release's signed kernel command line; empty: the image's own
  // An earlier release's full stream and the deltas after it, received into scratch subvolumes
  // first when the plan says so (StageRequest::chain_before); empty for the release's own full stream.
  std::vector<ChainStep> chain_before = {};
};

// A disk image file is raw, or a fixed VHD (raw, a whole number of MiB, then the VHD footer),
// the format Azure takes.
enum class DiskFormat { raw, vhd };

struct InstallOptions {
  std::string disk;                   // a block device or an image file (created when missing)
  uint64_t size = 0;                  // size of a new image file (a VHD's is rounded up to a whole MiB)
  DiskFormat format = DiskFormat::raw;
  uint64_t esp_size = 256ull << 20;
  bool force = false;                 // overwrite a disk that already has a partition table
  std::string systemd_boot_efi = "/usr/lib/systemd/boot/efi/systemd-bootx64.efi";
  std::string state_dir;              // where the install's own journal goes (a temp dir when empty)
};

struct InstallResult {
  Version version;
  std::string root_uuid;  // the Btrfs filesystem
  std::string esp_uuid;   // the FAT volume id, XXXX-XXXX
};

Result<InstallResult> install_to_disk(const InstallOptions& opts, const ReleaseSource& release);

// Into mounted targets: `sysroot` (a Btrfs top level) and `esp` (a directory or mounted ESP).
Result<InstallResult> install_to_targets(const std::string& sysroot, const std::string& esp,
                                         const std::string& state_dir, const std::string& systemd_boot_efi,
                                         const ReleaseSource& release, const std::string& esp_uuid);

}  // namespace ballast::host
