#include "agent/host/install.hpp"

#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <random>

#include "agent/host/stage.hpp"
#include "boot/boot_control.hpp"
#include "common/file.hpp"
#include "common/json_member.hpp"
#include "common/log.hpp"
#include "common/process.hpp"
#include "images/uki.hpp"
#include "images/vhd.hpp"
#include "snapshot/host_layout.hpp"

namespace ballast::host {

namespace {

constexpr const char* kRootPartitionType = "4f68bce3-e8cd-4db1-96e7-fbcaf984b709";  // Linux root (x86-64)

struct Partition {
  uint64_t start = 0, size = 0;  // bytes
};

// Owns a loop device and a mount of it; undone in reverse on every path out.
class MountedLoop {
 public:
  ~MountedLoop() {
    if (!mount_point_.empty()) {
      ::sync();
      if (::umount2(mount_point_.c_str(), 0) != 0) ::umount2(mount_point_.c_str(), MNT_DETACH);
      ::rmdir(mount_point_.c_str());
    }
    if (!device_.empty()) (void)run_process({"losetup", "--detach", device_});
  }
  Status attach(const std::string& file, const Partition& p) {
    auto r = BALLAST_TRY(run_checked({"losetup", "--find", "--show", "--offset", std::to_string(p.start), "--sizelimit",
                                      std::to_string(p.size), file}));
    device_ = r.out.substr(0, r.out.find('\n'));
    return ok();
  }
  Status mount_btrfs(const std::string& dir) {
    if (::mount(device_.c_str(), dir.c_str(), "btrfs", 0, nullptr) != 0)
      return fail_errno("install.mount", errno, "cannot mount " + device_);
    mount_point_ = dir;
    return ok();
  }
  const std::string& device() const { return device_; }

