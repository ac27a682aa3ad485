#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>

#include <filesystem>
#include <optional>
#include <utility>
#include <nlohmann/json.hpp>

#include "agent/host/install.hpp"
#include "common/file.hpp"
#include "common/process.hpp"
#include "images/builder.hpp"
#include "images/vhd.hpp"
#include "snapshot/send.hpp"
#include "snapshot/subvolume.hpp"
#include "tests/integration/support/ballast_cli.hpp"
#include "tests/integration/support/loop_btrfs.hpp"
#include "tests/version_literal.hpp"

using namespace ballast;
using ballast::testing::LoopBtrfs;

namespace {
using namespace ballast::version_literals;

struct Published {
  std::unique_ptr<LoopBtrfs> fs;
  std::string stream;
};

Published publish_minimal(const std::string& version, std::optional<images::SigningKey> key = {}) {
  Published p;
  auto f = LoopBtrfs::create();
  REQUIRE(f);
  p.fs = std::move(*f);
  auto def = images::load_definition(std::string(BALLAST_SOURCE_ROOT) + "/images/minimal.toml");
  REQUIRE(def);
  images::BuildOptions opts;
  opts.version = make_version(version);
  opts.output = p.fs->mount_point() + "/minimal-" + version;
  opts.secure_boot = std::move(key);
  REQUIRE(images::build_image(*def, opts));
  p.stream = p.fs->base_dir() + "/full";
  UniqueFd out(::open(p.stream.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  snapshot::SendOptions so;
  so.subvolume = opts.output;
  REQUIRE(snapshot::send(so, out.get()));
  return p;
}

host::ReleaseSource source(const std::string& version, const std::string& stream) {
  return host::ReleaseSource{make_version(version), [stream]() { return open_file_source(stream); }, 0, ""};
}

std::string esp_file(const std::string& image, uint64_t offset, const std::string& path) {
  auto r = run_process({"mtype", "-i", image + "@@" + std::to_string(offset), "::" + path},
                       SpawnOptions{.extra_env = {"MTOOLS_SKIP_CHECK=1"}});
  REQUIRE(r);
  return r->success() ? r->out : "<missing>";
}

// Installs the published 1.0 onto a fresh 1 GiB disk image; the image's path and the result.
std::pair<std::string, host::InstallResult> install_fresh(const Published& published) {
  std::string image = published.fs->base_dir() + "/target.img";
  host::InstallOptions o;
  o.disk = image;
  o.size = 1ull << 30;
  auto installed = host::install_to_disk(o, source("1.0", published.stream));
  if (!installed) FAIL(installed.error().describe());
  return {image, *installed};
}

}  // namespace

TEST_CASE("ballast install makes a disk image with a FAT ESP holding systemd-boot and a Btrfs root holding the release") {
  auto published = publish_minimal("1.0");
  auto [image, installed] = install_fresh(published);
  auto table = run_checked({"sfdisk", "--json", image});
  REQUIRE(table);
  auto parts = nlohmann::json::parse(table->out)["partitiontable"]["partitions"];
  REQUIRE(parts.size() == 2);
  CHECK(parts[0]["type"] == "C12A7328-F81F-11D2-BA4B-00A0C93EC93B");  // EFI System
  CHECK(parts[1]["type"] == "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709");  // Linux root (x86-64)
  uint64_t esp_off = parts[0]["start"].get<uint64_t>() * 512, root_off = parts[1]["start"].get<uint64_t>() * 512;
  uint64_t root_size = parts[1]["size"].get<uint64_t>() * 512;

  // The ESP, read with mtools without mounting it.
  auto efi = read_file("/usr/lib/systemd/boot/efi/systemd-bootx64.efi", 16 << 20);
  REQUIRE(efi);
  CHECK(esp_file(image, esp_off, "/EFI/BOOT/BOOTX64.EFI") == *efi);
  std::string loader = esp_file(image, esp_off, "/loader/loader.conf");
  CHECK_THAT(loader, Catch::Contains("timeout"));
  CHECK_THAT(loader, !Catch::Contains("default"));
  std::string entry = esp_file(image, esp_off, "/loader/entries/ballast-1.0.conf");  // blessed: no counter
  CHECK_THAT(entry, Catch::Contains("options root=UUID=" + installed.root_uuid + " rootflags=subvol=@ballast/deploy/1.0 ro"));
  CHECK_THAT(entry, Catch::Contains("sort-key ballast"));
  CHECK_THAT(esp_file(image, esp_off, "/ballast/1.0/vmlinuz"), Catch::StartsWith("ballast stand-in kernel"));

  // The Btrfs root.
  auto lo = run_checked({"losetup", "--find", "--show", "--offset", std::to_string(root_off), "--sizelimit",
                         std::to_string(root_size), image});
  REQUIRE(lo);
  std::string dev = lo->out.substr(0, lo->out.find('\n'));
  std::string mnt = published.fs->base_dir() + "/root";
  REQUIRE(make_dirs(mnt));
  REQUIRE(::mount(dev.c_str(), mnt.c_str(), "btrfs", MS_RDONLY, nullptr) == 0);
  CHECK(*snapshot::is_read_only(mnt + "/@ballast/slots/1.0"));
  CHECK(*snapshot::is_read_only(mnt + "/@ballast/deploy/1.0"));
  CHECK(*snapshot::is_subvolume(mnt + "/@var"));
  auto fstab = read_file(mnt + "/@ballast/deploy/1.0/etc/fstab");
  REQUIRE(fstab);
  CHECK_THAT(*fstab, Catch::Contains("UUID=" + installed.esp_uuid + " /efi vfat umask=0077 0 2"));
  CHECK_THAT(*fstab, !Catch::Contains("nofail"));
  // The deployment is read-only when booted: the ESP's mount point must already be there.
  CHECK(std::filesystem::is_directory(mnt + "/@ballast/deploy/1.0/efi"));
  ::umount(mnt.c_str());
  (void)run_process({"losetup", "--detach", dev});
}

TEST_CASE("a failed install removes the disk image it created and leaves no loop device") {
  auto published = publish_minimal("1.0");
  std::string image = published.fs->base_dir() + "/target.img";
  host::InstallOptions o;
  o.disk = image;
  o.size = 1ull << 30;
  auto installed = host::install_to_disk(o, source("2.0", published.stream));  // the stream holds 1.0
  REQUIRE_FALSE(installed);
  CHECK(installed.error().code == "image.wrong-version");
  CHECK_FALSE(path_exists(image));
  auto loops = run_checked({"losetup", "--list", "--noheadings", "--output", "BACK-FILE"});
  REQUIRE(loops);
  CHECK_THAT(loops->out, !Catch::Contains(image));
}

TEST_CASE("install refuses a disk that already has a partition table unless forced") {
  auto published = publish_minimal("1.0");
  std::string image = published.fs->base_dir() + "/target.img";
  host::InstallOptions o;
  o.disk = image;
  o.size = 1ull << 30;
  REQUIRE(host::install_to_disk(o, source("1.0", published.stream)));
  auto again = host::install_to_disk(o, source("1.0", published.stream));
  REQUIRE_FALSE(again);
  CHECK(again.error().code == "install.disk-in-use");
  CHECK(path_exists(image));  // an existing disk is never deleted
  o.force = true;
  CHECK(host::install_to_disk(o, source("1.0", published.stream)));
}

TEST_CASE("ballast install takes the release from a TUF repository") {
  auto published = publish_minimal("1.0");
  const std::string ballast = std::string(BALLAST_BUILD_ROOT) + "/agent/ballast";
  const std::string dir = published.fs->base_dir(), repo = dir + "/repo", keys = dir + "/keys";
  REQUIRE(run_checked({ballast, "repo", "init", repo, "--keys", keys}));
  REQUIRE(run_checked({ballast, "repo", "add", repo, "--keys", keys, "--version", "1.0", "--subvolume",
                       published.fs->mount_point() + "/minimal-1.0", "--zstd-level", "3"}));
  std::string image = dir + "/from-repo.img";
  auto r = run_process({ballast, "--config-dir", dir + "/no-config", "--json", "install", "--disk", image, "--size", "1G",
                        "--repo", "file://" + repo, "--root", repo + "/metadata/1.root.json"});
  REQUIRE(r);
  INFO(r->err);
  REQUIRE(r->success());
  auto out = nlohmann::json::parse(r->out);
  CHECK(out["version"] == "1.0");
  auto table = nlohmann::json::parse(run_checked({"sfdisk", "--json", image})->out);
  uint64_t esp_off = table["partitiontable"]["partitions"][0]["start"].get<uint64_t>() * 512;
  CHECK_THAT(esp_file(image, esp_off, "/loader/entries/ballast-1.0.conf"), Catch::Contains("ballast.version=1.0"));

  // A release published without a full stream installs as 1.0's full stream and the delta after it.
  auto def = images::load_definition(std::string(BALLAST_SOURCE_ROOT) + "/images/minimal.toml");
  REQUIRE(def);
  images::BuildOptions next;
  next.version = make_version("1.1");
  next.output = published.fs->mount_point() + "/minimal-1.1";
  REQUIRE(images::build_image(*def, next));
  auto deltas_only = run_process({ballast, "repo", "add", repo, "--keys", keys, "--version", "1.1", "--subvolume", next.output,
                                  "--no-full", "--delta-from", "1.0", "--delta-from-subvolume",
                                  published.fs->mount_point() + "/minimal-1.0", "--zstd-level", "3"});
  REQUIRE(deltas_only);
  INFO(deltas_only->err);
  REQUIRE(deltas_only->success());
  CHECK_THAT(deltas_only->out, !Catch::Contains(" full:"));
  std::string chained = dir + "/chained.img";
  auto from_chain = run_process({ballast, "--config-dir", dir + "/no-config", "install", "--disk", chained, "--size", "1G",
                                 "--repo", "file://" + repo, "--root", repo + "/metadata/1.root.json"});
  REQUIRE(from_chain);
  INFO(from_chain->err);
  REQUIRE(from_chain->success());
  CHECK_THAT(from_chain->err, Catch::Contains("full stream of 1.0 and 1 delta 1.0 -> 1.1"));
  CHECK_THAT(from_chain->out, Catch::Contains("installed 1.1"));
  auto chained_table = nlohmann::json::parse(run_checked({"sfdisk", "--json", chained})->out);
  uint64_t chained_esp = chained_table["partitiontable"]["partitions"][0]["start"].get<uint64_t>() * 512;
  CHECK_THAT(esp_file(chained, chained_esp, "/loader/entries/ballast-1.1.conf"), Catch::Contains("ballast.version=1.1"));

  // A repository that does not hold the requested version is refused before anything is made.
  std::string missing = dir + "/missing.img";
  auto refused = run_process({ballast, "--config-dir", dir + "/no-config", "install", "--disk", missing, "--size", "1G",
                              "--repo", "file://" + repo, "--root", repo + "/metadata/1.root.json", "--version", "9.9"});
  REQUIRE(refused);
  CHECK(refused->exit_code == 1);
  CHECK_THAT(refused->err, Catch::Contains("fetch.no-release"));
  CHECK_FALSE(path_exists(missing));
}

TEST_CASE("ballast install puts a Secure Boot release's signed systemd-boot on the ESP, not the unsigned one") {
  auto keys = make_temp_dir("ballast-install-keys");
  REQUIRE(keys);
  images::SigningKey key{path_join(*keys, "db.key"), path_join(*keys, "db.crt")};
  REQUIRE(run_checked({"openssl", "req", "-new", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                       "/CN=ballast install test", "-keyout", key.key, "-out", key.cert}));
  auto published = publish_minimal("1.0", key);
  auto [image, installed] = install_fresh(published);
  auto table = run_checked({"sfdisk", "--json", image});
  REQUIRE(table);
  uint64_t esp_off = nlohmann::json::parse(table->out)["partitiontable"]["partitions"][0]["start"].get<uint64_t>() * 512;
  auto signed_loader = read_file(published.fs->mount_point() + "/minimal-1.0" + images::kSignedLoaderPath, 16 << 20);
  REQUIRE(signed_loader);
  for (const char* path : {"/EFI/BOOT/BOOTX64.EFI", "/EFI/systemd/systemd-bootx64.efi"}) {
    std::string on_esp = esp_file(image, esp_off, path);
    CHECK(on_esp == *signed_loader);
    const std::string copy = *keys + "/on-esp.efi";
    REQUIRE(write_file_atomic(copy, on_esp));
    CHECK(images::verify_signature(key.cert, copy));
  }
  (void)remove_tree(*keys);
}

TEST_CASE("ballast install onto a .vhd disk writes a fixed VHD of whole MiB that qemu-img reads as vpc") {
  auto published = publish_minimal("1.0");
  std::string image = published.fs->base_dir() + "/azure.vhd";
  // By its suffix, with a size that is not a whole MiB (rounded up).
  ballast::testing::run_ballast_ok({"install", "--disk", image, "--size", std::to_string((1ull << 30) + 12345), "-f",
                                    published.stream, "--version", "1.0"});
  auto info = run_checked({"qemu-img", "info", "-f", "vpc", "--output=json", image});
  REQUIRE(info);
  auto j = nlohmann::json::parse(info->out);
  CHECK(j["format"] == "vpc");
  CHECK(j["virtual-size"] == 1025ull << 20);
  CHECK(images::read_fixed_vhd(image).value() == 1025ull << 20);
  // The raw part is the disk: its ESP holds systemd-boot where the partition table says.
  CHECK(esp_file(image, 1ull << 20, "/EFI/BOOT/BOOTX64.EFI") != "<missing>");

  // Installing over it again (forced) leaves one footer, not two.
  host::InstallOptions o;
  o.disk = image;
  o.format = host::DiskFormat::vhd;
  o.force = true;
  REQUIRE(host::install_to_disk(o, source("1.0", published.stream)));
  CHECK(images::read_fixed_vhd(image).value() == 1025ull << 20);
  struct stat st;
  REQUIRE(::stat(image.c_str(), &st) == 0);
  CHECK(static_cast<uint64_t>(st.st_size) == (1025ull << 20) + 512);
}

TEST_CASE("a failed install onto a .vhd removes the VHD it created") {
  auto published = publish_minimal("1.0");
  std::string image = published.fs->base_dir() + "/azure.vhd";
  host::InstallOptions o;
  o.disk = image;
  o.size = 1ull << 30;
  o.format = host::DiskFormat::vhd;
  auto installed = host::install_to_disk(o, source("2.0", published.stream));  // the stream holds 1.0
  REQUIRE_FALSE(installed);
  CHECK_FALSE(path_exists(image));
}
