// `ballast image build`: an image definition → a new read-only Btrfs subvolume holding the OS
// tree, with /usr/lib/os-release (IMAGE_ID, IMAGE_VERSION), the kernel and initrd normalised to
// /usr/lib/modules/<kver>/{vmlinuz,initrd.img}, and the requested services enabled.
// Reproducible where the base allows: every timestamp is SOURCE_DATE_EPOCH, inputs are sorted.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/result.hpp"
#include "common/version.hpp"
#include "images/definition.hpp"
#include "images/uki.hpp"

namespace ballast::images {

struct BuildOptions {
  Version version;                          // IMAGE_VERSION
  std::string output;                       // the subvolume to create; must not exist
  std::string parent;                       // the previous release's image: built over a snapshot of
                                            // it, changing only what differs, for minimal deltas
  std::optional<int64_t> source_date_epoch; // default: $SOURCE_DATE_EPOCH, else the definition's mtime
  std::string cache_dir = "/var/cache/ballast/images";  // debootstrap results, keyed by their inputs
  std::string ballast_binary;               // with [ballast] install: the binary to copy
  std::string units_dir;                    // with [ballast] install: unit files to copy
  std::optional<SigningKey> secure_boot;    // sign the UKI and ship a signed systemd-boot (implies a UKI)
  std::string stub = kDefaultStub;          // systemd's EFI stub the UKI is assembled on
  std::string systemd_boot = kDefaultSystemdBoot;  // the loader signed into the release
};

struct BuiltImage {
  std::string path;
  std::string name;
  Version version;
  std::string kernel_version;
  int64_t source_date_epoch = 0;
  bool uki = false;      // kUkiPath is in the image
  bool signed_ = false;  // the UKI is signed and kSignedLoaderPath is in the image
};

Result<BuiltImage> build_image(const ImageDefinition& def, const BuildOptions& opts);

// Makes sure the definition's slow base (debootstrap) is in the cache, so a later build starts at
// once: a build machine or a test run warms it while it does other work. Returns the cached file,
// or "" when the base kind needs no cache.
Result<std::string> prepare_base(const ImageDefinition& def, const std::string& cache_dir);

}  // namespace ballast::images