 private:
  std::string device_, mount_point_;
};

Status install_systemd_boot(const std::string& esp, const std::string& efi_binary) {
  auto binary = BALLAST_TRY(with_context(read_file(efi_binary, 16 << 20), "reading systemd-boot (apt-get install systemd-boot)"));
  BALLAST_CHECK(write_file_atomic(path_join(esp, "EFI/BOOT/BOOTX64.EFI"), binary));
  BALLAST_CHECK(write_file_atomic(path_join(esp, "EFI/systemd/systemd-bootx64.efi"), binary));
  // No `default`: naming a counted entry would make systemd-boot boot it forever, so the order
  // (sort-key and version) decides, and the newest good entry is the fallback.
  return write_file_atomic(path_join(esp, "loader/loader.conf"), "timeout 3\nconsole-mode keep\neditor no\n");
}

Result<std::vector<Partition>> read_partitions(const std::string& disk) {
  auto r = BALLAST_TRY(run_checked({"sfdisk", "--json", disk}));
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  const auto unreadable = [&] { return fail("install.partitions", "cannot read the partition table of " + disk); };
  if (!j.is_object() || !j.contains("partitiontable")) return unreadable();
  const auto& table = j["partitiontable"];
  const int64_t sector = integer_member(table, "sectorsize", 512);
  if (sector <= 0 || !table.contains("partitions") || !table["partitions"].is_array()) return unreadable();
  std::vector<Partition> parts;
  for (const auto& p : table["partitions"]) {
    const int64_t start = integer_member(p, "start", -1), size = integer_member(p, "size", -1);
    if (start < 0 || size < 0) return unreadable();
    const auto bytes = [&](int64_t sectors) { return static_cast<uint64_t>(sectors) * static_cast<uint64_t>(sector); };
    parts.push_back({bytes(start), bytes(size)});
  }
  return parts;
}

std::string random_volume_id() {
  std::random_device rd;
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%08X", rd());
  return buf;
}

}  // namespace

Result<InstallResult> install_to_targets(const std::string& sysroot, const std::string& esp,
                                         const std::string& state_dir, const std::string& systemd_boot_efi,
                                         const ReleaseSource& release, const std::string& esp_uuid) {
  snapshot::HostLayout host(sysroot);
  BALLAST_CHECK(snapshot::ensure_layout(host));
  for (const char* d : {"EFI/BOOT", "EFI/systemd", "loader/entries"}) BALLAST_CHECK(make_dirs(path_join(esp, d)));
  auto efivars = BALLAST_TRY(make_temp_dir("ballast-install-efivars"));  // nothing to read at install time
  boot::BootPaths paths;
  paths.esp_path = esp;
  paths.efivars_path = efivars;
  paths.cmdline_path = "/dev/null";
  auto boot = boot::make_systemd_boot_control(paths);
  StageContext ctx{host, *boot, state_dir, std::nullopt};
  StageRequest req;
  req.version = release.version;
  req.chain_before = release.chain_before;
  req.open_stream = release.open_stream;
  req.needed_bytes = release.needed_bytes;
  req.cmdline = release.cmdline;
  if (!esp_uuid.empty()) req.esp_fstab = "UUID=" + esp_uuid + " /efi vfat umask=0077 0 2";
  auto staged = stage_release(ctx, req);
  (void)remove_tree(efivars);
  if (!staged) return tl::unexpected(staged.error());
  // A release built for Secure Boot carries its signed systemd-boot: that one goes on the ESP, or
  // the firmware would refuse the loader before any signed UKI is reached.
  const std::string signed_loader = host.deployment(release.version) + images::kSignedLoaderPath;
  BALLAST_CHECK(install_systemd_boot(esp, path_exists(signed_loader) ? signed_loader : systemd_boot_efi));
  // A fresh host has nothing to fall back to: its first entry is good from the start.
  BALLAST_CHECK(boot->bless(release.version));
  auto root_uuid = BALLAST_TRY(snapshot::filesystem_uuid(sysroot));
  return InstallResult{release.version, std::move(root_uuid), esp_uuid};
}

Result<InstallResult> install_to_disk(const InstallOptions& opts, const ReleaseSource& release) {
  const bool vhd = opts.format == DiskFormat::vhd;
  struct stat st;
  bool exists = ::stat(opts.disk.c_str(), &st) == 0;
  if (exists && vhd && !S_ISREG(st.st_mode))
    return fail("install.vhd-not-a-file", opts.disk + " is not a regular file: a VHD is written to a disk image file");
  if (!exists) {
    if (opts.size == 0) return fail("install.size", opts.disk + " does not exist: give --size to create an image");
    if (opts.size < opts.esp_size + (256ull << 20))
      return fail("install.size", "--size must leave at least 256 MiB for the root filesystem after the ESP");
    FILE* f = std::fopen(opts.disk.c_str(), "wx");
    if (!f) return fail_errno("install.disk", errno, "cannot create " + opts.disk);
    std::fclose(f);
    const uint64_t size = vhd ? images::vhd_disk_size(opts.size) : opts.size;
    if (::truncate(opts.disk.c_str(), static_cast<off_t>(size)) != 0) {
      const int err = errno;
      ::unlink(opts.disk.c_str());
      return fail_errno("install.disk", err, "cannot size " + opts.disk);
    }
  } else if (!opts.force) {
    auto probe = run_process({"sfdisk", "--dump", opts.disk});
    if (probe && probe->success() && probe->out.find("label:") != std::string::npos)
      return fail("install.disk-in-use", opts.disk + " already has a partition table; --force overwrites it");
  }
  if (exists && vhd) {
    // Overwriting a VHD: its raw part is the disk; the footer is written anew at the end.
    if (auto disk = BALLAST_TRY(images::read_fixed_vhd(opts.disk)); disk && ::truncate(opts.disk.c_str(), static_cast<off_t>(*disk)) != 0)
      return fail_errno("install.disk", errno, "cannot cut the old VHD footer off " + opts.disk);
  }
  bool created = !exists;
  auto remove_created = [&] {
    if (created) ::unlink(opts.disk.c_str());
  };

  std::string esp_mib = std::to_string(opts.esp_size >> 20);
  auto parted = run_checked({"sgdisk", "--zap-all", "--new=1:1MiB:+" + esp_mib + "MiB", "--typecode=1:EF00",
                             "--change-name=1:ESP", "--new=2:0:0", std::string("--typecode=2:") + kRootPartitionType,
                             "--change-name=2:ballast-root", opts.disk});
  if (!parted) {
    remove_created();
    return tl::unexpected(parted.error());
  }
  auto parts = read_partitions(opts.disk);
  if (!parts || parts->size() != 2) {
    remove_created();
    return fail("install.partitions", "the new partition table of " + opts.disk + " is not as written");
  }
  const Partition esp = (*parts)[0], root = (*parts)[1];
  std::string vol = random_volume_id();
  std::string esp_uuid = vol.substr(0, 4) + "-" + vol.substr(4);

  auto result = [&]() -> Result<InstallResult> {
    // One-sector clusters keep a small ESP above FAT32's minimum cluster count.
    BALLAST_CHECK(run_checked({"mkfs.vfat", "-F", "32", "-s", "1", "-n", "ESP", "-i", vol, "--offset", std::to_string(esp.start / 512),
                               opts.disk, std::to_string(esp.size / 1024)}));
    auto work = BALLAST_TRY(make_temp_dir("ballast-install"));
    // Declared before the mount so that it runs after the unmount.
    struct Cleanup {
      std::string dir;
      ~Cleanup() { (void)remove_tree(dir); }
    } cleanup{work};
    MountedLoop loop;
    BALLAST_CHECK(loop.attach(opts.disk, root));
    BALLAST_CHECK(run_checked({"mkfs.btrfs", "-q", "-f", "-L", "ballast-root", loop.device()}));
    std::string sysroot = path_join(work, "sysroot"), esp_dir = path_join(work, "esp");
    BALLAST_CHECK(make_dirs(sysroot));
    BALLAST_CHECK(make_dirs(esp_dir));
    BALLAST_CHECK(loop.mount_btrfs(sysroot));
    std::string state = opts.state_dir.empty() ? path_join(work, "state") : opts.state_dir;
    auto installed = BALLAST_TRY(install_to_targets(sysroot, esp_dir, state, opts.systemd_boot_efi, release, esp_uuid));
    // Write the assembled ESP into the FAT partition.
    std::string fat = opts.disk + "@@" + std::to_string(esp.start);
    std::vector<std::string> argv = {"mcopy", "-s", "-o", "-i", fat};
    for (const auto& n : BALLAST_TRY(list_dir(esp_dir))) argv.push_back(path_join(esp_dir, n));
    argv.push_back("::/");
    // mtools checks the geometry against the whole image; the partition is reached by offset.
    BALLAST_CHECK(with_context(run_checked(argv, SpawnOptions{.extra_env = {"MTOOLS_SKIP_CHECK=1"}}).map([](const ProcessResult&) {}),
                               "writing the ESP"));
    return installed;
  }();
  // The footer goes on after the root filesystem is unmounted and its loop device gone.
  if (result && vhd) {
    if (auto footer = images::append_vhd_footer(opts.disk); !footer) result = tl::unexpected(footer.error());
  }
  if (!result) remove_created();
  return result;
}

}  // namespace ballast::host
