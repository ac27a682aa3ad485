#include "snapshot/send.hpp"

#include <btrfsutil.h>
#include <linux/btrfs.h>
#include <sys/ioctl.h>

#include <cerrno>

#include "common/file.hpp"

namespace ballast::snapshot {

namespace {

Result<uint64_t> read_only_subvol_id(const std::string& path, const char* role) {
  uint64_t id = 0;
  auto e = btrfs_util_subvolume_id(path.c_str(), &id);
  if (e != BTRFS_UTIL_OK)
    return fail_errno("send.not-subvolume", errno, std::string(role) + " " + path + " is not a Btrfs subvolume");
  bool ro = false;
  e = btrfs_util_get_subvolume_read_only(path.c_str(), &ro);
  if (e != BTRFS_UTIL_OK) return fail_errno("send.not-subvolume", errno, "cannot read the flags of " + path);
  if (!ro) return fail("send.not-read-only", std::string(role) + " " + path + " is not read-only");
  return id;
}

}  // namespace

Status send(const SendOptions& opts, int out_fd) {
  int proto = opts.protocol;
  if (proto < 0 || proto > 2) return fail("send.bad-protocol", "protocol must be 1 or 2, not " + std::to_string(proto));
  if (opts.compressed_data) {
    if (proto == 1) return fail("send.bad-protocol", "--compressed-data needs protocol 2");
    proto = 2;
  }
  BALLAST_TRY(read_only_subvol_id(opts.subvolume, "subvolume"));
  std::vector<uint64_t> clones;
  uint64_t parent_id = 0;
  if (!opts.parent.empty()) {
    parent_id = BALLAST_TRY(read_only_subvol_id(opts.parent, "parent"));
    // The parent's extents are always fair game for sharing, as with `btrfs send -p`.
    clones.push_back(parent_id);
  }
  for (const auto& c : opts.clone_sources) clones.push_back(BALLAST_TRY(read_only_subvol_id(c, "clone source")));

  auto fd = BALLAST_TRY(open_dir(opts.subvolume));
  btrfs_ioctl_send_args args{};
  args.send_fd = out_fd;
  args.clone_sources_count = clones.size();
  args.clone_sources = clones.empty() ? nullptr : reinterpret_cast<__u64*>(clones.data());
  args.parent_root = parent_id;
  if (proto != 0) {
    args.flags |= BTRFS_SEND_FLAG_VERSION;
    args.version = static_cast<__u32>(proto);
  }
  if (opts.compressed_data) args.flags |= BTRFS_SEND_FLAG_COMPRESSED;
  if (::ioctl(fd.get(), BTRFS_IOC_SEND, &args) != 0) {
    int err = errno;
    return fail_errno(err == EINVAL && proto != 0 ? "send.bad-protocol" : "send.failed", err,
                      "the kernel could not send " + opts.subvolume);
  }
  return ok();
}

}  // namespace ballast::snapshot
