// The host's Btrfs layout (DESIGN.md "The host"): where slots, deployments and partial work live,
// and the subvolume-level operations on them. Paths are below `sysroot`, the top level (subvolid 5).
//
//   @ballast/slots/<v>       read-only, received: the pristine image, parent of future deltas
//   @ballast/deploy/<v>      read-only snapshot of the slot: what boots
//   @ballast/deploy/<v>/etc  a nested writable subvolume: the deployment's /etc
//   @ballast/partial/…       scratch space; anything here at start-up is garbage
//   @var                     persistent /var
//
// A subvolume under construction lives beside its final place under a hidden name
// (slots/.ballast-*, deploy/.ballast-*) and is renamed into place once read-only: Btrfs refuses
// to move a read-only subvolume to another directory (EROFS: it would rewrite its ".."), and a
// subvolume must never appear under its final name before it is complete.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "common/version.hpp"

namespace ballast::snapshot {

class HostLayout {
 public:
  explicit HostLayout(std::string sysroot) : sysroot_(std::move(sysroot)) {}
  const std::string& sysroot() const { return sysroot_; }
  std::string root() const { return sysroot_ + "/@ballast"; }
  std::string slots_dir() const { return root() + "/slots"; }
  std::string deploy_dir() const { return root() + "/deploy"; }
  std::string partial_dir() const { return root() + "/partial"; }
  std::string var() const { return sysroot_ + "/@var"; }
  std::string slot(const Version& version) const { return slots_dir() + "/" + version.str(); }
  std::string deployment(const Version& version) const { return deploy_dir() + "/" + version.str(); }
  // The subvolume path of a deployment relative to the top level, for rootflags=subvol=.
  static std::string deployment_subvol(const Version& version) { return "@ballast/deploy/" + version.str(); }

 private:
  std::string sysroot_;
};

// Creates @ballast/{slots,deploy,partial} and the @var subvolume when missing.
Status ensure_layout(const HostLayout& host);

// Deletes what an interrupted stage left: everything under @ballast/partial and every hidden
// (.ballast-*) entry in slots/ and deploy/. Returns what it removed.
Result<std::vector<std::string>> clean_partial(const HostLayout& host);

// The versions of the slots and deployments present; a visible name that is not a version is no
// release's and is left out.
Result<std::vector<Version>> list_slots(const HostLayout& host);
Result<std::vector<Version>> list_deployments(const HostLayout& host);

// The filesystem UUID of the Btrfs filesystem holding `path`.
Result<std::string> filesystem_uuid(const std::string& path);

// IMAGE_VERSION from a tree's /usr/lib/os-release (empty when absent).
Result<std::string> image_version_of(const std::string& tree);
// The one check that an image is release `version`: its os-release says IMAGE_VERSION=<version>
// ("image.wrong-version" otherwise). A host applies it to what it received before it keeps it as
// a slot, `ballast repo add` to the subvolume before it publishes it.
Status check_image_version(const std::string& tree, const Version& version);

struct DeploymentOptions {
  Version version;
  std::optional<Version> previous;  // the booted version whose /etc changes are carried
  std::string var_fstab;     // line for /var, written into the deployment's /etc/fstab
  std::string esp_fstab;     // line for the ESP
};

// Snapshots slots/<v> into deploy/<v> with a nested writable /etc subvolume holding the image's
// /etc merged with the previous deployment's local changes, fstab lines added, then makes the
// deployment read-only. Built as deploy/.ballast-deploy-<v> and renamed into place last.
Status create_deployment(const HostLayout& host, const DeploymentOptions& opts);

// Deletes a deployment (with its nested /etc) and/or a slot; missing ones are fine.
Status delete_deployment(const HostLayout& host, const Version& version);
Status delete_slot(const HostLayout& host, const Version& version);

}  // namespace ballast::snapshot
