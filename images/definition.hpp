// Image definitions: TOML files in images/ describing a base, overlays laid on top, extra files,
// services, kernel, os-release fields and the ballast trust anchor and config to embed.
// Relative paths in a definition are relative to the definition file's directory.
#pragma once

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace ballast::images {

enum class BaseKind { busybox, debootstrap, directory, tarball };

struct BaseSpec {
  BaseKind kind = BaseKind::busybox;
  std::string busybox = "/bin/busybox";        // busybox: the static binary to install
  std::string suite = "bookworm";              // debootstrap
  std::string variant = "minbase";
  std::string mirror = "http://deb.debian.org/debian";
  std::vector<std::string> packages;
  // Installed with apt-get inside the tree after debootstrap: apt may replace what debootstrap
  // resolved (dracut in place of initramfs-tools, which debootstrap always picks for the kernel).
  std::vector<std::string> packages_after;
  // debootstrap: files (absolute path in the image -> a file next to the definition) written into the
  // tree before packages_after is installed, so that its maintainer scripts read them (dracut's
  // configuration, which shapes the initrd it builds on installation). Part of the cache key.
  std::map<std::string, std::string> files_before;
  std::string path;                            // directory / tarball
};

struct FileSpec {
  std::string path;      // absolute inside the image
  std::string content;   // or `source`
  std::string source;    // a file next to the definition
  mode_t mode = 0644;
  uid_t uid = 0;
  gid_t gid = 0;
};

struct KernelSpec {
  std::string version;      // <kver> of /usr/lib/modules/<kver>/; empty: found in the base
  bool stand_in = false;    // write labelled stand-in files: for sandbox hosts that never boot them
  std::string cmdline;      // written to /usr/lib/kernel/cmdline
  bool uki = false;         // also assemble a unified kernel image (always with a signing key)
};

struct ImageDefinition {
  std::string file;                 // where it was read from
  std::string name;                 // IMAGE_ID
  std::string description;
  BaseSpec base;
  std::vector<std::string> overlays;  // absolute paths, applied in order
  std::vector<FileSpec> files;
  std::vector<std::string> enable_services;
  KernelSpec kernel;
  std::map<std::string, std::string> os_release;  // extra fields (NAME, PRETTY_NAME, …)
  std::string root_json;            // copied to /usr/lib/ballast/root.json
  std::string config;               // copied to /usr/lib/ballast/config.d/50-image.toml
  bool install_ballast = false;     // copy this build's ballast binary and units/ into the image
};

Result<ImageDefinition> load_definition(const std::string& path);
Result<ImageDefinition> parse_definition(std::string_view text, const std::string& file);

}  // namespace ballast::images
